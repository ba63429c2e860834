import logging
from datetime import timedelta

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from merumaga.institute.services import weekly_schedule
from merumaga.mailings import services
from merumaga.mailings.models import Mailing
from merumaga.publishing.models import Event

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="*"))
def start_scheduled_mailings() -> int:
    return services.start_due()


@db_periodic_task(crontab(minute="*"))
def compose_weekly_when_due() -> None:
    """The day and time are in the admin's site settings, so the check runs every minute."""
    if not services.weekly_due():
        return
    mailing = services.compose_weekly().mailing
    if (
        mailing is not None
        and mailing.status == Mailing.Status.DRAFT
        and not weekly_schedule().needs_approval
    ):
        services.start(mailing, note="weekly, no approval needed")


@db_periodic_task(crontab(minute="*/10"))
def send_event_reminders() -> int:
    """Each event with a reminder set gets one, N days before it starts, to its attendees."""
    now = timezone.now()
    started = 0
    for event in Event.objects.filter(
        status=Event.EventStatus.PUBLISHED, reminder_days__isnull=False, starts_at__gt=now
    ).exclude(mailing__kind=Mailing.Kind.EVENT_REMINDER):
        if event.reminder_days is None:  # left out by the query already
            continue
        if event.starts_at - timedelta(days=event.reminder_days) <= now:
            mailing = services.compose_event_reminder(event)
            try:
                services.start(mailing, note="reminder")
            except Exception as error:
                # e.g. nobody attends yet: the draft stays, with the reason, for the editor to
                # see; the other events get theirs.
                if not isinstance(error, services.MailingError):
                    logger.exception("reminder for event %s could not start", event.pk)
                services.record_note(mailing, str(error)[:300])
                continue
            started += 1
    return started
