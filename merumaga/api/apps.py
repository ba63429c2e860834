from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    """The REST API (/api/v1/): other systems act through the same services as the admin."""

    name = "merumaga.api"
    verbose_name = _("API")
