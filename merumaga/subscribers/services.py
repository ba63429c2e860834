"""Every change to a reader's state goes through one function here.

Views, admin, the CLI and tasks all call these; each writes its consent record in the same
transaction and queues its mail only once that transaction commits.
"""

import enum
import hashlib
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypedDict

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from email_validator import EmailNotValidError, validate_email

from merumaga import audit
from merumaga.institute.services import sender_identity
from merumaga.subscribers import csv_io, tasks, throttle
from merumaga.subscribers.models import (
    ConsentRecord,
    Subscriber,
    Subscription,
    Suppression,
    Topic,
    UnsubscribeReason,
    address_hash,
    new_nonce,
)
from merumaga.subscribers.signals import (
    address_changed,
    address_confirmed,
    consent_recorded_in_bulk,
    reader_data_requested,
    reader_erased,
)

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


logger = logging.getLogger(__name__)


def field_max_length(model: type[models.Model], name: str) -> int:
    """The max_length of a model's text field, which the stubs type as optional."""
    model_field = model._meta.get_field(name)
    if not isinstance(model_field, models.Field) or model_field.max_length is None:
        raise ImproperlyConfigured(f"{model.__name__}.{name} has no max_length")
    return model_field.max_length


CONSENT_WORDING_VERSION = "2026-11.1"
NAME_MAX_LENGTH = field_max_length(Subscriber, "name")
ORGANISATION_MAX_LENGTH = field_max_length(Subscriber, "organisation")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


class InvalidInput(ValueError):
    """A value a reader or editor gave that cannot be used; the message says why, for them."""


class TooManyRequests(Exception):
    pass


@dataclass(frozen=True)
class Evidence:
    """Who acted and how: stored with every consent record."""

    source: str
    ip_address: str | None = None
    user_agent: str = ""
    mailing_id: int | None = None  # the mailing whose link or header the reader used


class SignupOutcome(enum.Enum):
    CONFIRMATION_SENT = "confirmation_sent"
    REMINDER_SENT = "reminder_sent"  # already confirmed: sent the preferences link instead
    MAIL_WITHHELD = "mail_withheld"  # a mail went to this address within the last day


def normalise_email(raw: str) -> str:
    """The address as stored and mailed: validated, lower-cased; else InvalidInput.

    Full-width characters typed through a Japanese IME (ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ) are the
    same address in ASCII: NFKC makes them so, and callers show the result to the person.
    An address that still holds non-ASCII characters (a Japanese local part, an internationalised
    domain) is refused: our mail is written with ASCII headers and envelopes (RFC 5321/5322), and
    sending it would need SMTPUTF8 (RFC 6531) end to end.
    """
    candidate = unicodedata.normalize("NFKC", raw or "").strip()
    if not candidate:
        raise InvalidInput(_("メールアドレスを入力してください。"))
    if len(candidate) > 254 or _CONTROL_CHARACTERS.search(candidate):
        raise InvalidInput(_("メールアドレスの形式が正しくありません。"))
    try:
        result = validate_email(candidate, allow_smtputf8=True, check_deliverability=False)
    except EmailNotValidError:
        raise InvalidInput(_("メールアドレスの形式が正しくありません。")) from None
    if not result.normalized.isascii():
        raise InvalidInput(
            _(
                "日本語などの全角文字を含むメールアドレスには、配信できません。"
                "半角英数字だけのアドレスをお使いください。"
            )
        )
    return result.normalized.lower()


def clean_text(value: str, max_length: int, label: "StrOrPromise") -> str:
    """A one-line text field: no control characters (they could reach a mail header)."""
    value = (value or "").strip()
    if _CONTROL_CHARACTERS.search(value):
        raise InvalidInput(_("%(label)sに改行や制御文字は使えません。") % {"label": label})
    if len(value) > max_length:
        raise InvalidInput(
            _("%(label)sは%(max)d文字以内で入力してください。")
            % {"label": label, "max": max_length}
        )
    return value


def default_charset(email: str) -> str:
    domain = email.rsplit("@", 1)[-1]
    if domain in settings.ISO2022JP_DOMAINS:
        return Subscriber.Charset.ISO2022JP
    return Subscriber.Charset.UTF8


