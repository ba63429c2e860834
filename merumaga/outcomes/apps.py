from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OutcomesConfig(AppConfig):
    """What mailings achieved: figures read from every app before it (no state of its own)."""

    name = "merumaga.outcomes"
    verbose_name = _("結果")
