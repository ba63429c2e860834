from datetime import timedelta

from django.utils import timezone

from merumaga.delivery.models import Delivery
from merumaga.mailings.models import Mailing
from merumaga.subscribers.models import Subscriber, Topic


def mailed(subscriber: Subscriber, days_ago: float = 1) -> Delivery:
    """A mailing sent to the reader `days_ago`: what makes a bounce without our token credible."""
    when = timezone.now() - timedelta(days=days_ago)
    mailing = Mailing.objects.create(
        kind="weekly",
        topic=Topic.objects.get(key="weekly"),
        subject="週報",
        status="sent",
        started_at=when,
    )
    return Delivery.objects.create(
        mailing=mailing, subscriber=subscriber, status="sent", updated_at=when
    )
