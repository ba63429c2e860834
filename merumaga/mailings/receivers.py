"""Published content becomes mail: publishing announces, mailings composes and sends."""

import logging

from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from merumaga.mailings import services
from merumaga.mailings.models import Click
from merumaga.publishing import signals
from merumaga.subscribers.models import Subscriber
from merumaga.subscribers.signals import reader_data_requested, reader_erased

logger = logging.getLogger(__name__)


def _announce(item) -> None:
    """Send the announcement of `item` if its editor asked for one when publishing.

    This runs after the publishing commit: whatever goes wrong here must not look like a failed
    publish, and must not be lost. A mailing that cannot start stays a draft in the admin's
    list with the reason in its history; anything else is logged with the item.
    """
    if not item.notify_subscribers:
        return
    mailing = None
    try:
        mailing = services.announcement_for(item)
        services.start(mailing, note="published")
    except Exception as error:
        logger.log(
            logging.WARNING if isinstance(error, services.MailingError) else logging.ERROR,
            "%s %s published, its announcement not sent: %s",
            type(item).__name__,
            item.pk,
            error,
            exc_info=not isinstance(error, services.MailingError),
        )
        if mailing is not None:
            reason = str(error) if isinstance(error, services.MailingError) else repr(error)
            services.record_note(mailing, reason[:300])


@receiver(signals.announcement_preview_requested)
def preview_announcement(sender, instance, by=None, **kwargs) -> str:
    """The announcement draft of an item not yet published, for its editor to look at and
    test-send: the preview's URL."""
    mailing = services.announcement_for(instance, by=by)
    return reverse("admin:mailings_mailing_preview", args=[mailing.pk])


@receiver(signals.article_published)
def announce_article(sender, instance, **kwargs):
    _announce(instance)


@receiver(signals.report_published)
def announce_report(sender, instance, **kwargs):
    _announce(instance)


@receiver(signals.event_published)
def invite_to_event(sender, instance, **kwargs):
    _announce(instance)


@receiver(reader_erased)
def forget_clicks(sender: object, subscriber: Subscriber, **kwargs: object) -> None:
    """An erased reader's clicks stay counted, no longer as theirs."""
    Click.objects.filter(subscriber=subscriber).update(subscriber=None)


@receiver(reader_data_requested)
def clicks_of(
    sender: object, subscriber: Subscriber, **kwargs: object
) -> tuple[str, list[dict[str, str]]]:
    """The reader's clicks, when the site keeps them per reader (none otherwise)."""
    rows = Click.objects.filter(subscriber=subscriber).order_by("at", "id")
    return "clicks", [
        {
            "at": timezone.localtime(at).isoformat(),
            "mailing": str(mailing_id),
            "subject": subject,
            "url": url,
        }
        for at, mailing_id, subject, url in rows.values_list(
            "at", "link__mailing_id", "link__mailing__subject", "link__url"
        )
    ]
