from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OperationsConfig(AppConfig):
    """What the operator who runs the servers needs: health and readiness, metrics."""

    name = "merumaga.operations"
    verbose_name = _("運用")
