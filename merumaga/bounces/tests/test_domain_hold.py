"""A receiving domain that blocks us during a running mailing: sending to it pauses, the other
domains go on, no reader is suppressed, the operator is told; a probe or a person resumes it.

Transactional: the worker uses the database from its own thread.
"""

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from merumaga.bounces import services as bounce_services
from merumaga.bounces.models import BounceEvent, BounceScore
from merumaga.delivery import queue, services
from merumaga.delivery.models import Delivery, DomainHold
from merumaga.delivery.worker import run_until_idle
from merumaga.mailings import services as mailing_services
from merumaga.subscribers.models import Suppression
from merumaga.testing import make_article, make_subscriber

pytestmark = pytest.mark.django_db(transaction=True)

BLOCKED, FINE = "blocked.example", "fine.example"


@pytest.fixture
def hold_settings(settings):
    settings.DOMAIN_HOLD_COUNT = 4
    settings.DOMAIN_HOLD_MIN_REFUSALS = 4
    settings.DOMAIN_HOLD_BACKOFF = timedelta(minutes=30)
    settings.OPERATOR_EMAIL = "ops@example.jp"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return settings


def readers(n: int = 20) -> None:
    # Interleaved, so that every batch has readers of both domains.
    for i in range(n):
        make_subscriber(f"r{i}@{BLOCKED}")
        make_subscriber(f"r{i}@{FINE}")


def start_mailing():
    make_article("今週の記事", published_at=timezone.now() - timedelta(minutes=5))
    mailing = mailing_services.compose_weekly().mailing
    mailing_services.start(mailing)
    return mailing


def statuses(mailing, domain: str) -> dict[str, int]:
    rows = Delivery.objects.filter(mailing=mailing, subscriber__email__endswith="@" + domain)
    found: dict[str, int] = {}
    for status in rows.values_list("status", flat=True):
        found[status] = found.get(status, 0) + 1
    return found


def test_a_blocked_domain_is_held_during_a_mailing_and_the_rest_goes_on(
    relay, hold_settings, client, caplog
):
    readers()
    relay.handler.rules = lambda address: "blocked" if address.endswith("@" + BLOCKED) else None
    mailing = start_mailing()

    # One batch in flight, so that the count is exact: with two (the default), the other batch
    # may already be on its way when the hold begins, up to its own blocked readers more.
    with caplog.at_level(logging.WARNING, logger="merumaga.delivery.services"):
        run_until_idle(batch_size=4, loops=1)

    # The other domain: everything sent. The blocked one: a few refusals, then held.
    assert statuses(mailing, FINE) == {"sent": 20}
    hold = DomainHold.objects.get()
    assert (hold.domain, hold.active) == (BLOCKED, True)
    refused = BounceEvent.objects.filter(domain=BLOCKED)
    assert refused.count() == 4  # the threshold, then no more mail went to it
    assert set(refused.values_list("kind", "reason", "outcome")) == {
        ("sender", "blocked", "not_counted")
    }
    waiting = statuses(mailing, BLOCKED)
    assert waiting == {"queued": 16, "deferred": 4}
    assert Delivery.objects.filter(reply=queue.HELD + BLOCKED).count() == 16
    assert hold.reason.startswith("4 件の拒否 (10 分間)") and "spamhaus" in hold.reason

    # No reader suppressed, nobody scored.
    assert not Suppression.objects.exists() and not BounceScore.objects.exists()

    # The operator is told: the log, a mail, every admin page, the progress page, the CLI.
    assert any(BLOCKED in record.getMessage() for record in caplog.records)
    [notice] = mail.outbox
    assert notice.to == ["ops@example.jp"] and BLOCKED in notice.subject
    assert hold.reason in notice.body and "/admin/delivery/domainhold/" in notice.body
    admin = get_user_model().objects.create_superuser("ops", "ops@example.jp", "pw")
    client.force_login(admin)
    page = client.get(reverse("admin:index")).content.decode()
    assert f"{BLOCKED} への配信を一時停止中です" in page
    progress = client.get(reverse("mailcatcher:progress", args=[mailing.pk])).content.decode()
    assert BLOCKED in progress and "一時停止中の送信先ドメイン" in progress
    out = StringIO()
    call_command("mailing", "status", str(mailing.pk), stdout=out)
    assert f"held domain={BLOCKED} waiting=16 " in out.getvalue()

    # The operator lifts it once the block is gone: the waiting rows go at once.
    relay.handler.rules = {}
    response = client.post(
        reverse("admin:delivery_domainhold_changelist"),
        {"action": "lift", "_selected_action": [hold.pk], "note": "ブロックリストから削除済み"},
    )
    assert response.status_code == 302
    hold.refresh_from_db()
    assert (hold.active, hold.lifted_by, hold.lift_note) == (
        False,
        admin,
        "ブロックリストから削除済み",
    )
    run_until_idle(batch_size=4)
    assert statuses(mailing, BLOCKED) == {"sent": 16, "deferred": 4}  # those retry later
    assert (
        f"{BLOCKED} への配信を一時停止中です"
        not in client.get(reverse("admin:index")).content.decode()
    )


