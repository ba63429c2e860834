"""Who reads what: read-only queries the later apps share (mailings' audience, the count an
editor sees before publishing with a notification). No state changes here."""

from django.db.models import Exists, OuterRef, QuerySet

from merumaga.subscribers.models import Subscriber, Suppression, Topic


def readers_of(topic: Topic) -> QuerySet[Subscriber]:
    """Confirmed readers who receive `topic`."""
    return Subscriber.objects.filter(
        status=Subscriber.Status.CONFIRMED,
        email__isnull=False,
        subscription__topic=topic,
        subscription__subscribed=True,
    )


def without_suppressed(readers: QuerySet[Subscriber]) -> QuerySet[Subscriber]:
    """Less the suppressed addresses (bounces, complaints, erasures), in SQL: one anti-join on
    the address hash kept beside each address."""
    suppressed = Suppression.objects.filter(address_hash=OuterRef("address_hash"))
    return readers.filter(~Exists(suppressed))


def deliverable_count(topic_key: str) -> int:
    """How many readers a mailing of this topic would reach now."""
    topic = Topic.objects.filter(key=topic_key).first()
    return without_suppressed(readers_of(topic)).count() if topic else 0
