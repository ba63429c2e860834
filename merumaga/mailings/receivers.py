"""Published content becomes mail: publishing announces, mailings composes and sends."""

import logging

from django.dispatch import receiver

from merumaga.mailings import services
from merumaga.publishing import signals

logger = logging.getLogger(__name__)


def _announce(item) -> None:
    """Send the announcement of `item` if its editor asked for one when publishing."""
    if not item.notify_subscribers:
        return
    mailing = services.announcement_for(item)
    try:
        services.start(mailing, note="published")
    except services.MailingError as error:
        # Left as a draft in the admin's list, with the reason in its history.
        services.record_note(mailing, str(error)[:300])
        logger.warning("mailing %s left as draft: %s", mailing.pk, error)


@receiver(signals.article_published)
def announce_article(sender, instance, **kwargs):
    _announce(instance)


@receiver(signals.report_published)
def announce_report(sender, instance, **kwargs):
    _announce(instance)


@receiver(signals.event_published)
def invite_to_event(sender, instance, **kwargs):
    _announce(instance)
