"""What publishing does when the apps before it say something happened."""

import logging

from django.dispatch import receiver

from merumaga.publishing.models import Rsvp
from merumaga.subscribers.signals import address_changed

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
