"""Who receives a mailing: confirmed readers of its topic (attendees, for a reminder), less the
suppressed addresses. The delivery engine snapshots `deliverable` and asks it again before every
batch, so that an opt-out or a suppression that lands while sending stops the rest; the editor's
count before sending is the same query, so the number shown is the number mailed."""

from django.db.models import Exists, OuterRef, QuerySet

from merumaga.mailings.models import Mailing
from merumaga.publishing.models import Rsvp
from merumaga.subscribers.models import Subscriber, Suppression


def recipients(mailing: Mailing) -> QuerySet[Subscriber]:
    readers = Subscriber.objects.filter(
        status=Subscriber.Status.CONFIRMED,
        email__isnull=False,
        subscription__topic=mailing.topic,
        subscription__subscribed=True,
    )
    if mailing.kind == Mailing.Kind.EVENT_REMINDER:
        # A reminder goes only to readers who said they will attend.
        attending = Rsvp.objects.filter(event=mailing.event, answer=Rsvp.Answer.ATTENDING)
        readers = readers.filter(email__in=attending.values("email"))
    return readers.order_by("id")


def deliverable(mailing: Mailing) -> QuerySet[Subscriber]:
    """The recipients minus suppressed addresses (bounces, complaints, erasures), in SQL."""
    suppressed = Suppression.objects.filter(address_hash=OuterRef("address_hash"))
    return recipients(mailing).filter(~Exists(suppressed))