def consent_wording() -> str:
    """The sentence shown next to the sign-up button; stored verbatim with each sign-up."""
    identity = sender_identity()
    return _(
        "%(organisation)sから、選択したメールマガジンを受け取ることに同意します。"
        "配信はいつでも、各メールのリンクから停止できます。"
    ) % {"organisation": identity.organisation_name}


def _record(
    subscriber: Subscriber,
    action: str,
    evidence: Evidence,
    topics: Iterable[str] | None = None,
    wording: str = "",
    declared_basis: str = "",
) -> ConsentRecord:
    """`wording` is what we showed the reader (versioned); `declared_basis`, what another
    system declared about how it obtained their consent (an import, the API)."""
    if topics is None:
        topics = list(
            Topic.objects.filter(
                subscription__subscriber=subscriber, subscription__subscribed=True
            ).values_list("key", flat=True)
        )
    return ConsentRecord.objects.create(
        subscriber=subscriber,
        email=subscriber.email or "",
        action=action,
        source=evidence.source,
        topics=sorted(topics),
        ip_address=evidence.ip_address,
        user_agent=evidence.user_agent[:300],
        wording=wording or declared_basis,
        mailing_id=evidence.mailing_id,
        # The wording is stored verbatim; the version names the text and its language.
        wording_version=f"{CONSENT_WORDING_VERSION}.{get_language() or 'ja'}" if wording else "",
    )


def _set_subscriptions(subscriber: Subscriber, topic_keys: set[str]) -> None:
    """Switch each active topic on or off for this reader: one query per topic at most."""
    now = timezone.now()
    topics = list(Topic.objects.all())
    existing = {s.topic_id: s for s in Subscription.objects.filter(subscriber=subscriber)}
    to_create, to_update = [], []
    for topic in topics:
        wanted = topic.key in topic_keys
        current = existing.get(topic.id)
        if current is None:
            if wanted:
                to_create.append(Subscription(subscriber=subscriber, topic=topic, changed_at=now))
        elif current.subscribed != wanted:
            current.subscribed, current.changed_at = wanted, now
            to_update.append(current)
    Subscription.objects.bulk_create(to_create)
    Subscription.objects.bulk_update(to_update, ["subscribed", "changed_at"])


def _check_topic_keys(topic_keys: Iterable[str]) -> set[str]:
    keys = set(topic_keys)
    known = set(Topic.objects.filter(is_active=True, key__in=keys).values_list("key", flat=True))
    unknown = keys - known
    if unknown:
        raise InvalidInput(_("不明な配信種別です: %(keys)s") % {"keys": ", ".join(sorted(unknown))})
    return keys


def request_subscription(
    email: str,
    topic_keys: Iterable[str],
    evidence: Evidence,
    name: str = "",
    language: str = Subscriber.Language.JA,
) -> SignupOutcome:
    """A sign-up from the form or the API: nothing is received until the owner of the address
    confirms by mail.

    Whoever typed the address may not own it, so what is already there is not changed:
    - a new address is stored as pending, with the request (mailings, name);
    - a pending request whose link still works is not rewritten (the link is sent again);
    - a reader who unsubscribed keeps their settings and their preferences link; the mail
      carries the requested mailings in its link, and the owner chooses on the confirmation page;
    - a confirmed reader keeps their settings and gets their preferences link instead.
    The form says the same for all of these; it says so only when no mail went out, because
    one went to this address within the last 24 hours (whoever asked, so it tells no one
    whether the address is a reader's).
    """
    email = normalise_email(email)
    name = clean_text(name, NAME_MAX_LENGTH, _("お名前"))
    keys = _check_topic_keys(topic_keys)
    if not keys:
        raise InvalidInput(_("受け取るメールマガジンを一つ以上選んでください。"))
    domain = email.rsplit("@", 1)[1]
    limits = [
        (f"signup-address:{address_hash(email)}", settings.SIGNUP_LIMIT_PER_ADDRESS),
        (f"signup-domain:{domain}", settings.SIGNUP_LIMIT_PER_DOMAIN),
    ]
    if evidence.ip_address:
        limits.append((f"signup-ip:{evidence.ip_address}", settings.SIGNUP_LIMIT_PER_IP))
    # Count every limit (no short-circuit) so that a flood is counted everywhere it lands.
    if not all([throttle.allow(key, limit) for key, limit in limits]):
        raise TooManyRequests

    now = timezone.now()
    wording = consent_wording()
    with transaction.atomic():
        subscriber, created = Subscriber.objects.select_for_update().get_or_create(
            email=email,
            defaults={"name": name, "language": language, "charset": default_charset(email)},
        )
        if subscriber.status == Subscriber.Status.PENDING and (
            created or not _request_open(subscriber, now)
        ):
            if not created:  # its link has expired: this request replaces it
                subscriber.name = name
                subscriber.language = language
            _set_subscriptions(subscriber, keys)
        _record(subscriber, ConsentRecord.Action.SUBSCRIBE, evidence, keys, wording)

        recently_mailed = subscriber.confirmation_sent_at and (
            now - subscriber.confirmation_sent_at < timedelta(hours=24)
        )
        if recently_mailed:
            outcome = SignupOutcome.MAIL_WITHHELD
        else:
            subscriber.confirmation_sent_at = now
            if subscriber.status == Subscriber.Status.CONFIRMED:
                outcome = SignupOutcome.REMINDER_SENT
                transaction.on_commit(lambda: tasks.send_already_subscribed_mail(subscriber.pk))
            else:
                outcome = SignupOutcome.CONFIRMATION_SENT
                asked = sorted(keys)
                transaction.on_commit(lambda: tasks.send_confirmation_mail(subscriber.pk, asked))
        subscriber.save()
    return outcome


