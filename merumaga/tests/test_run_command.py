import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from merumaga.testing import free_port


def test_run_starts_web_worker_and_catcher_and_stops_them_on_ctrl_c(tmp_path):
    """What `make run` starts, on the embedded default, in a data dir of its own."""
    web, smtp = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "SMTP_URL")
    }
    env.update(MERUMAGA_DATA_DIR=str(tmp_path), PORT=str(web), MAILCATCHER_PORT=str(smtp))
    merumaga = [sys.executable, "-m", "merumaga.cli"]
    subprocess.run([*merumaga, "setup", "--no-demo"], env=env, check=True, capture_output=True)
    run = subprocess.Popen(
        [*merumaga, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )

    def answers(probe, what: str):
        deadline = time.monotonic() + 30
        while True:
            try:
                return probe()
            except OSError:
                assert run.poll() is None, run.stdout.read()
                assert time.monotonic() < deadline, f"{what} did not answer in 30 s"
                time.sleep(0.3)

    def web_page():
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/subscribe/") as page:
            return page.status

    def smtp_greeting():
        with socket.create_connection(("127.0.0.1", smtp), timeout=5) as catcher:
            return catcher.recv(100)

    def ready():
        """/readyz until every check passes: the worker's first heartbeat comes after it starts."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{web}/readyz") as page:
                return json.load(page)
        except urllib.error.HTTPError as not_yet:
            if time.monotonic() > give_up:
                return json.load(not_yet)
            raise ConnectionError from None

    try:
        assert answers(web_page, "the web server") == 200
        assert answers(smtp_greeting, "the mail catcher").startswith(b"220")
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/healthz") as page:
            assert json.load(page) == {"status": "ok"}
        give_up = time.monotonic() + 25
        assert answers(ready, "readiness")["status"] == "ready"
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/metrics") as page:
            scraped = page.read().decode()
        # Both web workers' counts are in one scrape; and the platform's figures.
        assert 'merumaga_http_requests_total{method="GET",status="200",view="healthz"} 1.0' in (
            scraped
        )
        assert 'merumaga_mailings{status="draft"} 0.0' in scraped
    finally:
        run.send_signal(signal.SIGINT)
        output, _ = run.communicate(timeout=30)
    assert run.returncode == 0, output
    assert f"site:         http://localhost:{web}/" in output
    assert "mail viewer:" in output
    assert "Huey consumer started" in output
