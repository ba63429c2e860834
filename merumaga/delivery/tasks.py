"""Background work of the delivery engine: telling the operator what it did by itself."""

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from huey.contrib.djhuey import db_task

from merumaga.delivery import domains
from merumaga.delivery.models import DomainHold


@db_task(retries=3, retry_delay=60)
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
    send_mail(
        subject=" ".join(render_to_string("delivery/mail/hold_subject.txt", context).split()),
        message=render_to_string("delivery/mail/hold_body.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[settings.OPERATOR_EMAIL],
    )
