"""Who receives a mailing: confirmed readers of its topic, not suppressed — asked again before
every batch, so that an opt-out or a suppression that lands while sending stops the rest."""

from django.db.models import QuerySet

from merumaga.mailings.models import Mailing, SentMessage
from merumaga.publishing.models import Rsvp
from merumaga.subscribers.models import Subscriber, Suppression, address_hash


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


def next_batch(mailing: Mailing, size: int) -> tuple[list[Subscriber], list[Subscriber]]:
    """Up to `size` readers still to handle, as (to mail, suppressed): two queries per batch.

    Suppressed readers are returned apart so that the sender records them as skipped; otherwise
    they would come back in every batch.
    """
    done = SentMessage.objects.filter(mailing=mailing).values("subscriber_id")
    batch = list(recipients(mailing).exclude(pk__in=done)[:size])
    by_hash = {address_hash(reader.email): reader for reader in batch}
    suppressed = set(
        Suppression.objects.filter(address_hash__in=by_hash).values_list("address_hash", flat=True)
    )
    to_mail = [reader for key, reader in by_hash.items() if key not in suppressed]
    return to_mail, [by_hash[key] for key in suppressed]