def test_a_probe_after_the_backoff_resumes_a_domain_that_takes_mail_again(
    relay, hold_settings, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    readers(6)
    hold = services.hold_domain(BLOCKED, "test")
    mailing = start_mailing()
    run_until_idle(batch_size=4)
    assert statuses(mailing, BLOCKED) == {"queued": 6}  # waiting for the probe
    assert relay.handler.per_recipient.keys() == {f"r{i}@{FINE}" for i in range(6)}

    time_machine.shift(hold_settings.DOMAIN_HOLD_BACKOFF + timedelta(seconds=1))
    run_until_idle(batch_size=4)

    hold.refresh_from_db()
    assert (hold.active, hold.probes, hold.lifted_by) == (False, 1, None)
    assert hold.lift_note.startswith(services.PROBE_DELIVERED)
    assert statuses(mailing, BLOCKED) == {"sent": 6}


def test_a_probe_refused_doubles_the_backoff(relay, hold_settings, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    readers(3)
    relay.handler.rules = lambda address: "blocked" if address.endswith("@" + BLOCKED) else None
    hold = services.hold_domain(BLOCKED, "test")
    mailing = start_mailing()
    time_machine.shift(hold.backoff + timedelta(seconds=1))
    run_until_idle(batch_size=6)

    hold.refresh_from_db()
    assert (hold.active, hold.probes, hold.backoff) == (True, 1, timedelta(minutes=60))
    assert hold.probe_at == timezone.now() + timedelta(minutes=60)
    assert len(relay.handler.per_recipient) == 3  # the fine domain only; one probe refused
    assert statuses(mailing, BLOCKED) == {"deferred": 1, "queued": 2}


def test_a_block_that_comes_back_after_a_probe_waits_longer(hold_settings):
    first = services.hold_domain(BLOCKED, "first")
    services.probe_answered(first, "250 ok", "DATA", sent=True)
    second = services.hold_domain(BLOCKED, "again")
    assert second.backoff == 2 * first.backoff
    assert services.hold_domain(BLOCKED, "a third at once") is None  # one active hold a domain


def test_refusals_of_one_reader_or_by_reception_filters_do_not_hold_a_domain(hold_settings):
    one = make_subscriber(f"one@{BLOCKED}")
    for _ in range(10):
        bounce_services.record_event(
            kind="sender", reason="blocked", source="smtp_reply", address=one.email, subscriber=one
        )
    for i in range(10):
        reader = make_subscriber(f"f{i}@docomo.ne.jp")
        bounce_services.record_event(
            kind="sender", reason="filtered", source="smtp", address=reader.email, subscriber=reader
        )
    assert not DomainHold.objects.exists()


def test_unverified_claims_never_hold_a_domain(hold_settings):
    for i in range(10):
        bounce_services.record_event(
            kind="sender",
            reason="blocked",
            source="smtp",
            address=f"x{i}@{BLOCKED}",
            subscriber=make_subscriber(f"x{i}@{BLOCKED}"),
            verified=False,
        )
    assert not DomainHold.objects.exists()


def test_a_share_of_what_was_sent_holds_a_small_domain(relay, hold_settings):
    hold_settings.DOMAIN_HOLD_COUNT = 100
    hold_settings.DOMAIN_HOLD_MIN_REFUSALS = 3
    hold_settings.DOMAIN_HOLD_PERCENT = 50
    readers(4)
    relay.handler.rules = lambda address: "blocked" if address in (
        f"r0@{BLOCKED}", f"r1@{BLOCKED}", f"r2@{BLOCKED}") else None  # fmt: skip
    start_mailing()
    run_until_idle(batch_size=8)
    # 3 readers of 4 refused: 75% ≥ 50%.
    hold = DomainHold.objects.get()
    assert hold.domain == BLOCKED and "75%" in hold.reason
