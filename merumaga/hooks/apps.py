from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HooksConfig(AppConfig):
    """Outgoing webhooks: what happened, POSTed and signed to the endpoints operators register."""

    name = "merumaga.hooks"
    verbose_name = _("Webhook")

    def ready(self) -> None:
        from merumaga.hooks import receivers

        receivers.connect()
