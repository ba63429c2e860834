"""A consistent backup of a running platform, and its restore into an empty one.

A backup is one .tar.gz:
- the database: SQLite's online backup API (a snapshot, taken while the web, tasks and workers
  go on writing), or `pg_dump --format=custom` for PostgreSQL (one transaction's snapshot);
- the task queue when it is SQLite (scheduled retries, reminders);
- the data directory's uploads (media/), the mail catcher's store (mail/) and the generated
  secret key (signed links in mail already sent keep working after a restore);
- manifest.json: the format, the backend, and the counts of what matters most, which a restore
  checks.
A restore refuses a database or data directory that holds anything, unless forced.

What was sent after the snapshot is not in it: restored, those rows are still due and are sent
again. The bound of duplicates is what went out between the backup and the loss.
"""

import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from merumaga.bounces.models import BounceEvent
from merumaga.delivery.models import Delivery
from merumaga.mailings.models import Mailing
from merumaga.subscribers.models import ConsentRecord, Subscriber, Suppression

FORMAT = 1
DATABASE_SQLITE = "database.sqlite3"
DATABASE_PG = "database.pgdump"
QUEUE_SQLITE = "huey.sqlite3"
KEY = "secret_key"
COUNTED = {
    "readers": Subscriber,
    "consent_records": ConsentRecord,
    "suppressions": Suppression,
    "mailings": Mailing,
    "deliveries": Delivery,
    "bounce_events": BounceEvent,
}


class BackupError(Exception):
    """What stops a backup or a restore, said for the operator."""


@dataclass
class Manifest:
    format: int
    created_at: str
    backend: str
    counts: dict[str, int]
    secret_key_included: bool

    @classmethod
    def read(cls, data: bytes) -> "Manifest":
        fields = json.loads(data)
        if fields.get("format") != FORMAT:
            raise BackupError(
                f"backup format {fields.get('format')!r}: this version reads {FORMAT}"
            )
        return cls(**fields)


def counts() -> dict[str, int]:
    return {name: model._default_manager.count() for name, model in COUNTED.items()}


def _backend() -> str:
    return "sqlite" if connection.vendor == "sqlite" else "postgresql"


def _sqlite_snapshot(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while other processes write (WAL)."""
    with sqlite3.connect(source) as live, sqlite3.connect(target) as copy:
        live.backup(copy)
    copy.close()


def _pg_arguments() -> tuple[list[str], dict[str, str]]:
    """pg_dump/pg_restore's connection arguments, and the password in the environment (never
    on the command line, where `ps` would show it)."""
    db = connection.settings_dict
    arguments = ["--dbname", db["NAME"]]
    for flag, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER")):
        if db.get(key):
            arguments += [flag, str(db[key])]
    return arguments, {"PGPASSWORD": str(db.get("PASSWORD") or "")}


def _run(command: list[str], secret_env: dict[str, str]) -> None:
    try:
        done = subprocess.run(
            command, env={**os.environ, **secret_env}, capture_output=True, text=True
        )
    except FileNotFoundError:
        raise BackupError(
            f"{command[0]} is not installed (apt-get install postgresql-client)"
        ) from None
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.strip()[:500]}")


def _queue_file() -> Path | None:
    """The task queue's SQLite file (none when it is on Redis)."""
    name = settings.HUEY.get("filename")
    return Path(str(name)) if name else None


def default_file(now: datetime | None = None) -> Path:
    moment = timezone.localtime(now or timezone.now())
    return settings.DATA_DIR / "backups" / f"merumaga-{moment:%Y%m%d-%H%M%S}.tar.gz"


def _key_file() -> Path | None:
    """The generated secret key, when the key comes from the data directory (not SECRET_KEY
    or SECRET_KEY_FILE, which the operator keeps)."""
    generated = settings.DATA_DIR / KEY
    return (
        generated
        if generated.exists() and generated.read_text().strip() == settings.SECRET_KEY
        else None
    )


