"""Every change made because of what came back goes through one function here.

Receivers (SMTP/LMTP, the mail catcher, mailbox polling, webhooks, the worker's SMTP replies) and
the admin all call these. `receive` keeps the message and reads it; `record_event` is the one
place a bounce, complaint or mailed unsubscribe changes a reader; `lift_suppression` undoes it.
"""

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from merumaga import reasons
from merumaga.bounces.classify import Verdict, classify, kind_of
from merumaga.bounces.models import (
    BounceEvent,
    BounceScore,
    InboundMessage,
    Kind,
    Source,
    SuppressionChange,
)
from merumaga.delivery import services as delivery_services
from merumaga.delivery.models import Delivery, DomainHold
from merumaga.delivery.signals import DeliveryFailure
from merumaga.mailings.models import Mailing
from merumaga.subscribers import services as subscriber_services
from merumaga.subscribers.models import ConsentRecord, Subscriber, Suppression, Topic, address_hash

logger = logging.getLogger(__name__)

Outcome = BounceEvent.Outcome
ACTED_KINDS = (Kind.HARD, Kind.SOFT, Kind.SENDER, Kind.COMPLAINT, Kind.UNSUBSCRIBE)
SOFT_SCORE = 0.5  # Mailman's weight for a temporary failure; a hard bounce counts 1.0
# The enhanced status code right after the reply code ("550 5.1.1 …", "550-5.1.1 …"), not any
# dotted number in the text ("Client host 5.1.2.9 blocked").
_REPLY_STATUS = re.compile(r"^\d{3}[ -]([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


def receive(
    raw: bytes,
    source: str,
    *,
    envelope_from: str = "",
    envelope_to: Sequence[str] = (),
    size: int | None = None,
) -> InboundMessage:
    """Keep one inbound message, read it and act on it. Never loses it: whatever the content,
    a row is written (a second copy of a message only counts on the first one).

    `size`: the message's full size when `raw` is only its beginning (a huge mail fetched in
    part from a mailbox).
    """
    verdict = classify(raw, envelope_to)
    return receive_verdict(
        raw, source, verdict, envelope_from=envelope_from, envelope_to=envelope_to, size=size
    )


def receive_verdict(
    raw: bytes,
    source: str,
    verdict: Verdict,
    *,
    envelope_from: str = "",
    envelope_to: Sequence[str] = (),
    size: int | None = None,
) -> InboundMessage:
    """Keep a message already read (a webhook's JSON, read by its own parser) and act on it."""
    digest = hashlib.sha256(raw).hexdigest()
    key = _dedupe_key(source, verdict, digest)
    keep = settings.BOUNCE_KEEP_KB * 1024
    size = max(size or 0, len(raw))
    fields = {
        "source": source,
        "envelope_from": _text(envelope_from, 300),
        "envelope_to": _text(", ".join(envelope_to), 1000),
        "digest": digest,
        "kind": verdict.kind,
        "reason": verdict.reason,
        "rule": _text(verdict.rule, 80),
        "status": _text(verdict.status, 12),
        "addresses": [_text(address, 254) for address in verdict.addresses],
        "subject": _text(verdict.subject, 200),
        "raw": raw[:keep],
        "size": size,
        "note": f"kept the first {keep // 1024} KB" if size > keep else "",
    }
    with transaction.atomic():
        # Linked whatever its kind (an auto-reply too), so that an erasure finds it. Locked, as
        # erase() locks it: a bounce and an erasure of the same reader take turns.
        reader = None
        if verdict.subscriber_id:
            reader = Subscriber.objects.select_for_update().filter(pk=verdict.subscriber_id).first()
        fields["subscriber"] = reader
        if verdict.mailing_id:
            fields["mailing"] = Mailing.objects.filter(pk=verdict.mailing_id).first()
        if reader is not None and reader.status == Subscriber.Status.ERASED:
            fields |= ERASED_COPY
        message = _store(key, fields)
        if message is None:
            seen = InboundMessage.objects.get(dedupe_key=key)
            if seen.digest == digest:
                return _count_again(seen)
            # Same Message-ID, other bytes: another message (or a forged ID). Kept, not acted on.
            note = f"same Message-ID as inbound message {seen.pk}, other content"
            fields |= {"kind": Kind.DUPLICATE, "note": note}
            message = _store(f"{key}:{digest}", fields)
            if message is None:
                return _count_again(InboundMessage.objects.get(dedupe_key=f"{key}:{digest}"))
        else:
            act(message, verdict)
    logger.info("inbound message %s: %s (%s)", message.pk, message.kind, message.rule)
    return message


# What is kept of a message about a reader who erased their data: how it was read, not the text.
ERASED_COPY = {
    "raw": b"",
    "addresses": [],
    "subject": "",
    "envelope_from": "",
    "note": "reader's data erased: message not kept",
}


def _text(value: str, length: int) -> str:
    # A NUL (from a crafted encoded-word) is refused by PostgreSQL text columns: the message
    # would be answered 451 and offered again for ever.
    return value.replace("\x00", "")[:length]


def read_again(message: InboundMessage) -> bool:
    """After a rule was added or fixed: read a kept message again and act on the new verdict.
    Only unrecognised and quarantined messages (nothing was done for them), so no reader is
    acted on twice. True if the verdict changed."""
    if message.kind not in (Kind.UNRECOGNISED, Kind.QUARANTINED) or not message.raw:
        return False
    verdict = classify(bytes(message.raw), [a for a in message.envelope_to.split(", ") if a])
    if (verdict.kind, verdict.rule) == (message.kind, message.rule):
        return False
    with transaction.atomic():
        message.kind, message.rule = verdict.kind, _text(verdict.rule, 80)
        message.reason = verdict.reason
        message.status = _text(verdict.status, 12)
        message.addresses = [_text(address, 254) for address in verdict.addresses]
        message.save(update_fields=["kind", "reason", "rule", "status", "addresses"])
        act(message, verdict)
    return True


def _dedupe_key(source: str, verdict: Verdict, digest: str) -> str:
    """Per channel (mail, SES, webhook), so that a mail cannot take a webhook event's id."""
    channel = source if source in (Source.SES, Source.WEBHOOK) else "mail"
    if verdict.message_id:
        return f"{channel}:{hashlib.sha256(verdict.message_id.strip().encode()).hexdigest()}"
    return f"{channel}:body:{digest}"


def _store(key: str, fields: dict) -> InboundMessage | None:
    """The new row, or None when the key is taken (by an earlier copy, or by a concurrent one,
    which the unique index makes us wait for)."""
    try:
        with transaction.atomic():  # a savepoint: the failed INSERT must not spoil the caller's
            return InboundMessage.objects.create(dedupe_key=key, **fields)
    except IntegrityError:
        return None


def _count_again(message: InboundMessage) -> InboundMessage:
    InboundMessage.objects.filter(pk=message.pk).update(times_received=F("times_received") + 1)
    message.refresh_from_db(fields=["times_received"])
    logger.info("inbound message %s received again; not acted on twice", message.pk)
    return message


@dataclass
class Target:
    """One reader a verdict is about, and how sure we are that it is them."""

    address: str
    status: str = ""
    diagnostic: str = ""
    reason: str = ""
    kind: str = ""  # the recipient's own kind (a DSN may say different things of each)
    subscriber: Subscriber | None = None
    erased: bool = False  # an address whose reader erased their data (known by its suppression)
    verified: bool = True


def act(message: InboundMessage, verdict: Verdict) -> list[BounceEvent]:
    """What a verdict changes: one event per reader it names (inside the caller's transaction)."""
    if verdict.kind == Kind.SUBSCRIBE:
        _subscribe_by_mail(message, verdict)
        return []
    if verdict.kind not in ACTED_KINDS:
        return []
    mailing = message.mailing
    if mailing is None and verdict.mailing_id:  # read again by the admin
        mailing = Mailing.objects.filter(pk=verdict.mailing_id).first()
    token_reader = None
    if verdict.subscriber_id:  # looked up when the message was stored, unless read again since
        if message.subscriber_id == verdict.subscriber_id:
            token_reader = message.subscriber
        else:
            token_reader = Subscriber.objects.filter(pk=verdict.subscriber_id).first()
    targets = _targets(
        verdict, token_reader, trusted_source=message.source in (Source.SES, Source.WEBHOOK)
    )
    if not targets:
        message.note = "no reader identified"
        message.save(update_fields=["note"])
        return []
    events = [
        record_event(
            kind=target.kind or verdict.kind,
            reason=target.reason or verdict.reason,
            source=message.source,
            address=target.address,
            subscriber=target.subscriber,
            mailing=mailing,
            status=target.status,
            diagnostic=target.diagnostic,
            rule=verdict.rule,
            message=message,
            topic_id=verdict.topic_id,
            erased=target.erased,
            verified=target.verified,
        )
        for target in targets
    ]
    message.subscriber = events[0].subscriber
    fields = {"subscriber": events[0].subscriber}
    if any(event.outcome == Outcome.ERASED for event in events):
        fields |= ERASED_COPY  # the reader asked to be forgotten: no copy that names them
    for name, value in fields.items():
        setattr(message, name, value)
    message.save(update_fields=list(fields))
    return events


def _subscribe_by_mail(message: InboundMessage, verdict: Verdict) -> None:
    """空メール登録: the same request as the sign-up form's, for the address the mail came from,
    with the same limits; the consent record says it came by mail. The message's note says what
    was done. A mail with an empty envelope sender is a robot's (bounces, auto-replies): never
    answered."""
    if not message.envelope_from.strip():
        note = "empty envelope sender: not answered"
    else:
        active = list(Topic.objects.filter(is_active=True).values_list("key", flat=True))
        keys = [verdict.topic_key] if verdict.topic_key in active else active
        note = ""
        if verdict.topic_key and verdict.topic_key not in active:
            note = f"no open topic {verdict.topic_key!r}: asked for every one; "
        try:
            outcome = subscriber_services.request_subscription(
                verdict.sender,
                keys,
                subscriber_services.Evidence(
                    source=ConsentRecord.Source.EMPTY_MAIL,
                    user_agent=_text(f"mail to {message.envelope_to}", 300),
                ),
            )
            note += f"sign-up for {', '.join(sorted(keys))}: {outcome.value}"
        except subscriber_services.TooManyRequests:
            note += "sign-up refused: too many requests for this address or domain"
        except subscriber_services.InvalidInput as error:
            note += f"sign-up refused: {error}"
    message.note = _text("; ".join(part for part in (message.note, note) if part), 300)
    message.save(update_fields=["note"])
    logger.info("inbound message %s: %s", message.pk, note)


def _targets(
    verdict: Verdict, token_reader: Subscriber | None, trusted_source: bool
) -> list[Target]:
    """The readers a verdict is about (`token_reader`: the one its token names, if any).

    A signed token names its reader for certain (real bounces carry one: our VERP return path, or
    the List-Unsubscribe of the bounced original); so does an authenticated sender (SES, the
    webhook) naming an address. A mail without a token names only addresses, and anyone who
    knows a reader's address can write such a mail to bounce@ or fbl@: it is recorded as
    unverified, for a person to judge, and nothing is done.
    """
    if token_reader is not None:
        own = [r for r in verdict.recipients if r.address == (token_reader.email or "")]
        first = (own or list(verdict.recipients) or [None])[0]
        return [
            Target(
                address=token_reader.email or (first.address if first else ""),
                status=first.status if first else "",
                diagnostic=first.diagnostic if first else "",
                reason=first.reason if first else "",
                kind=first.kind if first and first.kind in ACTED_KINDS else "",
                subscriber=token_reader,
            )
        ]
    if verdict.kind in (Kind.HARD, Kind.SOFT, Kind.SENDER):
        # A DSN may also report deliveries (notices): only the failures are acted on.
        recipients = [r for r in verdict.recipients if r.kind in ACTED_KINDS and r.address]
    else:
        recipients = list(verdict.recipients)
    hashes = [address_hash(r.address) for r in recipients]
    by_hash = {s.address_hash: s for s in Subscriber.objects.filter(address_hash__in=hashes)}
    erased = set(
        Suppression.objects.filter(
            address_hash__in=hashes, reason=Suppression.Reason.ERASED
        ).values_list("address_hash", flat=True)
    )
    return [
        Target(
            address=recipient.address,
            status=recipient.status,
            diagnostic=recipient.diagnostic,
            reason=recipient.reason,
            kind=recipient.kind if recipient.kind in ACTED_KINDS else "",
            subscriber=by_hash.get(hashed),
            erased=hashed in erased,
            verified=trusted_source,
        )
        for recipient, hashed in zip(recipients, hashes, strict=True)
    ]


def record_event(
    *,
    kind: str,
    source: str,
    address: str,
    reason: str = "",
    subscriber: Subscriber | None = None,
    mailing: Mailing | None = None,
    status: str = "",
    diagnostic: str = "",
    rule: str = "",
    relay: str = "",
    message: InboundMessage | None = None,
    topic_id: int | None = None,
    erased: bool = False,
    verified: bool = True,
) -> BounceEvent:
    """Record one bounce, complaint or mailed unsubscribe for one reader, and act on it:

    hard (the reader is gone) → suppressed after BOUNCE_HARD_LIMIT of them; soft (temporarily
    unable) → +0.5 (once a day), suppressed at BOUNCE_SCORE_LIMIT, and a mailbox reported
    suspended for longer than BOUNCE_SUSPENDED_GRACE_DAYS counts as gone; sender (the problem is
    ours: a block, a filter, SPF) → never counts against the reader; complaint → unsubscribed
    from everything and suppressed at once; unsubscribe → that topic stopped. Suppression takes
    effect on the next batch any worker claims, so also for a mailing under way. Unverified (see
    _targets): recorded, nothing done.
    """
    address = _text(address or "", 254).strip().lower()
    event = BounceEvent(
        source=source,
        kind=kind,
        reason=reason,
        relay=_text(relay, 100),
        subscriber=subscriber,
        mailing=mailing,
        address_hash=address_hash(address) if address else "",
        domain=address.rpartition("@")[2][:255],
        status=_text(status, 12),
        diagnostic=_text(diagnostic, 300),
        rule=_text(rule, 80),
        message=message,
    )
    with transaction.atomic():
        if erased or (subscriber is not None and subscriber.status == Subscriber.Status.ERASED):
            event.outcome = Outcome.ERASED
            event.domain, event.diagnostic = "", ""
        elif subscriber is None:
            event.outcome = Outcome.UNKNOWN_RECIPIENT
        elif not verified:
            event.outcome = Outcome.UNVERIFIED
        elif kind == Kind.UNSUBSCRIBE:
            _unsubscribe(subscriber, topic_id, source)
            event.outcome = Outcome.UNSUBSCRIBED
        elif kind == Kind.COMPLAINT:
            subscriber_services.unsubscribe(
                subscriber,
                None,
                subscriber_services.Evidence(source=ConsentRecord.Source.COMPLAINT),
            )
            event.outcome = Outcome.SUPPRESSED
        elif kind == Kind.SENDER:
            event.outcome = Outcome.NOT_COUNTED
        else:
            event.score, over_limit, event.kind = _score(subscriber, kind, reason)
            event.outcome = Outcome.SUPPRESSED if over_limit else Outcome.SCORED
        event.save()
        if event.outcome == Outcome.SUPPRESSED and not _suppress(event):
            event.outcome = Outcome.ALREADY_SUPPRESSED
            event.save(update_fields=["outcome"])
    if event.outcome == Outcome.NOT_COUNTED:
        watch_domain(event.domain)
    return event


# A refusal by the reader's own reception filter (a carrier's ドメイン指定受信) is on record but
# does not hold a domain: those readers refuse us each time, and the others still want the mail.
_NOT_HOLDING = ("filtered",)


def watch_domain(domain: str) -> DomainHold | None:
    """Hold sending to `domain` when its refusals that are ours pass the threshold (settings:
    DOMAIN_HOLD_*): so many readers refused in the window, or enough to be that share of what
    was sent to it (over twice the window: reports come back after the mail). Counted since
    the last hold of the domain ended. The hold if one was made.

    One indexed count per refusal ((domain, kind, created_at)); the share, a count of the
    deliveries of the mailings concerned, only between the two thresholds."""
    if not domain or DomainHold.objects.filter(domain=domain, lifted_at__isnull=True).exists():
        return None
    now = timezone.now()
    since = now - settings.DOMAIN_HOLD_WINDOW
    last_lifted = DomainHold.objects.filter(domain=domain).aggregate(at=Max("lifted_at"))["at"]
    refusals = BounceEvent.objects.filter(
        domain=domain,
        kind=Kind.SENDER,
        outcome=Outcome.NOT_COUNTED,
        created_at__gte=max(since, last_lifted) if last_lifted else since,
    ).exclude(reason__in=_NOT_HOLDING)
    # Readers, not messages: one reader refused at every retry is not a block of the domain.
    count = refusals.values("address_hash").distinct().count()
    minutes = int(settings.DOMAIN_HOLD_WINDOW.total_seconds() // 60)
    if count >= settings.DOMAIN_HOLD_COUNT:
        why = _("%(count)d 件の拒否 (%(minutes)d 分間)") % {"count": count, "minutes": minutes}
    elif count >= settings.DOMAIN_HOLD_MIN_REFUSALS:
        sent = Delivery.objects.filter(
            mailing_id__in=refusals.exclude(mailing=None).values("mailing_id"),
            status__in=(Delivery.Status.SENT, Delivery.Status.FAILED, Delivery.Status.DEFERRED),
            updated_at__gte=now - 2 * settings.DOMAIN_HOLD_WINDOW,
            subscriber__email__iendswith="@" + domain,
        ).count()
        if count * 100 < settings.DOMAIN_HOLD_PERCENT * max(sent, count):
            return None
        why = _("%(count)d 件の拒否 (%(minutes)d 分間、送信 %(sent)d 通の %(percent).0f%%)") % {
            "count": count,
            "minutes": minutes,
            "sent": sent,
            "percent": 100 * count / max(sent, count),
        }
    else:
        return None
    top = refusals.values("reason").annotate(n=Count("id")).order_by("-n").first()
    example = refusals.filter(reason=top["reason"]).order_by("-created_at").first()
    label = reasons.REASONS[top["reason"]].label if top["reason"] in reasons.REASONS else ""
    reason = f"{why}: {label} — {example.diagnostic or example.status}"
    return delivery_services.hold_domain(domain, reason)


def _unsubscribe(subscriber: Subscriber, topic_id: int | None, source: str) -> None:
    # A topic removed since the mail was sent: the reader wanted to stop it, so stop everything.
    topic_key = Topic.objects.filter(pk=topic_id).values_list("key", flat=True).first()
    by = ConsentRecord.Source.API if source == Source.WEBHOOK else ConsentRecord.Source.MAIL
    subscriber_services.unsubscribe(subscriber, topic_key, subscriber_services.Evidence(source=by))


def _score(subscriber: Subscriber, kind: str, reason: str = "") -> tuple[float, bool, str]:
    """Add a bounce to the reader's score: (score, whether it is now past a limit, the kind it
    counted as)."""
    now = timezone.now()
    BounceScore.objects.get_or_create(subscriber=subscriber)
    score = BounceScore.objects.select_for_update().get(subscriber=subscriber)
    since_last = now - score.last_bounce_at if score.last_bounce_at else timedelta(0)
    if since_last > timedelta(days=settings.BOUNCE_STALE_DAYS):
        score.hard_bounces, score.score = 0, 0.0  # old bounces no longer count
    if since_last > timedelta(days=settings.BOUNCE_SUSPENDED_GRACE_DAYS):
        # Measured from the first report of a suspension that has not been lifted since: a
        # weekly magazine hears of it once a week, further apart than the stale days.
        score.suspended_since = None
    if reason == "suspended":
        # A disabled mailbox often comes back (an unpaid bill, a long leave): scored at first,
        # gone once it has stayed suspended past the grace period.
        score.suspended_since = score.suspended_since or now
        if now - score.suspended_since >= timedelta(days=settings.BOUNCE_SUSPENDED_GRACE_DAYS):
            kind = Kind.HARD
    if kind == Kind.HARD:
        score.hard_bounces += 1
        score.score += 1.0
    elif score.last_soft_on != timezone.localdate(now):
        # One soft bounce a day at most: a full mailbox refuses every retry of the same mail.
        score.score += SOFT_SCORE
        score.last_soft_on = timezone.localdate(now)
    score.last_bounce_at = now
    score.save()
    over = (
        score.hard_bounces >= settings.BOUNCE_HARD_LIMIT
        or score.score >= settings.BOUNCE_SCORE_LIMIT
    )
    return score.score, over, kind


_SUPPRESSION_REASONS = {
    Kind.HARD: Suppression.Reason.HARD_BOUNCE,
    Kind.SOFT: Suppression.Reason.SOFT_BOUNCE,
    Kind.COMPLAINT: Suppression.Reason.COMPLAINT,
}


def _suppress(event: BounceEvent) -> bool:
    """Suppress the event's address; False when it already was."""
    hashed = event.address_hash or address_hash(event.subscriber.email or "")
    parts = (event.kind, event.reason, event.status, f"({event.rule})")
    reason = " ".join(part for part in parts if part)
    _, created = Suppression.objects.get_or_create(
        address_hash=hashed,
        defaults={"reason": _SUPPRESSION_REASONS[event.kind], "note": reason[:300]},
    )
    if created:
        SuppressionChange.objects.create(
            action=SuppressionChange.Action.SUPPRESSED,
            address_hash=hashed,
            subscriber=event.subscriber,
            event=event,
            reason=reason[:300],
        )
    return created


class CannotLift(ValueError):
    """A suppression the admin may not lift; the message says why."""


def lift_suppression(address_hash_: str, reason: str, user) -> SuppressionChange:
    """Undo a suppression made for bounces or complaints, with a reason, on the audit trail.

    The bounce score starts again from zero. A complainer stays unsubscribed: only the reader
    can subscribe again (consent is theirs to give). An erasure is never undone here.
    """
    reason = (reason or "").strip()
    if not reason:
        raise CannotLift("A reason is required.")
    with transaction.atomic():
        suppression = (
            Suppression.objects.select_for_update().filter(address_hash=address_hash_).first()
        )
        if suppression is None:
            raise CannotLift("This address is not suppressed.")
        if suppression.reason not in _SUPPRESSION_REASONS.values():
            # An erasure is the reader's choice; a suppression made by hand is lifted by hand.
            raise CannotLift(
                f"This suppression ({suppression.get_reason_display()}) was not made for a "
                "bounce or complaint; it stays."
            )
        subscriber = Subscriber.objects.filter(address_hash=address_hash_).first()
        suppression.delete()
        if subscriber is not None:
            BounceScore.objects.filter(subscriber=subscriber).update(
                hard_bounces=0, score=0, last_soft_on=None
            )
        return SuppressionChange.objects.create(
            action=SuppressionChange.Action.LIFTED,
            address_hash=address_hash_,
            subscriber=subscriber,
            reason=reason[:300],
            user=user,
        )


def _read_failure(failure: DeliveryFailure, address: str) -> tuple[str, str, str] | None:
    """(kind, reason, status) of a relay's answer about one reader, by the same reasons as a
    bounce; None when it says nothing about them.

    Only a refused recipient (RCPT, or DATA for our one-recipient mails) is about the reader: a
    refusal at connection or MAIL FROM is about us or the relay, and a message we could not
    build never reached anyone. A deferral (4xx, tried again later) counts only when it says
    the problem is ours (a block shows as 4xx first), never against the reader: the last
    refusal, when the retries end, does that.
    """
    reply = failure.reply
    if failure.stage not in ("RCPT", "DATA") or reply[:1] not in ("4", "5"):
        return None
    reason = reasons.reason(reply=reply, address=address, stage=failure.stage)
    kind = kind_of(reason)
    if not failure.final and kind != Kind.SENDER:
        return None
    if kind not in (Kind.HARD, Kind.SOFT, Kind.SENDER):
        return None
    status = _REPLY_STATUS.match(reply)
    code = ".".join(status.groups()) if status else reasons.default_status(reason)
    return kind, reason, code


def record_delivery_failures(failures: Iterable[DeliveryFailure]) -> list[BounceEvent]:
    """What the relays said about readers while sending, read like any bounce: a reader who is
    gone is suppressed, a temporary failure scored on the last retry, a refusal that is ours
    (a block, SPF, a filter) recorded against the domain and relay, never the reader.

    Costs one query for the readers and one for the mailings, then record_event's few per
    failure: a batch rarely has more than a handful.
    """
    failures = [f for f in failures if f.stage in ("RCPT", "DATA")]
    if not failures:
        return []
    readers = Subscriber.objects.in_bulk({f.subscriber_id for f in failures})
    read = []
    for failure in failures:
        subscriber = readers.get(failure.subscriber_id)
        address = (subscriber.email or "") if subscriber else ""
        if found := _read_failure(failure, address):
            read.append((failure, subscriber, address, found))
    if not read:
        return []
    mailings = Mailing.objects.in_bulk({f.mailing_id for f, *_ in read})
    events = []
    for failure, subscriber, address, (kind, reason, status) in read:
        events.append(
            record_event(
                kind=kind,
                reason=reason,
                source=Source.SMTP_REPLY,
                address=address,
                subscriber=subscriber,
                mailing=mailings.get(failure.mailing_id),
                status=status,
                diagnostic=failure.reply,
                rule=f"smtp-reply:{failure.stage}",
                relay=failure.relay,
            )
        )
    return events
