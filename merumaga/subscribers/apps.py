from django.apps import AppConfig
from django.utils.translation import pgettext_lazy


class SubscribersConfig(AppConfig):
    """People, their consent and their choice of mailings."""

    name = "merumaga.subscribers"
    verbose_name = pgettext_lazy("plural", "購読者")
