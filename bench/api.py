"""Throughput of GET /api/v1/readers: 100 readers a page, walked by cursor to the end.

Starts the web server as `make run` does (gunicorn, settings.WEB_WORKERS processes) on a fresh
database of N confirmed readers; each of C clients walks every page in turn, as an integration
syncing the reader list would (a cursor walk is sequential by nature). Prints the pages and
readers per second over all clients, and the latency per page.

    .venv/bin/python bench/api.py --backend sqlite --readers 100000 --clients 4
    .venv/bin/python bench/api.py --backend postgres --readers 100000 --clients 4
"""

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time

from _django import fresh_database
from delivery import database_url, free_port, make_readers, web_server


def walk(port: int, token: str, limit: int, latencies: list[float], pages: int = 0) -> int:
    """Every page (or the first `pages`), following `next`; the number of readers read."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}"}
    cursor, readers = "", 0
    while True:
        started = time.perf_counter()
        connection.request("GET", f"/api/v1/readers?limit={limit}{cursor}", headers=headers)
        response = connection.getresponse()
        body = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}: {body[:300]!r}")
        page = json.loads(body)
        readers += len(page["items"])
        pages -= 1
        if page["next"] is None or pages == 0:
            return readers
        cursor = f"&cursor={page['next']}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--postgres", default="postgres://merumaga:merumaga@127.0.0.1:5432")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="merumaga-bench-")
    port = free_port()
    env = {
        "MERUMAGA_DATA_DIR": data_dir,
        "DATABASE_URL": database_url(args.backend, data_dir, args.postgres),
        "SITE_URL": f"http://127.0.0.1:{port}",
        "MERUMAGA_LOG_LEVEL": "WARNING",
        "MERUMAGA_API_RATE_LIMIT": "1000000",  # the limit is not what is measured
    }
    if args.backend == "sqlite":
        os.environ.pop("REDIS_URL", None)
    fresh_database(env)
    from django.conf import settings
    from django.contrib.auth.models import User

    from merumaga.api import services

    make_readers(args.readers)
    user = User.objects.create_superuser("bench", "", "bench")
    _token, raw = services.create_token(user, ["readers:read"])
    with web_server(port, env, data_dir):
        walk(port, raw, args.limit, [])  # warm: imports, caches, the database's pages
        latencies: list[float] = []
        counts: list[int] = []
        threads = [
            threading.Thread(target=lambda: counts.append(walk(port, raw, args.limit, latencies)))
            for _ in range(args.clients)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    assert counts == [args.readers] * args.clients, counts  # every reader, once per walk
    print(
        f"backend={args.backend} readers={args.readers} per_page={args.limit} "
        f"clients={args.clients} web_workers={settings.WEB_WORKERS} seconds={seconds:.1f} "
        f"pages_per_s={len(latencies) / seconds:.0f} "
        f"readers_per_s={sum(counts) / seconds:.0f} "
        f"p50_ms={p(0.5):.1f} p99_ms={p(0.99):.1f}"
    )


if __name__ == "__main__":
    sys.exit(main())