def _address(subscriber: Subscriber) -> str:
    """The address of a reader who is not erased: only erasure empties it."""
    if subscriber.email is None:
        raise ValueError(f"subscriber #{subscriber.pk} is erased and has no address")
    return subscriber.email


def _owner_confirmed(subscriber: Subscriber) -> None:
    """The owner of the reader's address has just proven it receives our mail (a link mailed to
    it): coming back after erasing one's data is a fresh consent, and the bounces app lifts a
    bounce or complaint suppression of the address, on its own audit trail."""
    Suppression.objects.filter(
        address_hash=address_hash(_address(subscriber)), reason=Suppression.Reason.ERASED
    ).delete()
    address_confirmed.send(_owner_confirmed, subscriber=subscriber)


def _request_open(subscriber: Subscriber, now: datetime) -> bool:
    """A pending request whose confirmation link still works."""
    sent = subscriber.confirmation_sent_at
    return (
        subscriber.status == Subscriber.Status.PENDING
        and sent is not None
        and now - sent < timedelta(days=settings.CONFIRMATION_MAX_AGE_DAYS)
    )


CONFIRMABLE = (Subscriber.Status.PENDING, Subscriber.Status.UNSUBSCRIBED)


def confirm(
    subscriber: Subscriber,
    evidence: Evidence,
    wording: str = "",
    topic_keys: Iterable[str] | None = None,
    name: str | None = None,
) -> bool:
    """The owner pressed the confirm button: a new reader, or one who had left coming back.
    True if this confirmed them, False if they were confirmed already.

    The confirmation page shows the request as it was made (possibly by someone else) and lets
    its owner change the mailings and the name: what they confirm is what is stored. The owner
    has shown the address receives our mail, so a suppression of it is lifted (bounces keeps
    the record: subscribers.signals.address_confirmed).
    """
    keys: set[str] | None = None
    if topic_keys is not None:
        keys = _check_topic_keys(topic_keys)
        if not keys:
            raise InvalidInput(_("受け取るメールマガジンを一つ以上選んでください。"))
    if name is not None:
        name = clean_text(name, NAME_MAX_LENGTH, _("お名前"))
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.status not in CONFIRMABLE:
            return False
        if keys is not None:
            _set_subscriptions(subscriber, keys)
        if name is not None:
            subscriber.name = name
        subscriber.status = Subscriber.Status.CONFIRMED
        subscriber.confirmed_at = timezone.now()
        subscriber.unsubscribed_at = None
        subscriber.save(update_fields=["status", "confirmed_at", "unsubscribed_at", "name"])
        _owner_confirmed(subscriber)
        _record(subscriber, ConsentRecord.Action.CONFIRM, evidence, wording=wording)
        transaction.on_commit(lambda: tasks.send_welcome_mail(subscriber.pk))
    return True


