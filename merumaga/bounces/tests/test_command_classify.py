"""`merumaga bounces classify FILE…`."""

import json
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from merumaga import cli
from merumaga.subscribers.tokens import address_token

SAMPLES = Path(__file__).parent / "samples"
CORPUS = Path(__file__).parent / "corpus"


def run(*args: str) -> list[dict]:
    out = StringIO()
    call_command("bounces", "classify", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_one_json_line_per_file():
    first, second = run(str(CORPUS / "dsn_01.txt"), str(SAMPLES / "vacation_en.eml"))
    # The status is permanent, the words say a full mailbox: scored, not suppressed.
    assert first == {
        "kind": "soft",
        "reason": "mailbox_full",
        "addresses": ["userx@example.com"],
        "status": "5.0.0",
        "rule": "dsn",
        "mailing": None,
        "subscriber": None,
        "recipients": [
            {
                "address": "userx@example.com",
                "kind": "soft",
                "status": "5.0.0",
                "diagnostic": "5.0.0 (recipient reached disk quota)",
                "reason": "mailbox_full",
            }
        ],
        "file": str(CORPUS / "dsn_01.txt"),
    }
    assert (second["kind"], second["reason"], second["rule"], second["file"]) == (
        "auto_reply",
        "vacation",
        "auto-reply:subject",
        str(SAMPLES / "vacation_en.eml"),
    )


def test_envelope_to(tmp_path):
    path = tmp_path / "bounce.eml"
    path.write_bytes((CORPUS / "dsn_01.txt").read_bytes())
    token = address_token("bounce", 8, 43)
    [verdict] = run(str(path), f"--envelope-to=bounce+{token}@news.example.jp")
    assert (verdict["mailing"], verdict["subscriber"], verdict["rule"]) == (8, 43, "dsn")
    [forged] = run(str(path), "--envelope-to", f"bounce+{token[:-1]}x@news.example.jp")
    assert (forged["kind"], forged["rule"]) == ("quarantined", "verp:forged-token")


def test_unreadable_files_are_reported_and_fail_at_the_end(tmp_path):
    out = StringIO()
    missing = str(tmp_path / "missing.eml")
    with pytest.raises(CommandError, match="2 of 3 files could not be read"):
        call_command(
            "bounces", "classify", missing, str(CORPUS / "dsn_01.txt"), str(tmp_path), stdout=out
        )
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] == {"file": missing, "error": "No such file or directory"}
    assert lines[1]["kind"] == "soft"
    assert lines[2] == {"file": str(tmp_path), "error": "Is a directory"}


def test_a_subcommand_is_required():
    with pytest.raises(CommandError, match="SUBCOMMAND"):
        call_command("bounces")


def test_merumaga_entry_point(monkeypatch, capsys):
    path = str(CORPUS / "dsn_05.txt")
    monkeypatch.setattr(sys, "argv", ["merumaga", "bounces", "classify", path])
    cli.main()
    [line] = capsys.readouterr().out.splitlines()
    # A delay notification: recorded, never a bounce.
    assert (json.loads(line)["kind"], json.loads(line)["reason"]) == ("notice", "delayed")


def test_merumaga_entry_point_exits_1_on_a_missing_file(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "argv", ["merumaga", "bounces", "classify", str(tmp_path / "no")])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"] == "No such file or directory"
    assert "1 of 1 files could not be read" in captured.err
