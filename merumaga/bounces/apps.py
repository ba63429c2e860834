from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BouncesConfig(AppConfig):
    """What comes back: bounces, complaints and unsubscribe mails, read and acted on."""

    name = "merumaga.bounces"
    verbose_name = _("不達・苦情")

    def ready(self) -> None:
        from merumaga.bounces import receivers  # noqa: F401 (connects the signal listeners)
