from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MailingsConfig(AppConfig):
    """What is sent: composing, rendering, scheduling and archiving the mailings."""

    name = "merumaga.mailings"
    verbose_name = _("メールマガジン配信")

    def ready(self):
        from merumaga.mailings import receivers  # noqa: F401  (connects to publishing's signals)