def update_preferences(
    subscriber: Subscriber,
    topic_keys: Iterable[str],
    evidence: Evidence,
    language: str | None = None,
    charset: str | None = None,
    name: str | None = None,
    declared_basis: str = "",
) -> Subscriber:
    """Set exactly which topics a confirmed reader receives; none at all means unsubscribed.
    `declared_basis`: the consent another system holds for topics it adds (the API)."""
    keys = _check_topic_keys(topic_keys)
    if language is not None and language not in Subscriber.Language.values:
        raise InvalidInput(_("言語の指定が正しくありません。"))
    if charset is not None and charset not in Subscriber.Charset.values:
        raise InvalidInput(_("文字コードの指定が正しくありません。"))
    if name is not None:
        name = clean_text(name, NAME_MAX_LENGTH, _("お名前"))
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.status not in (Subscriber.Status.CONFIRMED, Subscriber.Status.UNSUBSCRIBED):
            raise InvalidInput(_("この登録はまだ確認されていません。"))
        fields: list[str] = []
        if language is not None:
            subscriber.language = language
            fields.append("language")
        if charset is not None:
            subscriber.charset = charset
            fields.append("charset")
        if name is not None:
            subscriber.name = name
            fields.append("name")
        _set_subscriptions(subscriber, keys)
        if keys:
            subscriber.status = Subscriber.Status.CONFIRMED
            subscriber.unsubscribed_at = None
            action = ConsentRecord.Action.CHANGE
        else:
            if subscriber.status != Subscriber.Status.UNSUBSCRIBED:
                subscriber.unsubscribed_at = timezone.now()
            subscriber.status = Subscriber.Status.UNSUBSCRIBED
            action = ConsentRecord.Action.UNSUBSCRIBE
        subscriber.save(update_fields=[*fields, "status", "unsubscribed_at"])
        _record(subscriber, action, evidence, keys, declared_basis=declared_basis)
    return subscriber


def unsubscribe(subscriber: Subscriber, topic_key: str | None, evidence: Evidence) -> Subscriber:
    """Stop one topic (or everything, with None). Idempotent: a repeated click changes nothing."""
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.status == Subscriber.Status.ERASED:
            return subscriber
        subscriptions = Subscription.objects.filter(subscriber=subscriber, subscribed=True)
        if topic_key is not None:
            subscriptions = subscriptions.filter(topic__key=topic_key)
        changed = subscriptions.update(subscribed=False, changed_at=timezone.now())
        nothing_left = not Subscription.objects.filter(
            subscriber=subscriber, subscribed=True
        ).exists()
        became_unsubscribed = nothing_left and subscriber.status != Subscriber.Status.UNSUBSCRIBED
        if became_unsubscribed:
            subscriber.status = Subscriber.Status.UNSUBSCRIBED
            subscriber.unsubscribed_at = timezone.now()
            subscriber.save(update_fields=["status", "unsubscribed_at"])
        if changed or became_unsubscribed:
            _record(subscriber, ConsentRecord.Action.UNSUBSCRIBE, evidence)
    return subscriber


def record_unsubscribe_reason(
    link_token: str, subscriber: Subscriber, topic_key: str | None, reason: str
) -> UnsubscribeReason:
    """The reader's answer to "why?" after unsubscribing with `link_token`; answering again
    with the same link changes the answer. InvalidInput for a reason not offered, or from a
    reader still receiving what the link stops."""
    if reason not in UnsubscribeReason.Reason.values:
        raise InvalidInput(_("理由を選んでください。"))
    still = Subscription.objects.filter(subscriber=subscriber, subscribed=True)
    if topic_key:
        still = still.filter(topic__key=topic_key)
    if still.exists():
        raise InvalidInput(_("配信を停止してから回答してください。"))
    topic = Topic.objects.filter(key=topic_key).first() if topic_key else None
    answer, _created = UnsubscribeReason.objects.update_or_create(
        key=hashlib.sha256(link_token.encode()).hexdigest(),
        defaults={"topic": topic, "reason": reason, "answered_on": timezone.localdate()},
    )
    return answer


STOP_LINKS_PER_ADDRESS = 3  # per hour: a stranger cannot fill someone's mailbox with them
# Mails that anyone can make us send to an address (a stop link, a change-of-address link, an
# event's confirmation link): at most this many a day to one address, whatever the purpose,
# above each purpose's own hourly limit.
UNASKED_MAILS_PER_DAY = 6


def within_daily_mail_budget(email: str) -> bool:
    """Count one mail to `email` that its owner did not ask for themselves; False when the
    address has had its day's share."""
    return throttle.allow(
        f"unasked-mail:{address_hash(email)}", UNASKED_MAILS_PER_DAY, throttle.ONE_USE_WINDOW
    )


