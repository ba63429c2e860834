"""Signed links for readers: confirm, preferences, one-click unsubscribe, RSVP, a new address.
No login, no cookie.

Each purpose has its own salt, so a token made for one cannot be used for another. The payload
carries the subscriber's nonce: rotating it (on erasure) revokes every link sent so far.
"""

from datetime import timedelta
from typing import Protocol

from django.conf import settings
from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac

from merumaga.subscribers.models import Subscriber

CONFIRM = "confirm"  # scope: the topic keys asked for, comma-separated, or ALL_TOPICS
PREFERENCES = "preferences"
UNSUBSCRIBE = "unsubscribe"  # scope: a topic key, or ALL_TOPICS
RSVP = "rsvp"  # scope: an event id
ADDRESS = "address"  # scope: the new address the reader asked to move to
ALL_TOPICS = "*"
_SCOPED = (CONFIRM, UNSUBSCRIBE, RSVP, ADDRESS)
_EXPIRING = (CONFIRM, ADDRESS)  # valid CONFIRMATION_MAX_AGE_DAYS; the others for good


class TokenHolder(Protocol):
    """What a reader's token is made of: a Subscriber, or a row of its fields (the fast
    renderer's readers)."""

    @property
    def pk(self) -> int: ...
    @property
    def nonce(self) -> str: ...


class InvalidToken(Exception):
    """Bad, tampered, expired or revoked: callers answer all of these the same way."""


def token_salt(purpose: str) -> str:
    """The signing salt of a reader token for `purpose` (make_token); the fast renderer derives
    its key from it once per mailing."""
    return f"merumaga.subscribers.{purpose}"


def address_token_salt(purpose: str) -> str:
    """The HMAC salt of an address token for `purpose` (address_token)."""
    return f"merumaga.address.{purpose}"


def make_token(subscriber: TokenHolder, purpose: str, scope: str = ALL_TOPICS) -> str:
    """A link token; `scope` says what an unsubscribe or RSVP link acts on."""
    payload = [subscriber.pk, subscriber.nonce]
    if purpose in _SCOPED:
        payload.append(str(scope))
    return signing.dumps(payload, salt=token_salt(purpose))


def read_token(token: str, purpose: str) -> tuple[Subscriber, str]:
    """The subscriber and scope (what a confirmation, unsubscribe, RSVP or address link acts on;
    ALL_TOPICS for a token made without one) a token names, or InvalidToken."""
    max_age = None
    if purpose in _EXPIRING:
        max_age = timedelta(days=settings.CONFIRMATION_MAX_AGE_DAYS)
    try:
        payload = signing.loads(token, salt=token_salt(purpose), max_age=max_age)
        subscriber_id, nonce, *rest = payload
        subscriber = Subscriber.objects.get(pk=subscriber_id, nonce=nonce)
    except (signing.BadSignature, ValueError, TypeError, Subscriber.DoesNotExist):
        raise InvalidToken from None
    if subscriber.status == Subscriber.Status.ERASED:
        raise InvalidToken
    return subscriber, (rest[0] if rest else ALL_TOPICS)


def address_token(purpose: str, *ids: int) -> str:
    """A token for the local part of an address (VERP bounce, mailto unsubscribe): digits, dashes
    and lower-case hex only, since mail systems may change the case of a local part."""
    body = "-".join(str(number) for number in ids)
    mac = salted_hmac(address_token_salt(purpose), body).hexdigest()[:16]
    return f"{body}-{mac}"


def read_address_token(purpose: str, token: str, count: int) -> tuple[int, ...]:
    """The ids an address token carries; InvalidToken when forged or malformed."""
    *parts, mac = token.lower().split("-")
    if len(parts) != count or not all(part.isascii() and part.isdecimal() for part in parts):
        raise InvalidToken
    expected = address_token(purpose, *(int(part) for part in parts)).rsplit("-", 1)[1]
    if not constant_time_compare(mac, expected):
        raise InvalidToken
    return tuple(int(part) for part in parts)
