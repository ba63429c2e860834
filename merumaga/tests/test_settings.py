import os
import stat
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from merumaga import env


def start(**variables) -> subprocess.CompletedProcess:
    """Start the `merumaga` command the way an operator would, with these variables set."""
    environment = {**os.environ, **variables}
    return subprocess.run(
        [sys.executable, "-m", "merumaga.cli", "check"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "variable,value,message",
    [
        ("PORT", "eighty", "PORT='eighty': expected a whole number."),
        ("DATABASE_URL", "mysql://x/y", "expected postgres://"),
        ("MERUMAGA_DEBUG", "maybe", "expected true/false"),
    ],
)
def test_a_bad_value_stops_start_up_with_a_clear_message(tmp_path, variable, value, message):
    result = start(**{variable: value, "MERUMAGA_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert message in result.stderr


def test_good_values_start(tmp_path):
    result = start(MERUMAGA_DATA_DIR=str(tmp_path), PORT="8080", SITE_URL="https://news.example.jp")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "helper,raw",
    [
        (lambda: env.env_int("X_TEST", 1, minimum=1, maximum=10), "0"),
        (lambda: env.env_int("X_TEST", 1, minimum=1, maximum=10), "11"),
        (lambda: env.env_url("X_TEST", "", ("redis",)), "http://host"),
        (lambda: env.env_bool("X_TEST"), "perhaps"),
    ],
)
def test_helpers_refuse_out_of_range_values(monkeypatch, helper, raw):
    monkeypatch.setenv("X_TEST", raw)
    with pytest.raises(ImproperlyConfigured, match="X_TEST"):
        helper()


def test_secret_key_is_generated_once_and_kept_private(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("SECRET_KEY_FILE", raising=False)
    first = env.secret_key(tmp_path)
    assert len(first) >= 50
    assert env.secret_key(tmp_path) == first
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def test_secret_key_file(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    (tmp_path / "key").write_text("from-a-file\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "key"))
    assert env.secret_key(tmp_path / "data") == "from-a-file"
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY_FILE"):
        env.secret_key(tmp_path / "data")