def request_stop_link(email: str, evidence: Evidence) -> bool:
    """Someone typed an address on the "stop my mail" form (their link was lost or expired):
    mail that address's reader a link that stops everything in one click.

    Callers answer the same whatever happens, so the form tells no one whether an address is a
    reader's. True when a mail was queued. Raises InvalidInput for a malformed address and
    TooManyRequests when one IP asks too often.
    """
    email = normalise_email(email)
    if evidence.ip_address and not throttle.allow(
        f"stop-link-ip:{evidence.ip_address}", settings.SIGNUP_LIMIT_PER_IP
    ):
        raise TooManyRequests
    hourly = throttle.allow(f"stop-link-address:{address_hash(email)}", STOP_LINKS_PER_ADDRESS)
    if not hourly or not within_daily_mail_budget(email):
        return False
    reader = Subscriber.objects.filter(email=email, status=Subscriber.Status.CONFIRMED).first()
    if reader is None:
        return False
    transaction.on_commit(lambda: tasks.send_stop_link_mail(reader.pk))
    return True


ADDRESS_CHANGES_PER_HOUR = 5


def request_address_change(subscriber: Subscriber, new_email: str, evidence: Evidence) -> str:
    """A reader asked to receive their mail at another address. Nothing changes until the owner
    of that address opens the link mailed to it (change_address). Returns the address as
    normalised, for the page to show."""
    new_email = normalise_email(new_email)
    if subscriber.status not in (Subscriber.Status.CONFIRMED, Subscriber.Status.UNSUBSCRIBED):
        raise InvalidInput(_("この登録はまだ確認されていません。"))
    if new_email == subscriber.email:
        raise InvalidInput(_("現在と同じメールアドレスです。"))
    keys = [f"address-change:{subscriber.pk}", f"address-change-to:{address_hash(new_email)}"]
    if not all([throttle.allow(key, ADDRESS_CHANGES_PER_HOUR) for key in keys]):
        raise TooManyRequests
    if not within_daily_mail_budget(new_email):
        raise TooManyRequests
    Subscriber.objects.filter(pk=subscriber.pk).update(pending_email=new_email)
    transaction.on_commit(lambda: tasks.send_address_confirmation_mail(subscriber.pk, new_email))
    return new_email


def address_change_wording(old: str, new: str) -> str:
    return _("メールアドレスを %(old)s から %(new)s に変更します。") % {"old": old, "new": new}


def change_address(subscriber: Subscriber, new_email: str, evidence: Evidence) -> Subscriber:
    """The owner of the new address confirmed it: from now on the reader's mail goes there.

    Only the latest request counts (InvalidInput for an older one). Every link in mails sent so
    far stops working (a new nonce): whoever reads the old mailbox now must not act for the
    reader; the old address is told of the change, with no link to act on.
    """
    new_email = normalise_email(new_email)
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        old_email = _address(subscriber)
        if old_email == new_email:
            return subscriber
        if subscriber.pending_email != new_email:
            raise InvalidInput(
                _(
                    "このリンクは、その後のメールアドレス変更の申請で無効になりました。"
                    "最新のメールのリンクをお使いください。"
                )
            )
        if Subscriber.objects.filter(email=new_email).exclude(pk=subscriber.pk).exists():
            raise InvalidInput(
                _(
                    "このメールアドレスは別の登録で使われています。"
                    "そのアドレスに届いたメールの配信設定から変更してください。"
                )
            )
        subscriber.email = new_email
        subscriber.pending_email = ""
        subscriber.nonce = new_nonce()
        try:
            with transaction.atomic():
                subscriber.save(update_fields=["email", "pending_email", "nonce"])
        except IntegrityError:  # taken by a sign-up a moment ago
            raise InvalidInput(_("このメールアドレスは別の登録で使われています。")) from None
        _record(
            subscriber,
            ConsentRecord.Action.CHANGE,
            evidence,
            wording=address_change_wording(old_email, new_email),
        )
        _owner_confirmed(subscriber)
        address_changed.send(change_address, subscriber=subscriber, old_email=old_email)
        transaction.on_commit(lambda: tasks.send_address_changed_mail(subscriber.pk, old_email))
    return subscriber


