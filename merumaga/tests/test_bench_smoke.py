"""The delivery benchmark as a smoke test: a few hundred mails, on the backend of this run."""

import os
import re
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_delivery_benchmark_runs_end_to_end():
    backend = (
        "postgres" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "sqlite"
    )
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    result = subprocess.run(
        [
            sys.executable,
            "bench/delivery.py",
            "--n",
            "300",
            "--backend",
            backend,
            "--sink",
            "aiosmtpd",
            "--workers",
            "2",
            "--batch",
            "50",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = dict(re.findall(r"(\w+)=(\S+)", result.stdout.strip().splitlines()[-1]))
    assert figures["backend"] == backend
    assert figures["sent"] == "300" and figures["sink_count"] == "300"
    assert float(figures["msgs_per_s"]) > 0
