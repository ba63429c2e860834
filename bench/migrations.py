"""How long the migrations that touch the largest tables take on a live-sized database.

For each: a fresh database migrated to just before it, N rows put into the table it changes
(through the models as they were then), then the migration alone, timed.

    .venv/bin/python bench/migrations.py --backend sqlite --rows 1000000
    .venv/bin/python bench/migrations.py --backend postgres --rows 1000000
"""

import argparse
import os
import sys
import tempfile
import time

from _django import fresh_database
from delivery import database_url

BATCH = 20_000

# (app, migration, the one before it, what is filled)
TARGETS = [
    ("subscribers", "0003_subscriber_address_hash", "0002_topics", "readers"),
    ("subscribers", "0006_pending_email", "0005_rate_counter", "readers"),
    ("subscribers", "0008_consentrecord_mailing_id", "0007_empty_mail_signup", "consent"),
]


def fill(state_apps, what: str, rows: int) -> None:
    from django.utils import timezone

    subscriber = state_apps.get_model("subscribers", "Subscriber")
    now = timezone.now()
    if what == "readers":
        for start in range(0, rows, BATCH):
            subscriber.objects.bulk_create(
                subscriber(email=f"reader{n}@example{n % 5}.jp", status="confirmed", created_at=now)
                for n in range(start, min(rows, start + BATCH))
            )
        return
    reader = subscriber.objects.create(email="reader@example.jp", status="confirmed")
    record = state_apps.get_model("subscribers", "ConsentRecord")
    for start in range(0, rows, BATCH):
        record.objects.bulk_create(
            record(
                subscriber=reader,
                email="reader@example.jp",
                action="subscribe",
                source="form",
                topics=["weekly"],
                created_at=now,
            )
            for _ in range(start, min(rows, start + BATCH))
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgres://merumaga:merumaga@127.0.0.1:5432")
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="merumaga-bench-")
    if args.backend == "sqlite":
        os.environ.pop("REDIS_URL", None)
    env = {
        "MERUMAGA_DATA_DIR": data_dir,
        "DATABASE_URL": database_url(args.backend, data_dir, args.postgres),
        "MERUMAGA_LOG_LEVEL": "WARNING",
    }
    fresh_database(env)  # migrated to the latest: each target goes back first
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    for app, target, previous, what in TARGETS:
        call_command("migrate", app, "zero", verbosity=0)
        call_command("migrate", app, previous, verbosity=0)
        state = MigrationExecutor(connection).loader.project_state((app, previous))
        filled = time.perf_counter()
        fill(state.apps, what, args.rows)
        filled = time.perf_counter() - filled
        started = time.perf_counter()
        call_command("migrate", app, target, verbosity=0)
        took = time.perf_counter() - started
        print(
            f"backend={args.backend} migration={app}.{target} rows={args.rows} "
            f"seconds={took:.1f} (filling took {filled:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
