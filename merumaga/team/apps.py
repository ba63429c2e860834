from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TeamConfig(AppConfig):
    """The people who run the mail magazine: their roles (groups of permissions)."""

    name = "merumaga.team"
    verbose_name = _("チーム")
