"""What publishing does when the apps before it say something happened."""

import logging

from django.dispatch import receiver
from django.utils.translation import gettext as _

from merumaga.publishing import interests, services
from merumaga.publishing.models import ReaderInterest, Rsvp, Tag
from merumaga.subscribers.models import Subscriber
from merumaga.subscribers.signals import (
    ReaderChoice,
    address_changed,
    reader_choices_requested,
    reader_data_requested,
    reader_erased,
)

logger = logging.getLogger(__name__)


@receiver(address_changed)
def answers_follow_the_reader(sender, subscriber, old_email, **kwargs):
    """A reader's answers move with them to their new address, in the same transaction: their
    reminders and invitation links (which answer as the reader's address) keep finding them."""
    for answer in Rsvp.objects.filter(email=old_email).select_related("event"):
        if Rsvp.objects.filter(event=answer.event, email=subscriber.email).exists():
            # The new address answered this event itself: that answer stands, this one stays.
            logger.warning(
                "RSVP %s to event %s stays at the old address: the new one answered too",
                answer.pk,
                answer.event_id,
            )
            continue
        answer.email, answer.subscriber = subscriber.email, subscriber
        answer.save(update_fields=["email", "subscriber", "updated_at"])


@receiver(reader_choices_requested)
def research_fields(sender, subscriber: Subscriber, **kwargs) -> ReaderChoice | None:
    """The tags, as research fields a reader may choose in the preference centre."""
    tags = list(Tag.objects.order_by("name").values_list("pk", "name"))
    if not tags:
        return None
    return ReaderChoice(
        key="fields",
        label=_("関心のある研究分野"),
        help=_("週報では、選んだ分野の記事を先に載せます。選ばなければ編集部の並び順のままです。"),
        options=tags,
        chosen=interests.chosen_tags(subscriber.pk),
        save=lambda chosen: services.set_reader_interests(subscriber.pk, chosen),
    )


@receiver(reader_data_requested)
def research_fields_of(
    sender, subscriber: Subscriber, **kwargs
) -> tuple[str, list[dict[str, str]]]:
    rows = ReaderInterest.objects.filter(subscriber=subscriber).select_related("tag")
    return "research_fields", [{"tag": row.tag.name} for row in rows.order_by("tag__name")]


@receiver(reader_erased)
def forget_research_fields(sender, subscriber: Subscriber, **kwargs) -> None:
    ReaderInterest.objects.filter(subscriber=subscriber).delete()
