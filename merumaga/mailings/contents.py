"""What a mailing carries, read from the published content; nothing here changes anything.

Read by the services (composing), the checks and the rendering alike.
"""

from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from merumaga.mailings.models import Mailing
from merumaga.publishing.models import Event, Report, Status

# Only the first weekly report looks back this far; later ones take everything not yet sent.
FIRST_WEEKLY_LOOKBACK = timedelta(days=7)
UPCOMING_EVENTS_WINDOW = timedelta(days=45)


def weekly_gone_out() -> QuerySet[Mailing]:
    return Mailing.objects.filter(kind=Mailing.Kind.WEEKLY).filter(
        Q(status__in=(Mailing.Status.SENDING, Mailing.Status.PAUSED, Mailing.Status.SENT))
        | Q(status=Mailing.Status.CANCELLED, audience_frozen_at__isnull=False)
    )


def weekly_extras(mailing: Mailing) -> dict:
    """The reports and events a weekly report lists after its articles."""
    until = mailing.covers_until or timezone.now()
    previous = (
        weekly_gone_out()
        .filter(covers_until__lt=until)
        .order_by("-covers_until")
        .values_list("covers_until", flat=True)
        .first()
    ) or until - FIRST_WEEKLY_LOOKBACK
    return {
        "reports": list(
            Report.objects.published().filter(published_at__gt=previous, published_at__lte=until)
        ),
        "events": list(
            Event.objects.filter(
                status=Event.EventStatus.PUBLISHED,
                starts_at__gt=until,
                starts_at__lte=until + UPCOMING_EVENTS_WINDOW,
            ).order_by("starts_at")
        ),
    }


def publishing_status_ok(mailing: Mailing) -> bool:
    """What a mailing announces is still published (an article taken back must not go out)."""
    for item in (mailing.article, mailing.report):
        if item is not None and item.status != Status.PUBLISHED:
            return False
    return True
