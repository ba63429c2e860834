"""`merumaga bounces process` and `merumaga bounces poll`: the pipeline by hand."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from merumaga.bounces.models import InboundMessage
from merumaga.subscribers.models import Suppression
from merumaga.testing import PASSWORD, dsn, make_subscriber

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[list[dict], str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("bounces", *args, stdout=out, stderr=err)
    finally:
        lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    return lines, out.getvalue()


def test_process_acts_on_a_saved_bounce_once(tmp_path):
    reader = make_subscriber("gone@example.jp")
    saved = tmp_path / "bounce.eml"
    saved.write_bytes(dsn("gone@example.jp", reader=reader))

    (first,), _ = run("process", str(saved))
    (again,), _ = run("process", str(saved))

    assert first["kind"] == "hard" and first["times_received"] == 1
    assert first["events"] == [{"kind": "hard", "outcome": "suppressed", "subscriber": reader.pk}]
    assert again["message"] == first["message"] and again["times_received"] == 2
    assert InboundMessage.objects.get().source == "file"
    assert Suppression.objects.filter(address_hash=reader.address_hash).exists()


def test_process_reports_a_missing_file_after_the_others(tmp_path):
    saved = tmp_path / "bounce.eml"
    saved.write_bytes(dsn("someone@example.jp"))
    with pytest.raises(CommandError, match="1 of 2"):
        run("process", str(tmp_path / "missing.eml"), str(saved))
    assert InboundMessage.objects.count() == 1


def test_poll_fetches_the_mailbox_and_prints_its_report(pop3):
    reader = make_subscriber("gone@example.jp")
    pop3.maildrop.messages = [dsn("gone@example.jp", reader=reader)]

    _, out = run("poll", "--url", pop3.url)

    assert "1 stored" in out and PASSWORD not in out
    assert pop3.maildrop.messages == []
    assert Suppression.objects.filter(address_hash=reader.address_hash).exists()


def test_poll_without_a_mailbox_says_how_to_set_one(settings):
    settings.BOUNCE_MAILBOX_URL = ""
    with pytest.raises(CommandError, match="MERUMAGA_BOUNCE_MAILBOX_URL"):
        run("poll")
