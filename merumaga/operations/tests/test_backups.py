"""`merumaga backup` while a mailing is half sent, `merumaga restore` into a fresh data
directory and database: the same readers, consent records, suppressions, mailings and delivery
rows, and sending resumes with the rows still due, none sent twice. On both backends."""

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from merumaga.delivery import queue
from merumaga.delivery.catcher import list_messages
from merumaga.delivery.models import Delivery
from merumaga.mailings import services
from merumaga.subscribers.models import Suppression, address_hash
from merumaga.testing import mailing_of, make_subscriber

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fresh_place(tmp_path):
    """A data directory and an empty database of its own, as a new server would have."""
    env = {k: v for k, v in os.environ.items() if k not in ("MERUMAGA_DATA_DIR", "SMTP_URL")}
    env["MERUMAGA_DATA_DIR"] = str(tmp_path / "restored")
    url = os.environ.get("DATABASE_URL", "")
    if connection.vendor != "postgresql":
        env.pop("DATABASE_URL", None)
        yield env
        return
    import psycopg

    name = f"merumaga_restore_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as server:
        server.execute(f'CREATE DATABASE "{name}"')
    env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    yield env
    with psycopg.connect(admin, autocommit=True) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def merumaga(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "merumaga.cli", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_backup_taken_mid_mailing_restores_and_sending_resumes_once(
    tmp_path, settings, fresh_place, mail_catcher
):
    settings.MEDIA_ROOT = tmp_path / "media"
    (settings.MEDIA_ROOT / "covers").mkdir(parents=True)
    (settings.MEDIA_ROOT / "covers" / "battery.png").write_bytes(b"\x89PNG cover")
    for n in range(10):
        make_subscriber(f"reader{n}@example.jp", topics=["weekly"])
    Suppression.objects.create(address_hash=address_hash("gone@example.jp"), reason="hard")
    weekly = mailing_of("weekly")
    services.start(weekly)
    queue.freeze_audience(weekly)
    first = list(Delivery.objects.order_by("id").values_list("id", flat=True)[:4])
    Delivery.objects.filter(id__in=first).update(status=Delivery.Status.SENT)  # as a worker did

    target = tmp_path / "backup.tar.gz"
    call_command("backup", str(target), stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert target.stat().st_size > 0

    with pytest.raises(CommandError, match="not empty"):
        call_command("restore", str(target))  # never over a platform that has data

    restored = merumaga(fresh_place, "restore", str(target))
    assert restored.returncode == 0, restored.stderr
    assert "readers 10" in restored.stdout and "deliveries 10" in restored.stdout
    assert "suppressions 1" in restored.stdout and "consent_records 10" in restored.stdout
    data_dir = Path(fresh_place["MERUMAGA_DATA_DIR"])
    assert (data_dir / "media" / "covers" / "battery.png").read_bytes() == b"\x89PNG cover"
    key = Path(settings.DATA_DIR / "secret_key").read_text()
    assert (data_dir / "secret_key").read_text() == key  # readers' links still work

    again = merumaga(fresh_place, "restore", str(target))
    assert again.returncode != 0 and "not empty" in again.stderr

    # The restored platform sends what was still due: six mails, none of the four sent before.
    sending = {**fresh_place, "MAILCATCHER_PORT": str(settings.MAILCATCHER_PORT)}
    worked = merumaga(sending, "worker", "--once")
    assert worked.returncode == 0, worked.stderr
    messages, count = list_messages(mail_catcher)
    assert count == 6
    assert sorted(message.to[0] for message in messages) == [
        f"reader{n}@example.jp" for n in range(4, 10)
    ]


def test_a_file_that_is_not_a_backup_is_refused_in_words(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar file")
    with pytest.raises(CommandError, match="not a backup"):
        call_command("restore", str(junk))
