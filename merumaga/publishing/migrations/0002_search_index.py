"""Indexes for the site search (merumaga/publishing/search.py), one kind per backend.

SQLite: an FTS5 trigram table, `publishing_search`, filled from the existing articles and reports
and kept in sync by triggers. PostgreSQL: the pg_trgm extension and GIN trigram indexes on the
searched columns. Other backends: nothing (search then scans, and stays correct).
"""

from django.db import migrations

from merumaga.publishing import search


def create_index(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "sqlite":
        search.create_sqlite_index(connection)
    elif connection.vendor == "postgresql":
        search.create_postgresql_indexes(connection)


def drop_index(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "sqlite":
        search.drop_sqlite_index(connection)
    elif connection.vendor == "postgresql":
        search.drop_postgresql_indexes(connection)


class Migration(migrations.Migration):
    dependencies = [
        ("publishing", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