def _local(moment: datetime | None) -> str | None:
    # Japan time, as the reader sees every other date of ours.
    return timezone.localtime(moment).isoformat() if moment else None


def export_data(subscriber: Subscriber) -> dict[str, object]:
    """Everything kept about one reader, for "download my data"."""
    subscriptions = subscriber.subscription_set.select_related("topic").order_by("topic__position")
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "organisation": subscriber.organisation,
        "language": subscriber.language,
        "charset": subscriber.charset,
        "status": subscriber.status,
        "created_at": _local(subscriber.created_at),
        "confirmed_at": _local(subscriber.confirmed_at),
        "subscriptions": [
            {
                "topic": s.topic.key,
                "name": s.topic.name,
                "subscribed": s.subscribed,
                "changed_at": _local(s.changed_at),
            }
            for s in subscriptions
        ],
        "consent_records": [
            {
                "at": _local(record.created_at),
                "email": record.email,
                "action": record.action,
                "source": record.source,
                "topics": record.topics,
                "ip_address": record.ip_address,
                "user_agent": record.user_agent,
                "wording": record.wording,
                "wording_version": record.wording_version,
            }
            for record in subscriber.consent_records.order_by("created_at", "id")
        ],
        **kept_by_other_apps(subscriber),
    }


def kept_by_other_apps(subscriber: Subscriber) -> dict[str, list[dict[str, str]]]:
    """What the apps after this one keep about the reader (clicks, …): each receiver of
    reader_data_requested answers (section name, rows)."""
    sections: dict[str, list[dict[str, str]]] = {}
    for _receiver, response in reader_data_requested.send(export_data, subscriber=subscriber):
        if not (
            isinstance(response, tuple) and len(response) == 2 and isinstance(response[1], list)
        ):
            raise TypeError(f"reader_data_requested answered {response!r}, not (name, rows)")
        sections[response[0]] = response[1]
    return sections


def erase(subscriber: Subscriber, evidence: Evidence) -> None:
    """Forget the reader, keeping only what the law requires: consent records and a suppression.

    The suppression (a hash of the address) keeps bulk mail from reaching it again; the reader's
    links stop working (new nonce).
    """
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.status == Subscriber.Status.ERASED:
            return
        _record(subscriber, ConsentRecord.Action.ERASE, evidence, topics=[])
        # ERASED even over a bounce or complaint suppression: an erasure is never lifted.
        Suppression.objects.update_or_create(
            address_hash=address_hash(_address(subscriber)),
            defaults={"reason": Suppression.Reason.ERASED, "note": ""},
        )
        Subscription.objects.filter(subscriber=subscriber).update(
            subscribed=False, changed_at=timezone.now()
        )
        subscriber.email = None
        subscriber.name = ""
        subscriber.organisation = ""
        subscriber.status = Subscriber.Status.ERASED
        subscriber.erased_at = timezone.now()
        subscriber.nonce = new_nonce()
        subscriber.save()
        reader_erased.send(erase, subscriber=subscriber)


@dataclass
class RowError:
    line: int
    email: str
    message: str


@dataclass
class ImportReport:
    encoding: str = ""
    rows: int = 0
    created: int = 0
    existing: int = 0
    suppressed: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)


IMPORT_CHUNK_SIZE = 2000


class _ImportRow(TypedDict):
    email: str
    name: str
    organisation: str
    language: str
    charset: str
    topics: list[str]


def _checked_row(
    raw_email: str,
    keys: list[str],
    topics: dict[str, Topic],
    *,
    name: str = "",
    organisation: str = "",
    language: str = "",
    charset: str = "",
) -> _ImportRow:
    """One reader added with consent held elsewhere (a CSV row, an API call), checked; else
    InvalidInput saying what is wrong."""
    email = normalise_email(raw_email)
    name = clean_text(name, NAME_MAX_LENGTH, _("お名前"))
    organisation = clean_text(organisation, ORGANISATION_MAX_LENGTH, _("所属"))
    unknown = [key for key in keys if key not in topics]
    if unknown:
        raise InvalidInput(_("不明な配信種別です: %(keys)s") % {"keys": ", ".join(unknown)})
    if not keys:
        raise InvalidInput(_("受け取るメールマガジンを一つ以上選んでください。"))
    language = language.strip().lower() or Subscriber.Language.JA
    if language not in Subscriber.Language.values:
        raise InvalidInput(_("言語は ja か en で指定してください。"))
    charset = charset.strip().lower() or default_charset(email)
    if charset not in Subscriber.Charset.values:
        raise InvalidInput(_("文字コードは utf-8 か iso-2022-jp で指定してください。"))
    return {
        "email": email,
        "name": name,
        "organisation": organisation,
        "language": language,
        "charset": charset,
        "topics": sorted(set(keys)),
    }


