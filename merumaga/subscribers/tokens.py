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
UNSUBSCRIBE = "unsubscribe"
ALL_TOPICS = "*"


class InvalidToken(Exception):
    """Bad, tampered, expired or revoked: callers answer all of these the same way."""


def make_token(subscriber: Subscriber, purpose: str, topic_key: str = ALL_TOPICS) -> str:
    payload = [subscriber.pk, subscriber.nonce]
    if purpose == UNSUBSCRIBE:
        payload.append(topic_key)
    return signing.dumps(payload, salt=f"merumaga.subscribers.{purpose}")


def read_token(token: str, purpose: str) -> tuple[Subscriber, str]:
    """The subscriber (and topic key, for unsubscribe) a token names, or InvalidToken."""
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
