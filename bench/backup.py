"""Time `merumaga backup` and `merumaga restore` on a large platform: N readers (with their
consent records) and a mailing's N delivery rows, half sent.

    .venv/bin/python bench/backup.py --backend sqlite --readers 1000000
    .venv/bin/python bench/backup.py --backend postgres --readers 1000000
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from _django import ROOT, fresh_database
from delivery import database_url, make_deliveries, make_readers, make_weekly


def make_consent_records() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO subscribers_consentrecord (subscriber_id, email, action, source, topics,"
            " user_agent, wording, wording_version, created_at) "
            """SELECT id, email, 'subscribe', 'import', '["weekly"]', '', 'bench', '', """
            "created_at FROM subscribers_subscriber"
        )


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--readers", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgres://merumaga:merumaga@127.0.0.1:5432")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="merumaga-bench-")
    env = {
        "MERUMAGA_DATA_DIR": data_dir,
        "DATABASE_URL": database_url(args.backend, data_dir, args.postgres),
        "MERUMAGA_LOG_LEVEL": "WARNING",
    }
    if args.backend == "sqlite":
        os.environ.pop("REDIS_URL", None)
    fresh_database(env)
    make_readers(args.readers)
    make_consent_records()
    make_deliveries(make_weekly().pk)
    merumaga = [sys.executable, "-m", "merumaga.cli"]
    archive = os.path.join(tempfile.mkdtemp(prefix="merumaga-backup-"), "backup.tar.gz")
    backup_s = timed([*merumaga, "backup", archive], {**os.environ, **env})

    restored_dir = tempfile.mkdtemp(prefix="merumaga-restored-")
    target = {**os.environ, **env, "MERUMAGA_DATA_DIR": restored_dir}
    if args.backend == "sqlite":
        target["DATABASE_URL"] = f"sqlite:///{restored_dir}/merumaga.sqlite3"
    else:
        import psycopg

        with psycopg.connect(f"{args.postgres}/postgres", autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS merumaga_bench_restored")
            admin.execute("CREATE DATABASE merumaga_bench_restored")
        target["DATABASE_URL"] = f"{args.postgres}/merumaga_bench_restored"
    restore_s = timed([*merumaga, "restore", archive], target)
    print(
        f"backend={args.backend} readers={args.readers} consent_records={args.readers} "
        f"delivery_rows={args.readers} backup_s={backup_s:.1f} restore_s={restore_s:.1f} "
        f"archive_mb={os.path.getsize(archive) / 2**20:.0f}"
    )


if __name__ == "__main__":
    sys.exit(main())
