"""Mail to staff accounts, in the background like every mail (retried if the relay is down)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from huey.contrib.djhuey import db_task

from merumaga import outgoing
from merumaga.institute.mail import templated_mail


@db_task(retries=3, retry_delay=60, priority=outgoing.TASK_PRIORITY)
def send_password_reset_mail(user_id: int, reset_url: str) -> None:
    user = get_user_model().objects.filter(pk=user_id, is_active=True, is_staff=True).first()
    if user is None or not user.email:
        return
    outgoing.send(
        templated_mail(
            "team/mail/password_reset",
            {
                "user": user,
                "reset_url": reset_url,
                "days": settings.PASSWORD_RESET_TIMEOUT // (24 * 60 * 60),
            },
            to=user.email,
            language=settings.LANGUAGE_CODE,
            about=f"staff account {user.pk}",
        )
    )
