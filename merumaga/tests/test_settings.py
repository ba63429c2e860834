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
        ("MERUMAGA_LLM_BASE_URL", "http://127.0.0.1:8089/v1", "name the model"),
        ("MERUMAGA_LLM_API_KEY_FILE", "/nonexistent/key", "MERUMAGA_LLM_API_KEY_FILE="),
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
        (lambda: env.env_float("X_TEST", 1.0, minimum=0.5), "0.1"),
        (lambda: env.env_float("X_TEST", 1.0), "nan"),
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


def test_processes_starting_at_once_all_get_the_same_complete_key(tmp_path):
    code = (
        "import sys; from pathlib import Path; from merumaga.env import secret_key; "
        "print(secret_key(Path(sys.argv[1])))"
    )
    environment = {
        k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "SECRET_KEY_FILE")
    }
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)],
            env=environment,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    keys = {starter.communicate(timeout=60)[0].strip() for starter in starters}
    assert len(keys) == 1 and len(keys.pop()) >= 50
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no draft left behind


def test_a_refused_url_is_shown_without_its_password(monkeypatch):
    monkeypatch.setenv("X_TEST", "pop3x://bounces%40example.jp:s3cr3t@mail.example.jp")
    with pytest.raises(ImproperlyConfigured) as refused:
        env.env_url("X_TEST", "", ("pop3s", "imaps"))
    assert "s3cr3t" not in str(refused.value) and "mail.example.jp" in str(refused.value)