def backup(target: Path) -> Manifest:
    target.parent.mkdir(parents=True, exist_ok=True)
    key = _key_file()
    manifest = Manifest(
        format=FORMAT,
        created_at=timezone.now().isoformat(),
        backend=_backend(),
        counts=counts(),
        secret_key_included=key is not None,
    )
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        staging = Path(work)
        if manifest.backend == "sqlite":
            database = staging / DATABASE_SQLITE
            _sqlite_snapshot(Path(connection.settings_dict["NAME"]), database)
        else:
            database = staging / DATABASE_PG
            arguments, secret = _pg_arguments()
            _run(
                ["pg_dump", "--format=custom", "--no-owner", "--file", str(database), *arguments],
                secret,
            )
        queue_file = _queue_file()
        partial = staging / "backup.tar.gz"
        # gzip level 6, not tarfile's 9: a third of the time for a few per cent more bytes.
        with tarfile.open(partial, "w:gz", compresslevel=6) as archive:
            body = json.dumps(manifest.__dict__, indent=1).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime = len(body), int(time.time())
            archive.addfile(info, io.BytesIO(body))
            archive.add(database, database.name)
            if queue_file and queue_file.exists():
                _sqlite_snapshot(queue_file, staging / QUEUE_SQLITE)
                archive.add(staging / QUEUE_SQLITE, QUEUE_SQLITE)
            for name, directory in (
                ("media", settings.MEDIA_ROOT),
                ("mail", settings.MAILCATCHER_DIR),
            ):
                if Path(directory).is_dir():
                    archive.add(directory, name)
            if key is not None:
                archive.add(key, KEY)
        partial.replace(target)  # whole or not at all
    return manifest


def _database_is_empty() -> bool:
    return "django_migrations" not in connection.introspection.table_names()


def _directory_is_empty(directory: Path) -> bool:
    return not directory.exists() or not any(directory.iterdir())


def _manifest_of(source: Path) -> Manifest:
    try:
        with tarfile.open(source, "r:gz") as archive:
            member = archive.extractfile("manifest.json")
            data = member.read() if member is not None else None
    except (tarfile.TarError, KeyError, OSError):
        data = None
    if data is None:
        raise BackupError(f"{source}: not a backup made by `merumaga backup`")
    return Manifest.read(data)


def restore(source: Path, force: bool = False) -> tuple[Manifest, dict[str, int]]:
    """Restore `source` here; the manifest and the counts found after it."""
    manifest = _manifest_of(source)
    with tarfile.open(source, "r:gz") as archive:
        if manifest.backend != _backend():
            raise BackupError(
                f"this backup is of {manifest.backend}; the configured database is {_backend()}"
            )
        media, mail = Path(settings.MEDIA_ROOT), Path(settings.MAILCATCHER_DIR)
        if not force:
            busy = [
                what
                for what, empty in (
                    ("the database", _database_is_empty()),
                    (str(media), _directory_is_empty(media)),
                    (str(mail), _directory_is_empty(mail)),
                )
                if not empty
            ]
            if busy:
                raise BackupError(
                    "not empty: " + ", ".join(busy) + " (restore into an empty data directory "
                    "and database, or give --force to replace what is there)"
                )
        with tempfile.TemporaryDirectory(dir=settings.DATA_DIR) as work:
            staging = Path(work)
            archive.extractall(staging, filter="data")
            connections.close_all()
            if manifest.backend == "sqlite":
                live = Path(connection.settings_dict["NAME"])
                for leftover in (live, Path(f"{live}-wal"), Path(f"{live}-shm")):
                    leftover.unlink(missing_ok=True)
                shutil.copyfile(staging / DATABASE_SQLITE, live)
            else:
                arguments, secret = _pg_arguments()
                clean = ["--clean", "--if-exists"] if force else []
                _run(
                    ["pg_restore", "--no-owner", *clean, *arguments, str(staging / DATABASE_PG)],
                    secret,
                )
            queue_file = _queue_file()
            if queue_file and (staging / QUEUE_SQLITE).exists():
                shutil.copyfile(staging / QUEUE_SQLITE, queue_file)
            for name, directory in (("media", media), ("mail", mail)):
                if (staging / name).is_dir():
                    shutil.rmtree(directory, ignore_errors=True)
                    shutil.copytree(staging / name, directory)
            if (staging / KEY).exists():
                shutil.copyfile(staging / KEY, settings.DATA_DIR / KEY)
    return manifest, counts()
