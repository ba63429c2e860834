"""Published content becomes mail: publishing announces, mailings composes and sends."""

import logging

from django.dispatch import receiver

from merumaga.mailings import services
from merumaga.publishing import signals

logger = logging.getLogger(__name__)


def _send(mailing) -> None:
    try:
        services.start(mailing, note="published")
    except services.MailingError as error:
        # Left as a draft in the admin, where the editor sees why.
        logger.warning("mailing %s left as draft: %s", mailing.pk, error)


@receiver(signals.article_published)
def announce_article(sender, instance, **kwargs):
    if instance.notify_subscribers:
        _send(services.compose_for_article(instance))


@receiver(signals.report_published)
def announce_report(sender, instance, **kwargs):
    _send(services.compose_for_report(instance))


@receiver(signals.event_published)
def invite_to_event(sender, instance, **kwargs):
    _send(services.compose_event_invitation(instance))
