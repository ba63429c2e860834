from django.apps import AppConfig


class SubscribersConfig(AppConfig):
    """People, their consent and their choice of mailings."""

    name = "merumaga.subscribers"
    verbose_name = "購読者"
