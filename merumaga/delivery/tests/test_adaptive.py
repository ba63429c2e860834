"""Adaptive pacing end to end: a relay that throttles one domain only (the fault server's
"rate:N", 421 past N a second). The other domain keeps its full rate; the throttled one is
slowed, and every mail to it still goes.

The assertions are about outcomes (who got mail, which rate was lowered, how the worker reports
it), not about how long anything took.

Transactional: the worker uses the database from its own thread.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from merumaga.delivery import domains, queue
from merumaga.delivery.models import DomainPace
from merumaga.delivery.worker import run_until_idle
from merumaga.mailings import services
from merumaga.testing import make_article, make_subscriber

pytestmark = pytest.mark.django_db(transaction=True)

SLOW, FAST = "slow.example", "fast.example"


def test_one_throttling_domain_is_slowed_the_others_keep_full_speed_and_all_mail_goes(
    relay, settings
):
    settings.DOMAIN_LIMITS = {SLOW: 60.0, FAST: 60.0}
    # The relay takes 15 a second for the slow domain and answers 421 beyond.
    relay.handler.rules = lambda address: "rate:15" if address.endswith("@" + SLOW) else None
    for n in range(60):
        make_subscriber(f"s{n}@{SLOW}")
        make_subscriber(f"f{n}@{FAST}")
    make_article("今週の記事", published_at=timezone.now() - timedelta(days=1))
    mailing = services.compose_weekly().mailing
    services.start(mailing)

    worker = run_until_idle(batch_size=20, first_retry=timedelta(0), max_attempts=50)

    # Completes: every reader of both domains got the mail, once.
    assert queue.counts(mailing.pk)["sent"] == 120
    assert set(relay.handler.per_recipient.values()) == {1}
    assert relay.handler.throttled > 0  # the relay did throttle
    paces = {pace.domain: pace for pace in worker.pool.paces()}
    # The other domain never slowed down.
    assert (paces[FAST].rate, paces[FAST].throttles) == (60.0, 0)
    # The throttled one was slowed (halved at least once), bounded by its limit.
    assert paces[SLOW].throttles == relay.handler.throttled
    assert paces[SLOW].rate <= 30.0 and paces[SLOW].ceiling == 60.0

    # What the progress page and `mailing status` show, as the worker wrote it.
    written = {row.domain: row for row in DomainPace.objects.all()}
    assert written[SLOW].rate == paces[SLOW].rate and written[FAST].rate == 60.0
    shown = {pace.domain: pace for pace in domains.current_paces()}
    assert shown[SLOW].slowed and not shown[FAST].slowed
    out = StringIO()
    call_command("mailing", "status", str(mailing.pk), stdout=out)
    assert f"pace domain={FAST} rate=60.0/s ceiling=60.0/s throttles=0 full" in out.getvalue()
    assert f"pace domain={SLOW} rate=" in out.getvalue() and " slowed" in out.getvalue()
