from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PublishingConfig(AppConfig):
    """What the institute publishes: article digests, compact reports, events; the public site."""

    name = "merumaga.publishing"
    verbose_name = _("公開コンテンツ")

    def ready(self):
        from django.db.models.signals import post_migrate

        from merumaga.publishing import receivers  # noqa: F401 (connects the signal listeners)

        post_migrate.connect(_ensure_search_index, sender=self)


def _ensure_search_index(sender, using, plan=None, **kwargs):
    from django.db import connections

    from merumaga.publishing import search

    connection = connections[using]
    # Only once the search migration has run (the plan may stop before it).
    if (
        connection.vendor == "sqlite"
        and "publishing_search" in connection.introspection.table_names()
    ):
        search.ensure_sqlite_index(connection)
