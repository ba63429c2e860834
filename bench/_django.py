"""Django on a fresh database, for the benchmark scripts (run as `python bench/<script>.py`)."""

import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fresh_database(env: dict[str, str] | None = None) -> None:
    """Set up Django and migrate: SQLite in a new temporary data dir unless `env` names
    another DATABASE_URL (and data dir)."""
    env = env or {}
    os.environ["MERUMAGA_DATA_DIR"] = tempfile.mkdtemp(prefix="merumaga-bench-")
    if "DATABASE_URL" not in env:
        os.environ.pop("DATABASE_URL", None)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "merumaga.settings")
    sys.path.insert(0, ROOT)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
