from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TeamConfig(AppConfig):
    """The people who run the mail magazine: their roles (groups of permissions) and the audit
    log of what they changed."""

    name = "merumaga.team"
    verbose_name = _("チーム")

    def ready(self) -> None:
        from merumaga.team import audit

        audit.connect()
