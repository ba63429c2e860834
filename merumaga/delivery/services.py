"""Holding a receiving domain: paused when it refuses our mail, resumed by a probe or a person.

A domain is held when what comes back says the problem is ours (bounces.services watches it:
a blocklist, our reputation, SPF/DKIM/DMARC, a spam filter) past a threshold, or by an operator
by hand. While it is held, a worker that claims rows for it gives them back to wait, marked
`held: DOMAIN`, and sends the rest of the batch; the other domains go on at full speed. After the
back-off one worker sends one message as a probe: taken, the hold is lifted and the rows go at
once; refused, the back-off doubles (up to DOMAIN_HOLD_MAX_BACKOFF). An operator can lift it at
any time, with a note. Each hold is logged, mailed to the operator and shown on every admin
page until it ends.
"""

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from merumaga import reasons
from merumaga.delivery import queue
from merumaga.delivery.models import Delivery, DomainHold
from merumaga.delivery.tasks import tell_operator_about_hold

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

PROBE_DELIVERED = "probe delivered"
# A hold of the same domain lifted by a probe this recently: the block came back, so the next
# back-off starts where that one ended.
RELAPSE = timedelta(days=1)
PROBE_WAIT = timedelta(minutes=1)


def hold_domain(domain: str, reason: str, *, backoff: timedelta | None = None) -> DomainHold | None:
    """Hold `domain`; None when it is held already (by this call's rival, or before)."""
    domain = domain.strip().lower()
    now = timezone.now()
    if backoff is None:
        backoff = settings.DOMAIN_HOLD_BACKOFF
        relapsed = (
            DomainHold.objects.filter(
                domain=domain, lifted_by__isnull=True, lifted_at__gte=now - RELAPSE
            )
            .order_by("-lifted_at")
            .first()
        )
        if relapsed is not None:
            backoff = min(relapsed.backoff * 2, settings.DOMAIN_HOLD_MAX_BACKOFF)
    try:
        with transaction.atomic():
            hold = DomainHold.objects.create(
                domain=domain,
                reason=reason[:300],
                started_at=now,
                backoff=backoff,
                probe_at=now + backoff,
            )
    except IntegrityError:  # one_active_hold_per_domain: held already
        return None
    logger.warning(
        "sending to %s held: %s (a probe in %s; lift it in the admin)", domain, reason, backoff
    )
    transaction.on_commit(lambda: tell_operator_about_hold(hold.pk))
    return hold


def lift_hold(hold: DomainHold, *, user: "User | None" = None, note: str = "") -> int:
    """End `hold`; its waiting rows go at once. Returns how many rows were waiting (0 if it had
    ended already)."""
    now = timezone.now()
    with transaction.atomic():
        ended = DomainHold.objects.filter(pk=hold.pk, lifted_at__isnull=True).update(
            lifted_at=now, lifted_by=user, lift_note=note[:300], probing_since=None
        )
        if not ended:
            return 0
        released = Delivery.objects.filter(
            status__in=queue.CLAIMABLE, reply=queue.HELD + hold.domain
        ).update(available_at=now, reply="", updated_at=now)
    logger.warning("sending to %s resumed (%s); %d rows released", hold.domain, note, released)
    return released


def start_probe(hold: DomainHold, lease: timedelta) -> bool:
    """Whether this worker may send the probe now: the back-off is over and no other worker's
    probe is out (one that died with it out loses it after `lease`)."""
    now = timezone.now()
    return bool(
        DomainHold.objects.filter(pk=hold.pk, lifted_at__isnull=True, probe_at__lte=now)
        .exclude(probing_since__gt=now - lease)
        .update(probing_since=now, probes=F("probes") + 1)
    )


def probe_answered(hold: DomainHold, reply: str, stage: str, sent: bool) -> None:
    """A probe's outcome: taken (or refused for the reader's own sake: the domain talks to us
    again) lifts the hold; refused for ours, or no answer, doubles the back-off."""
    reason = "" if sent else reasons.reason(reply=reply)
    reader_only = reasons.group(reason) == reasons.GONE or reason == "mailbox_full"
    if (sent or reader_only) and stage != "connect":
        lift_hold(hold, note=f"{PROBE_DELIVERED}: {reply}"[:300])
        return
    backoff = min(hold.backoff * 2, settings.DOMAIN_HOLD_MAX_BACKOFF)
    now = timezone.now()
    DomainHold.objects.filter(pk=hold.pk, lifted_at__isnull=True).update(
        backoff=backoff, probe_at=now + backoff, probing_since=None
    )
    logger.warning(
        "sending to %s still held: the probe got %r; next in %s", hold.domain, reply, backoff
    )


def wait_for_hold(delivery_ids: list[int], worker: str, hold: DomainHold, now: datetime) -> int:
    """Give rows claimed for a held domain back, to be taken again when its probe is due (and
    no sooner than a minute: a probe may be out; its success releases them at once)."""
    until = max(hold.probe_at, now + PROBE_WAIT)
    return queue.postpone(delivery_ids, worker, until, queue.HELD + hold.domain)
