"""Response times of public pages under load: gunicorn as `make run` starts it, wrk on loopback.

Sets up a fresh data dir with the demo content, starts the web server, then runs wrk against the
home page and an article page (cached, as anonymous readers get them) and prints one line each:

    .venv/bin/python bench/pages.py [--seconds 10] [--connections 16]

Needs wrk (apt-get install wrk).
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in {seconds} s")


def to_ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    requests = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "median_ms": to_ms(latency["50"]),
        "p99_ms": to_ms(latency["99"]),
        "req_per_s": requests,
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")

    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "REDIS_URL")
        }
        env.update(MERUMAGA_DATA_DIR=data_dir, PORT=str(port))
        merumaga = [sys.executable, "-m", "merumaga.cli"]
        subprocess.run([*merumaga, "setup"], env=env, check=True, capture_output=True)
        article = (
            subprocess.run(
                [
                    *merumaga,
                    "shell",
                    "-c",
                    "from merumaga.publishing.models import Article;"
                    "print(Article.objects.published().first().get_absolute_url())",
                ],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "merumaga.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--no-control-socket",
                "--log-level",
                "warning",
            ],
            env=env,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for name, path in (("home", "/"), ("article", article)):
                wait_for(base + path)
                figures = run_wrk(base + path, args.seconds, args.connections)
                print(
                    f"page={name} backend=sqlite server=gunicorn(2x4) "
                    f"connections={args.connections} "
                    + " ".join(f"{key}={value:g}" for key, value in figures.items())
                )
        finally:
            web.send_signal(signal.SIGTERM)
            web.wait(timeout=30)


if __name__ == "__main__":
    main()
