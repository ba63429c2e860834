"""How long a /metrics scrape takes under load, with a large platform behind it.

A fresh database with N readers and a weekly mailing to all of them, half of its N delivery
rows sent and half still queued (the queue gauges read the unsent ones); the web server started
as `make run` does, kept busy by C clients walking GET /api/v1/readers; then S scrapes of
/metrics over HTTP, each reading the database afresh (the server runs with
MERUMAGA_METRICS_CACHE_SECONDS=0: no answer is reused).

    .venv/bin/python bench/metrics.py --backend sqlite --readers 1000000
    .venv/bin/python bench/metrics.py --backend postgres --readers 1000000
"""

import argparse
import os
import sys
import tempfile
import threading
import time
import urllib.request

from _django import fresh_database
from api import walk
from delivery import (
    database_url,
    free_port,
    make_deliveries,
    make_readers,
    make_weekly,
    web_server,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--readers", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--postgres", default="postgres://merumaga:merumaga@127.0.0.1:5432")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="merumaga-bench-")
    port = free_port()
    env = {
        "MERUMAGA_DATA_DIR": data_dir,
        "DATABASE_URL": database_url(args.backend, data_dir, args.postgres),
        "SITE_URL": f"http://127.0.0.1:{port}",
        "MERUMAGA_LOG_LEVEL": "WARNING",
        "MERUMAGA_API_RATE_LIMIT": "1000000",
        "MERUMAGA_METRICS_CACHE_SECONDS": "0",
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="merumaga-metrics-"),
    }
    if args.backend == "sqlite":
        os.environ.pop("REDIS_URL", None)
    fresh_database(env)
    from django.contrib.auth.models import User

    from merumaga.api import services

    started = time.perf_counter()
    make_readers(args.readers)
    make_deliveries(make_weekly().pk)
    print(
        f"data: {args.readers} readers and delivery rows in {time.perf_counter() - started:.0f} s"
    )
    _token, raw = services.create_token(
        User.objects.create_superuser("bench", "", "bench"), ["readers:read"]
    )
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                walk(port, raw, 100, [], pages=50)
            except OSError:  # the server stopping under a walk, at the end
                return

    with web_server(port, env, data_dir):
        loaders = [threading.Thread(target=load, daemon=True) for _ in range(args.clients)]
        for loader in loaders:
            loader.start()
        times = []
        for _ in range(args.scrapes):
            begun = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as page:
                body = page.read()
            times.append(time.perf_counter() - begun)
        stop.set()
    times.sort()
    assert b"merumaga_delivery_queue" in body
    print(
        f"backend={args.backend} readers={args.readers} delivery_rows={args.readers} "
        f"load_clients={args.clients} scrapes={args.scrapes} bytes={len(body)} "
        f"p50_ms={times[len(times) // 2] * 1000:.0f} max_ms={times[-1] * 1000:.0f}"
    )


if __name__ == "__main__":
    sys.exit(main())
