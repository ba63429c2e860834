"""Background work of the delivery engine: telling the operator what it did by itself."""

from django.conf import settings
from django.urls import reverse
from huey.contrib.djhuey import db_task

from merumaga import outgoing
from merumaga.delivery import domains
from merumaga.delivery.models import DomainHold
from merumaga.institute.mail import templated_mail


@db_task(retries=3, retry_delay=60, priority=outgoing.TASK_PRIORITY)
def tell_operator_about_hold(hold_id: int) -> None:
    """Mail MERUMAGA_OPERATOR_EMAIL that sending to a domain was held, why, and where to lift
    it. Retried if the relay is down: the log and the admin banner say it meanwhile."""
    hold = DomainHold.objects.filter(pk=hold_id).first()
    if hold is None or not settings.OPERATOR_EMAIL:
        return
    context = {
        "hold": hold,
        "holds_url": settings.SITE_URL + reverse("admin:delivery_domainhold_changelist"),
        "others": [d for d in domains.active_holds() if d != hold.domain],
    }
    outgoing.send(
        templated_mail(
            "delivery/mail/domain_hold",
            context,
            to=settings.OPERATOR_EMAIL,
            language=settings.LANGUAGE_CODE,
            about="the operator",
        )
    )
