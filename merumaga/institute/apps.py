from django.apps import AppConfig


class InstituteConfig(AppConfig):
    """The sender: the institute's name, postal address and contact, shown in every mail."""

    name = "merumaga.institute"
    verbose_name = "研究所 (送信者情報)"
