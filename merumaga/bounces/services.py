"""Every change made because of what came back goes through one function here.

Receivers (SMTP/LMTP, the mail catcher, mailbox polling, webhooks, the worker's SMTP replies) and
the admin all call these. `receive` keeps the message and reads it; `record_event` is the one
place a bounce, complaint or mailed unsubscribe changes a reader; `lift_suppression` undoes it.
"""

import dataclasses
import hashlib
import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, InterfaceError, OperationalError, models, transaction
from django.db.models import Count, F, Max
from django.db.models.functions import Mod
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from merumaga import reasons
from merumaga.bounces import signals
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

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

Outcome = BounceEvent.Outcome
ACTED_KINDS = (Kind.HARD, Kind.SOFT, Kind.SENDER, Kind.COMPLAINT, Kind.UNSUBSCRIBE)
SOFT_SCORE = 0.5  # Mailman's weight for a temporary failure; a hard bounce counts 1.0
# The enhanced status code right after the reply code ("550 5.1.1 …", "550-5.1.1 …"), not any
# dotted number in the text ("Client host 5.1.2.9 blocked").
_REPLY_STATUS = re.compile(r"^\d{3}[ -]([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


@dataclass(frozen=True)
class Inbound:
    """One message as it arrived: its bytes and how (its envelope, the channel)."""

    raw: bytes
    source: str
    envelope_from: str = ""
    envelope_to: Sequence[str] = ()
    size: int | None = None  # the full size when `raw` is only its beginning


def receive(
    raw: bytes,
    source: str,
    *,
    envelope_from: str = "",
    envelope_to: Sequence[str] = (),
    size: int | None = None,
) -> InboundMessage:
    """Keep one inbound message, then read it and act on it (receive_many).

    `size`: the message's full size when `raw` is only its beginning (a huge mail fetched in
    part from a mailbox).
    """
    return receive_many([Inbound(raw, source, envelope_from, tuple(envelope_to), size)])[0]


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
    inbound = Inbound(raw, source, envelope_from, tuple(envelope_to), size)
    return receive_many([inbound], [verdict])[0]


def receive_many(
    items: Sequence[Inbound], verdicts: Sequence[Verdict] | None = None
) -> list[InboundMessage]:
    """Keep messages (keep), then read and act on them (read). Never loses one: once kept, a
    message that cannot be read now stays waiting, and read_waiting takes it up again. What
    stands for each message afterwards: itself, or the first copy of it.

    With `verdicts` (a webhook's JSON, read by its own parser, which a later reading could not
    read again) the message is kept and acted on in one transaction, or not at all: an error
    goes to the caller, whose sender then tries again."""
    if verdicts is not None:
        with transaction.atomic():
            return _read_batch(keep(items), verdicts)
    return read(keep(items))


def keep(items: Sequence[Inbound]) -> list[InboundMessage]:
    """Store messages as they arrived, unread ("received"): one INSERT for all of them. The
    bounce receiver answers 250 after this, and leaves the reading to its reader processes
    (read_waiting): the sending server waits only for the INSERT."""
    limit = settings.BOUNCE_KEEP_KB * 1024
    # Keep what classify may need (READ_BYTES, below), whatever BOUNCE_KEEP_KB says: read()
    # cuts a message down to BOUNCE_KEEP_KB once it has been read.
    messages = []
    for item in items:
        size = max(item.size or 0, len(item.raw))
        messages.append(
            InboundMessage(
                source=item.source,
                envelope_from=_text(item.envelope_from, 300),
                envelope_to=_text(", ".join(item.envelope_to), 1000),
                dedupe_key=f"received:{uuid.uuid4().hex}",
                digest=hashlib.sha256(item.raw).hexdigest(),
                kind=Kind.RECEIVED,
                raw=item.raw[:READ_BYTES],
                size=size,
                note=f"kept the first {limit // 1024} KB" if size > limit else "",
            )
        )
    with transaction.atomic():
        InboundMessage.objects.bulk_create(messages)
    return messages


# What classify reads of a message: every report part of a DSN or an ARF comes before the
# original it returns.
READ_BYTES = 4 * 1024 * 1024


def read_waiting(
    limit: int = 1000,
    max_bytes: int = 64 * 1024 * 1024,
    *,
    share: tuple[int, int] = (0, 1),
    received_before: datetime | None = None,
) -> int:
    """Read and act on up to `limit` kept messages not read yet, oldest first, and no more of
    them than fit in `max_bytes` (at least one): memory stays bounded when big ones wait. How
    many were read (not counting those another reader took meanwhile, nor those left waiting
    by a database that is away).

    `share` (index, count): only the messages whose id is `index` modulo `count`, so that the
    receiver's readers each read their own instead of classifying the same ones. The periodic
    task reads those `received_before` a time (what no running reader took)."""
    waiting = InboundMessage.objects.filter(kind=Kind.RECEIVED).order_by("pk")
    index, count = share
    if count > 1:
        waiting = waiting.alias(remainder=Mod("pk", count)).filter(remainder=index)
    if received_before is not None:
        waiting = waiting.filter(received_at__lt=received_before)
    ids: list[int] = []
    total = 0
    for pk, size in waiting.values_list("pk", "size")[:limit]:
        total += min(size, READ_BYTES)
        if ids and total > max_bytes:
            break
        ids.append(pk)
    messages = list(InboundMessage.objects.filter(pk__in=ids).order_by("pk")) if ids else []
    return sum(1 for message in read(messages) if message.kind != Kind.RECEIVED)


def read(
    messages: Sequence[InboundMessage], verdicts: Sequence[Verdict] | None = None
) -> list[InboundMessage]:
    """Read kept messages (classify, unless `verdicts` are given) and act on them, in one
    transaction; classifying comes before it, so it holds no lock while parsing.

    Costs, whatever the batch size: one query to lock the messages, one for the readers the
    tokens name, one for the mailings, one for the keys already stored, one upsert of the
    messages, then record_events's few. A batch that fails is read again one message at a time:
    a message whose acting fails is set aside as quarantined, with the error in its note, and
    the others go on; one that cannot be written (the database is down) stays waiting.
    """
    if not messages:
        return []
    if verdicts is None:
        verdicts = [
            classify(bytes(m.raw), [a for a in m.envelope_to.split(", ") if a]) for m in messages
        ]
    try:
        return _read_batch(messages, verdicts)
    except Exception as error:
        if len(messages) > 1:
            return [
                outcome
                for message, verdict in zip(messages, verdicts, strict=True)
                for outcome in read([message], [verdict])
            ]
        message = messages[0]
        if isinstance(error, OperationalError | InterfaceError):
            logger.exception("inbound message %s: kept, not read yet; read again later", message.pk)
            return [message]
        # Anything else would fail again at every reading: set aside, still linked to its
        # reader (an erasure finds it), for a person to read again once it is fixed.
        logger.exception("inbound message %s: could not act on it; quarantined", message.pk)
        aside = dataclasses.replace(
            verdicts[0], kind=Kind.QUARANTINED, rule=f"error:act:{type(error).__name__}"
        )
        return _read_batch(messages, [aside])


def _read_batch(
    messages: Sequence[InboundMessage], verdicts: Sequence[Verdict]
) -> list[InboundMessage]:
    # What reading changes on the objects, as stored: each attempt starts from it, so that a
    # rolled-back attempt leaves no note or link behind.
    stored = [{name: getattr(m, name) for name in _READ_ATTNAMES} for m in messages]
    for attempt in (1, 2):
        for message, fields in zip(messages, stored, strict=True):
            for name, value in fields.items():
                setattr(message, name, value)
        try:
            with transaction.atomic():
                return _read_and_act(messages, verdicts)
        except IntegrityError:
            # A copy of one of these, read at the same moment by another process, took its key
            # between our look and our write: once more, now finding it stored.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _read_and_act(
    messages: Sequence[InboundMessage], verdicts: Sequence[Verdict]
) -> list[InboundMessage]:
    # Locked, and only those still waiting: another reader (a second receiver, the periodic
    # task) may have read some meanwhile. PostgreSQL skips rows another reader holds; SQLite's
    # one writer at a time does the same.
    waiting = set(
        InboundMessage.objects.select_for_update(skip_locked=True)
        .filter(pk__in=[m.pk for m in messages], kind=Kind.RECEIVED)
        .values_list("pk", flat=True)
    )
    pairs = [(m, v) for m, v in zip(messages, verdicts, strict=True) if m.pk in waiting]
    # Linked whatever its kind (an auto-reply too), so that an erasure finds it. Locked, as
    # erase() locks it: a bounce and an erasure of the same reader take turns.
    reader_ids = {v.subscriber_id for _, v in pairs if v.subscriber_id}
    readers = (
        {r.pk: r for r in Subscriber.objects.select_for_update().filter(pk__in=reader_ids)}
        if reader_ids
        else {}
    )
    mailing_ids = {v.mailing_id for _, v in pairs if v.mailing_id}
    mailings = Mailing.objects.in_bulk(mailing_ids) if mailing_ids else {}
    keys = {m.pk: _dedupe_key(m.source, v, m.digest) for m, v in pairs}
    # And the key a message reusing another's Message-ID is kept under (below).
    looked_up = [*keys.values(), *(f"{keys[m.pk]}:{m.digest}" for m, _ in pairs)]
    stored = {m.dedupe_key: m for m in InboundMessage.objects.filter(dedupe_key__in=looked_up)}
    keep = settings.BOUNCE_KEEP_KB * 1024
    # What stands for each message: itself (read now), or the copy kept before it.
    outcomes: dict[int, InboundMessage] = {}
    read_now: list[InboundMessage] = []
    copies: list[InboundMessage] = []
    to_act: list[tuple[InboundMessage, Verdict]] = []
    for message, verdict in pairs:
        key = keys[message.pk]
        earlier = stored.get(key)
        if earlier is not None and earlier.digest != message.digest:
            # Same Message-ID, other bytes: another message (or a forged ID). Kept, not acted on.
            message.note = _join_note(
                message.note, f"same Message-ID as inbound message {earlier.pk}, other content"
            )
            key = f"{key}:{message.digest}"
            verdict = dataclasses.replace(verdict, kind=Kind.DUPLICATE)
            earlier = stored.get(key)
        if earlier is not None:
            outcomes[message.pk] = earlier  # a copy of one kept already: counted there
            copies.append(message)
            continue
        reader = readers.get(verdict.subscriber_id) if verdict.subscriber_id is not None else None
        message.dedupe_key = key
        stored[key] = message
        message.kind, message.reason = verdict.kind, verdict.reason
        message.rule, message.status = _text(verdict.rule, 80), _text(verdict.status, 12)
        message.addresses = [_text(address, 254) for address in verdict.addresses]
        message.subject = _text(verdict.subject, 200)
        message.subscriber, message.mailing = reader, mailings.get(verdict.mailing_id)
        message.raw = bytes(message.raw)[:keep]
        if reader is not None and reader.status == Subscriber.Status.ERASED:
            for name, value in ERASED_COPY.items():
                setattr(message, name, value)
        read_now.append(message)
        outcomes[message.pk] = message
        if message.kind != Kind.DUPLICATE:
            to_act.append((message, verdict))
    # Written back as an upsert of the rows locked above: one INSERT … ON CONFLICT DO UPDATE,
    # which Django builds for 200 rows in a tenth of the time bulk_update's CASE WHEN takes.
    InboundMessage.objects.bulk_create(
        read_now, update_conflicts=True, unique_fields=["id"], update_fields=READ_FIELDS
    )
    # A copy is the same bytes as the message kept before it: only the count of it stays.
    InboundMessage.objects.filter(pk__in=[m.pk for m in copies]).delete()
    _act_all(to_act)
    for message in read_now:
        logger.info("inbound message %s: %s (%s)", message.pk, message.kind, message.rule)
    for message in copies:
        outcomes[message.pk] = _count_again(outcomes[message.pk])
    return [outcomes.get(m.pk, m) for m in messages]


