from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InstituteConfig(AppConfig):
    """The sender: the institute's name, postal address and contact, shown in every mail."""

    name = "merumaga.institute"
    verbose_name = _("研究所 (送信者情報)")
