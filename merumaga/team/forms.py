from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.urls import reverse

from merumaga.team import tasks


class StaffPasswordResetForm(PasswordResetForm):
    """Password reset for staff accounts only (readers have no password), mailed through the
    platform's one mail path. Whether an address is known is never shown: the page after the
    form reads the same either way."""

    def get_users(self, email):
        return (user for user in super().get_users(email) if user.is_staff)

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        path = reverse(
            "password_reset_confirm", kwargs={"uidb64": context["uid"], "token": context["token"]}
        )
        tasks.send_password_reset_mail(context["user"].pk, settings.SITE_URL + path)
