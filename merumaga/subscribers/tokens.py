"""Signed links for readers: confirm, preferences, one-click unsubscribe. No login, no cookie.

Each purpose has its own salt, so a token made for one cannot be used for another. The payload
carries the subscriber's nonce: rotating it (on erasure) revokes every link sent so far.
"""

from datetime import timedelta

from django.conf import settings
from django.core import signing

from merumaga.subscribers.models import Subscriber

CONFIRM = "confirm"
PREFERENCES = "preferences"
UNSUBSCRIBE = "unsubscribe"  # scope: a topic key, or ALL_TOPICS
RSVP = "rsvp"  # scope: an event id
ALL_TOPICS = "*"
_SCOPED = (UNSUBSCRIBE, RSVP)


class InvalidToken(Exception):
    """Bad, tampered, expired or revoked: callers answer all of these the same way."""


def make_token(subscriber: Subscriber, purpose: str, scope: str = ALL_TOPICS) -> str:
    """A link token; `scope` says what an unsubscribe or RSVP link acts on."""
    payload = [subscriber.pk, subscriber.nonce]
    if purpose in _SCOPED:
        payload.append(str(scope))
    return signing.dumps(payload, salt=f"merumaga.subscribers.{purpose}")


def read_token(token: str, purpose: str) -> tuple[Subscriber, str]:
    """The subscriber and scope (for unsubscribe and RSVP) a token names, or InvalidToken."""
    max_age = None
    if purpose == CONFIRM:
        max_age = timedelta(days=settings.CONFIRMATION_MAX_AGE_DAYS)
    try:
        payload = signing.loads(token, salt=f"merumaga.subscribers.{purpose}", max_age=max_age)
        subscriber_id, nonce, *rest = payload
        subscriber = Subscriber.objects.get(pk=subscriber_id, nonce=nonce)
    except (signing.BadSignature, ValueError, TypeError, Subscriber.DoesNotExist):
        raise InvalidToken from None
    if subscriber.status == Subscriber.Status.ERASED:
        raise InvalidToken
    return subscriber, (rest[0] if rest else ALL_TOPICS)