# What reading a kept message fills in.
READ_FIELDS = [
    "dedupe_key",
    "kind",
    "reason",
    "rule",
    "status",
    "addresses",
    "subject",
    "subscriber",
    "mailing",
    "raw",
    "envelope_from",
    "note",
]


def _attname(name: str) -> str:
    model_field = InboundMessage._meta.get_field(name)
    if not isinstance(model_field, models.Field):  # a reverse relation has no column
        raise ImproperlyConfigured(f"InboundMessage.{name} is not a field of its own")
    return model_field.attname


_READ_ATTNAMES = [_attname(name) for name in READ_FIELDS]


def _join_note(*parts: str) -> str:
    return _text("; ".join(part for part in parts if part), 300)


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
    return _act_all([(message, verdict)])


def _act_all(pairs: Sequence[tuple[InboundMessage, Verdict]]) -> list[BounceEvent]:
    """act() for several messages: their events recorded together (record_events)."""
    specs: list[EventSpec] = []
    owners: list[InboundMessage] = []  # the message of each spec
    # Looked up when the messages were stored; these two queries only for a message read again.
    mailings = Mailing.objects.in_bulk(
        {v.mailing_id for m, v in pairs if v.mailing_id and m.mailing_id != v.mailing_id}
    )
    readers = Subscriber.objects.in_bulk(
        {
            v.subscriber_id
            for m, v in pairs
            if v.subscriber_id and m.subscriber_id != v.subscriber_id
        }
    )
    for message, verdict in pairs:
        if verdict.kind == Kind.SUBSCRIBE:
            _subscribe_by_mail(message, verdict)
            continue
        if verdict.kind not in ACTED_KINDS:
            continue
        mailing = message.mailing or mailings.get(verdict.mailing_id)
        token_reader = None
        if verdict.subscriber_id:
            if message.subscriber_id == verdict.subscriber_id:
                token_reader = message.subscriber
            else:
                token_reader = readers.get(verdict.subscriber_id)
        targets = _targets(
            verdict, token_reader, trusted_source=message.source in (Source.SES, Source.WEBHOOK)
        )
        if not targets:
            message.note = _join_note(message.note, "no reader identified")
            message.save(update_fields=["note"])
            continue
        for target in targets:
            specs.append(
                EventSpec(
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
            )
            owners.append(message)
    events = record_events(specs)
    relinked: dict[int, InboundMessage] = {}
    for message, event in zip(owners, events, strict=True):
        if message.pk in relinked:
            continue  # the first reader a message names is the one it is linked to
        relinked[message.pk] = message
        if event.outcome == Outcome.ERASED:
            # The reader asked to be forgotten: no copy that names them. Rare: one by one.
            message.subscriber = event.subscriber
            for name, value in ERASED_COPY.items():
                setattr(message, name, value)
            message.save(update_fields=["subscriber", *ERASED_COPY])
        elif message.subscriber_id != event.subscriber_id:
            message.subscriber = event.subscriber
            InboundMessage.objects.filter(pk=message.pk).update(subscriber=event.subscriber)
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
    message.note = _join_note(message.note, note)
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
        candidates = own or list(verdict.recipients)
        first = candidates[0] if candidates else None
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


@dataclass
class EventSpec:
    """One bounce, complaint or mailed unsubscribe about one reader, to record (record_events)."""

    kind: str
    source: str
    address: str
    reason: str = ""
    subscriber: Subscriber | None = None
    mailing: Mailing | None = None
    status: str = ""
    diagnostic: str = ""
    rule: str = ""
    relay: str = ""
    message: InboundMessage | None = None
    topic_id: int | None = None
    erased: bool = False
    verified: bool = True


def record_event(**fields: Any) -> BounceEvent:
    """Record one event (the fields of EventSpec) and act on it: see record_events."""
    return record_events([EventSpec(**fields)])[0]


def record_events(specs: Sequence[EventSpec]) -> list[BounceEvent]:
    """Record bounces, complaints and mailed unsubscribes, one event per reader, and act on them:

    hard (the reader is gone) → suppressed after BOUNCE_HARD_LIMIT of them; soft (temporarily
    unable) → +0.5 (once a day), suppressed at BOUNCE_SCORE_LIMIT, and a mailbox reported
    suspended for longer than BOUNCE_SUSPENDED_GRACE_DAYS counts as gone; sender (the problem is
    ours: a block, a filter, SPF) → never counts against the reader, and may hold the domain
    (watch_domain); complaint → unsubscribed from everything and suppressed at once; unsubscribe
    → that topic stopped. Suppression takes effect on the next batch any worker claims, so also
    for a mailing under way. Unverified (see _targets): recorded, nothing done.

    In bulk, in the order given (two events of one reader count one after the other): the
    scores read and written together (_score_all), one INSERT of the events, the suppressions
    and their audit rows in a few statements (_suppress_all). Complaints and unsubscribes, rare,
    go through the subscribers' services one by one.
    """
    if not specs:
        return []
    events = []
    scored: list[tuple[BounceEvent, EventSpec, Subscriber]] = []
    with transaction.atomic():
        for spec in specs:
            address = _text(spec.address or "", 254).strip().lower()
            event = BounceEvent(
                source=spec.source,
                kind=spec.kind,
                reason=spec.reason,
                relay=_text(spec.relay, 100),
                subscriber=spec.subscriber,
                mailing=spec.mailing,
                address_hash=address_hash(address) if address else "",
                domain=address.rpartition("@")[2][:255],
                status=_text(spec.status, 12),
                diagnostic=_text(spec.diagnostic, 300),
                rule=_text(spec.rule, 80),
                message=spec.message,
            )
            subscriber = spec.subscriber
            if spec.erased or (
                subscriber is not None and subscriber.status == Subscriber.Status.ERASED
            ):
                event.outcome = Outcome.ERASED
                event.domain, event.diagnostic = "", ""
            elif subscriber is None:
                event.outcome = Outcome.UNKNOWN_RECIPIENT
            elif not spec.verified:
                event.outcome = Outcome.UNVERIFIED
            elif spec.kind == Kind.UNSUBSCRIBE:
                _unsubscribe(subscriber, spec.topic_id, spec.source, spec.mailing)
                event.outcome = Outcome.UNSUBSCRIBED
            elif spec.kind == Kind.COMPLAINT:
                subscriber_services.unsubscribe(
                    subscriber,
                    None,
                    subscriber_services.Evidence(source=ConsentRecord.Source.COMPLAINT),
                )
                event.outcome = Outcome.SUPPRESSED
            elif spec.kind == Kind.SENDER:
                event.outcome = Outcome.NOT_COUNTED
            else:
                scored.append((event, spec, subscriber))
            events.append(event)
        _score_all(scored)
        suppressing = _suppressions_to_make([e for e in events if e.outcome == Outcome.SUPPRESSED])
        BounceEvent.objects.bulk_create(events)
        _make_suppressions(suppressing)
        signals.events_recorded.send(sender=BounceEvent, events=events)
    for domain in {e.domain for e in events if e.outcome == Outcome.NOT_COUNTED}:
        watch_domain(domain)
    return events


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
    if top is None:  # never: the refusals were just counted
        return None
    example = refusals.filter(reason=top["reason"]).order_by("-created_at").first()
    if example is None:  # never: top names the reason of some of them
        return None
    label = reasons.REASONS[top["reason"]].label if top["reason"] in reasons.REASONS else ""
    reason = f"{why}: {label} — {example.diagnostic or example.status}"
    return delivery_services.hold_domain(domain, reason)


def _unsubscribe(
    subscriber: Subscriber, topic_id: int | None, source: str, mailing: Mailing | None
) -> None:
    # A topic removed since the mail was sent: the reader wanted to stop it, so stop everything.
    topic_key = (
        Topic.objects.filter(pk=topic_id).values_list("key", flat=True).first()
        if topic_id is not None
        else None
    )
    mailing_id = mailing.pk if mailing is not None else None
    if mailing_id is None and topic_id is not None:
        # A mailto: unsubscribe names the reader and the topic, not the mailing: it is counted
        # against the latest mailing of that topic sent to the reader.
        mailing_id = (
            Delivery.objects.filter(
                subscriber=subscriber, mailing__topic_id=topic_id, status=Delivery.Status.SENT
            )
            .order_by("-id")
            .values_list("mailing_id", flat=True)
            .first()
        )
    by = ConsentRecord.Source.API if source == Source.WEBHOOK else ConsentRecord.Source.MAIL
    subscriber_services.unsubscribe(
        subscriber, topic_key, subscriber_services.Evidence(source=by, mailing_id=mailing_id)
    )


def _score_all(scored: Sequence[tuple[BounceEvent, EventSpec, Subscriber]]) -> None:
    """Add each bounce to its reader's score, in order, and say on each event what came of it
    (its score, scored or suppressed, the kind it counted as). Two queries to read the scores
    (locked) and make the missing ones, one to write them back."""
    if not scored:
        return
    now = timezone.now()
    today = timezone.localdate(now)
    readers = {subscriber.pk for _, _, subscriber in scored}
    BounceScore.objects.bulk_create(
        [BounceScore(subscriber_id=pk) for pk in readers], ignore_conflicts=True
    )
    scores = {
        score.subscriber_id: score
        for score in BounceScore.objects.select_for_update().filter(subscriber_id__in=readers)
    }
    for event, spec, subscriber in scored:
        score = scores[subscriber.pk]
        kind = spec.kind
        since_last = now - score.last_bounce_at if score.last_bounce_at else timedelta(0)
        if since_last > timedelta(days=settings.BOUNCE_STALE_DAYS):
            score.hard_bounces, score.score = 0, 0.0  # old bounces no longer count
        if since_last > timedelta(days=settings.BOUNCE_SUSPENDED_GRACE_DAYS):
            # Measured from the first report of a suspension that has not been lifted since: a
            # weekly magazine hears of it once a week, further apart than the stale days.
            score.suspended_since = None
        if spec.reason == "suspended":
            # A disabled mailbox often comes back (an unpaid bill, a long leave): scored at
            # first, gone once it has stayed suspended past the grace period.
            score.suspended_since = score.suspended_since or now
            grace = timedelta(days=settings.BOUNCE_SUSPENDED_GRACE_DAYS)
            if now - score.suspended_since >= grace:
                kind = Kind.HARD
        if kind == Kind.HARD:
            score.hard_bounces += 1
            score.score += 1.0
        elif score.last_soft_on != today:
            # One soft bounce a day at most: a full mailbox refuses every retry of the same mail.
            score.score += SOFT_SCORE
            score.last_soft_on = today
        score.last_bounce_at = now
        over = (
            score.hard_bounces >= settings.BOUNCE_HARD_LIMIT
            or score.score >= settings.BOUNCE_SCORE_LIMIT
        )
        event.kind, event.score = kind, score.score
        event.outcome = Outcome.SUPPRESSED if over else Outcome.SCORED
    # Written back as an upsert of the rows locked above: one INSERT … ON CONFLICT DO UPDATE,
    # which Django builds for 200 rows in a tenth of the time bulk_update's CASE WHEN takes.
    BounceScore.objects.bulk_create(
        list(scores.values()),
        update_conflicts=True,
        unique_fields=["subscriber"],
        update_fields=[
            "hard_bounces",
            "score",
            "last_bounce_at",
            "last_soft_on",
            "suspended_since",
        ],
    )


_SUPPRESSION_REASONS: dict[str, str] = {
    Kind.HARD: Suppression.Reason.HARD_BOUNCE,
    Kind.SOFT: Suppression.Reason.SOFT_BOUNCE,
    Kind.COMPLAINT: Suppression.Reason.COMPLAINT,
}


def _suppressions_to_make(events: Sequence[BounceEvent]) -> dict[str, BounceEvent]:
    """Address hash → the event that suppresses it; an address suppressed already (or twice in
    these events) makes its event ALREADY_SUPPRESSED. One query."""
    hashes = [(e, _suppressed_hash(e)) for e in events]
    existing = set(
        Suppression.objects.filter(address_hash__in={h for _, h in hashes}).values_list(
            "address_hash", flat=True
        )
    )
    new: dict[str, BounceEvent] = {}
    for event, hashed in hashes:
        if hashed in existing or hashed in new:
            event.outcome = Outcome.ALREADY_SUPPRESSED
        else:
            new[hashed] = event
    return new


def _suppressed_hash(event: BounceEvent) -> str:
    if event.address_hash:
        return event.address_hash
    # Suppressing events are the ones about a reader (record_events).
    if event.subscriber is None:
        raise ValueError("a suppressing event names neither an address nor a reader")
    return address_hash(event.subscriber.email or "")


def _make_suppressions(new: dict[str, BounceEvent]) -> None:
    """The suppressions and their audit rows (the events saved already): two INSERTs."""
    notes = {hashed: _suppression_note(event) for hashed, event in new.items()}
    Suppression.objects.bulk_create(
        [
            Suppression(
                address_hash=hashed, reason=_SUPPRESSION_REASONS[event.kind], note=notes[hashed]
            )
            for hashed, event in new.items()
        ],
        ignore_conflicts=True,  # suppressed meanwhile by another process: it stays theirs
    )
    SuppressionChange.objects.bulk_create(
        [
            SuppressionChange(
                action=SuppressionChange.Action.SUPPRESSED,
                address_hash=hashed,
                subscriber=event.subscriber,
                event=event,
                reason=notes[hashed],
            )
            for hashed, event in new.items()
        ]
    )


def _suppression_note(event: BounceEvent) -> str:
    """Why the address was suppressed, in words (the site's language: the note is shown as it
    is on the admin's screens): 「宛先なし: 存在しないアドレス 5.1.1 (dsn)」."""
    with translation.override(settings.LANGUAGE_CODE):
        kind = str(event.get_kind_display())
        reason = str(reasons.REASONS[event.reason].label) if event.reason in reasons.REASONS else ""
    detail = " ".join(
        part for part in (reason, event.status, f"({event.rule})" if event.rule else "") if part
    )
    return f"{kind}: {detail}"[:300] if detail else kind[:300]


class CannotLift(ValueError):
    """A suppression the admin may not lift; the message says why."""


class CannotSuppress(ValueError):
    """An address an operator may not suppress by hand (already suppressed, no reason)."""


def suppress_by_hand(email: str, note: str, user: "User | None") -> SuppressionChange:
    """An operator stops bulk mail to an address (a request by phone, a spam trap), with the
    reason, on the same audit trail as the platform's own suppressions."""
    note = (note or "").strip()
    if not note:
        raise CannotSuppress("A reason is required.")
    hashed = address_hash(email)
    with transaction.atomic():
        if Suppression.objects.select_for_update().filter(address_hash=hashed).exists():
            raise CannotSuppress("This address is suppressed already.")
        Suppression.objects.create(
            address_hash=hashed, reason=Suppression.Reason.ADMIN, note=note[:300]
        )
        return SuppressionChange.objects.create(
            action=SuppressionChange.Action.SUPPRESSED,
            address_hash=hashed,
            subscriber=Subscriber.objects.filter(address_hash=hashed).first(),
            reason=note[:300],
            user=user,
        )


def lift_suppression(address_hash_: str, reason: str, user: "User | None") -> SuppressionChange:
    """Undo a suppression made for bounces or complaints or by hand, with a reason, on the
    audit trail: the only way a suppression goes (the admin cannot edit or delete one).

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
        if suppression.reason == Suppression.Reason.ERASED:
            # An erasure is the reader's choice: only their signing up anew undoes it.
            raise CannotLift("This address was erased at its owner's request; it stays.")
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

    Costs one query for the readers and one for the mailings, then record_events's few for all.
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
    return record_events(
        [
            EventSpec(
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
            for failure, subscriber, address, (kind, reason, status) in read
        ]
    )
