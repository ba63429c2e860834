"""Who receives a mailing: confirmed readers of its topic (attendees, for a reminder), less the
suppressed addresses. The delivery engine snapshots `deliverable` and asks it again before every
batch, so that an opt-out or a suppression that lands while sending stops the rest; the editor's
count before sending is the same query, so the number shown is the number mailed."""

from django.db.models import QuerySet

from merumaga.mailings.models import Mailing
from merumaga.publishing.models import Rsvp
from merumaga.subscribers.models import Subscriber
from merumaga.subscribers.readers import readers_of, without_suppressed


def intended_readers(mailing: Mailing) -> QuerySet[Subscriber]:
    """The readers the mailing is meant for, before suppressed addresses are taken out
    (`deliverable`; the mailing's `recipients` field counts those)."""
    readers = readers_of(mailing.topic)
    if mailing.kind == Mailing.Kind.EVENT_REMINDER:
        # A reminder goes only to readers who said they will attend.
        attending = Rsvp.objects.filter(event=mailing.event, answer=Rsvp.Answer.ATTENDING)
        readers = readers.filter(email__in=attending.values("email"))
    return readers.order_by("id")


def deliverable(mailing: Mailing) -> QuerySet[Subscriber]:
    """The intended readers minus suppressed addresses."""
    return without_suppressed(intended_readers(mailing))
