from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DeliveryConfig(AppConfig):
    """Getting mail out: the relay, or the built-in mail catcher when there is none."""

    name = "merumaga.delivery"
    verbose_name = _("配信")