class AlreadyKnown(InvalidInput):
    """The address is a reader's already (in whatever state) or suppressed: left as it is."""


def add_with_consent(
    email: str,
    topic_keys: list[str],
    consent_basis: str,
    evidence: Evidence,
    *,
    name: str = "",
    organisation: str = "",
    language: str = "",
    charset: str = "",
) -> Subscriber:
    """A reader whose consent another system obtained and declares (`consent_basis`, e.g. "event
    registration form, 2026-12-01"): confirmed at once, without a confirmation mail. The rules
    of an import hold, through the same code: an address already known (an opt-out is never
    undone) or suppressed raises AlreadyKnown, and nothing changes."""
    consent_basis = clean_text(consent_basis, 300, _("同意の取得元"))
    if not consent_basis:
        raise InvalidInput(_("同意の取得元 (例: 「2026年セミナー申込者」) を入力してください。"))
    topics = {topic.key: topic for topic in Topic.objects.filter(is_active=True)}
    row = _checked_row(
        email,
        topic_keys,
        topics,
        name=name,
        organisation=organisation,
        language=language,
        charset=charset,
    )
    report = ImportReport()
    _import_chunk([row], topics, consent_basis, evidence, report)
    if report.suppressed:
        raise AlreadyKnown(_("このアドレスは配信停止の記録があるため、登録できません。"))
    if report.existing:
        raise AlreadyKnown(_("このアドレスはすでに登録されています。"))
    reader = Subscriber.objects.get(email=row["email"])
    audit.tell("subscribers.add_with_consent", target=f"#{reader.pk}", topics=row["topics"])
    return reader


