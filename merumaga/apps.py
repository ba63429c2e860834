from django.apps import AppConfig


class MerumagaConfig(AppConfig):
    """The project itself, as an app: it holds the commands that run the whole platform."""

    name = "merumaga"
    verbose_name = "merumaga"