def import_subscribers(
    data: bytes,
    source_description: str,
    evidence: Evidence,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Add the readers of a CSV file as confirmed subscribers, with the consent basis declared.

    Each row is checked on its own: a bad row is reported with its line number and skipped, the
    rest go in. An address already known (whatever its state: an opt-out must never be undone by
    an import) or suppressed is left as it is. Rows go in by chunks, each chunk one transaction
    of three bulk inserts, so no subscriber is ever half-written.
    """
    source_description = clean_text(source_description, 300, _("同意の取得元"))
    if not source_description:
        raise InvalidInput(_("同意の取得元 (例: 「2026年セミナー申込者」) を入力してください。"))
    try:
        text, encoding = csv_io.decode(data)
        columns, rows = csv_io.read_rows(text)
    except csv_io.CsvFormatError as error:
        raise InvalidInput(str(error)) from None
    lines = text.count("\n") or 1
    report = ImportReport(encoding=encoding)
    topics = {topic.key: topic for topic in Topic.objects.filter(is_active=True)}
    seen: dict[str, int] = {}
    chunk: list[_ImportRow] = []

    def cell(cells: list[str], column: str) -> str:
        position = columns.get(column)
        return cells[position] if position is not None and position < len(cells) else ""

    for line, cells in rows:
        report.rows += 1
        raw_email = cell(cells, "email")
        try:
            row = _checked_row(
                raw_email,
                csv_io.split_topics(cell(cells, "topics")) or list(topics),
                topics,
                name=cell(cells, "name"),
                organisation=cell(cells, "organisation"),
                language=cell(cells, "language"),
                charset=cell(cells, "charset"),
            )
        except InvalidInput as error:
            report.errors.append(RowError(line, raw_email.strip()[:254], str(error)))
            continue
        email = row["email"]
        if email in seen:
            report.duplicates += 1
            report.errors.append(
                RowError(line, email, _("%(line)d行目と同じアドレスです。") % {"line": seen[email]})
            )
            continue
        seen[email] = line
        chunk.append(row)
        if len(chunk) >= IMPORT_CHUNK_SIZE:
            _import_chunk(chunk, topics, source_description, evidence, report)
            chunk = []
            if progress:
                progress(line, lines)
    if chunk:
        _import_chunk(chunk, topics, source_description, evidence, report)
    if progress:
        progress(lines, lines)
    audit.tell(
        "subscribers.import",
        target=source_description,
        rows=report.rows,
        created=report.created,
        existing=report.existing,
        suppressed=report.suppressed,
        errors=len(report.errors),
    )
    return report


def _import_chunk(
    chunk: list[_ImportRow],
    topics: dict[str, Topic],
    source_description: str,
    evidence: Evidence,
    report: ImportReport,
) -> None:
    """Insert one chunk: 3 queries to filter it, 3 bulk inserts, whatever its size."""
    try:
        _insert_chunk(chunk, topics, source_description, evidence, report)
    except IntegrityError:
        # Someone signed up with one of these addresses while we were checking: check again.
        _insert_chunk(chunk, topics, source_description, evidence, report)


def _insert_chunk(
    chunk: list[_ImportRow],
    topics: dict[str, Topic],
    source_description: str,
    evidence: Evidence,
    report: ImportReport,
) -> None:
    emails = [row["email"] for row in chunk]
    hashes = {address_hash(email): email for email in emails}
    with transaction.atomic():
        existing = set(Subscriber.objects.filter(email__in=emails).values_list("email", flat=True))
        suppressed = {
            hashes[h]
            for h in Suppression.objects.filter(address_hash__in=hashes).values_list(
                "address_hash", flat=True
            )
        }
        now = timezone.now()
        fresh = [row for row in chunk if row["email"] not in existing | suppressed]
        subscribers = Subscriber.objects.bulk_create(
            [
                Subscriber(
                    email=row["email"],
                    address_hash=address_hash(row["email"]),
                    name=row["name"],
                    organisation=row["organisation"],
                    language=row["language"],
                    charset=row["charset"],
                    status=Subscriber.Status.CONFIRMED,
                    created_at=now,
                    confirmed_at=now,
                )
                for row in fresh
            ]
        )
        Subscription.objects.bulk_create(
            [
                Subscription(subscriber=subscriber, topic=topics[key], changed_at=now)
                for subscriber, row in zip(subscribers, fresh, strict=True)
                for key in row["topics"]
            ]
        )
        records = ConsentRecord.objects.bulk_create(
            [
                ConsentRecord(
                    subscriber=subscriber,
                    email=row["email"],
                    action=ConsentRecord.Action.SUBSCRIBE,
                    source=evidence.source,
                    topics=row["topics"],
                    ip_address=evidence.ip_address,
                    user_agent=evidence.user_agent[:300],
                    # What the institute declared about how consent was given elsewhere.
                    wording=source_description,
                    created_at=now,
                )
                for subscriber, row in zip(subscribers, fresh, strict=True)
            ]
        )
        if records:
            # What others do with the news (webhooks) never undoes the readers it is about.
            told = consent_recorded_in_bulk.send_robust(_insert_chunk, records=records)
            for receiver, error in told:
                if isinstance(error, Exception):
                    logger.error(
                        "after adding %d readers, %s failed: %r", len(records), receiver, error
                    )
    report.created += len(fresh)
    report.existing += len([row for row in chunk if row["email"] in existing])
    report.suppressed += len([row for row in chunk if row["email"] in suppressed - existing])


def export_rows(queryset: models.QuerySet[Subscriber]) -> Iterator[list[str]]:
    """Rows for the subscriber CSV export: two queries whatever the number of subscribers. The
    export is on the audit log (who took the readers' data, how many rows)."""
    count = queryset.count()
    audit.tell("subscribers.export", target=str(count), rows=count)
    keys_by_subscriber: dict[int, list[str]] = {}
    for subscriber_id, key in Subscription.objects.filter(
        subscriber__in=queryset, subscribed=True
    ).values_list("subscriber_id", "topic__key"):
        keys_by_subscriber.setdefault(subscriber_id, []).append(key)
    for subscriber in queryset.order_by("id").iterator(chunk_size=2000):
        yield [
            subscriber.email or "",
            subscriber.name,
            subscriber.organisation,
            subscriber.status,
            subscriber.language,
            subscriber.charset,
            ";".join(sorted(keys_by_subscriber.get(subscriber.pk, []))),
            _local(subscriber.created_at) or "",
            _local(subscriber.confirmed_at) or "",
        ]


EXPORT_HEADER = [
    "email",
    "name",
    "organisation",
    "status",
    "language",
    "charset",
    "topics",
    "created_at",
    "confirmed_at",
]
