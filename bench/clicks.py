"""The click redirect under load, as right after a large mailing lands.

Builds a weekly report for --readers readers as the delivery worker does (tracked links), takes
the /c/… URLs out of the rendered mails, starts the web server as `make run` does (gunicorn,
WEB_WORKERS processes × 4 threads, on loopback) and has --connections keep-alive clients fetch
those URLs in a loop for --seconds. Then stops the server (its processes write the clicks they
hold as they exit) and compares the clicks in the database with the 302s answered. Prints:

    .venv/bin/python bench/clicks.py [--backend sqlite|postgres] [--per-reader] [--rate 2000]

Without --rate, each connection sends its next request when the last is answered (the most the
server answers, latency including the wait in its queue); with --rate, requests are offered at
that rate on a fixed schedule, and a late answer counts from when its request was due.

redirects_per_s (302s answered / seconds), p50_ms / p99_ms (request to full response, in the
client), answered_302, clicks_in_db, lost (answered minus written; must be 0), other (non-302
answers; must be 0). The counts include a 2 s warm-up; the rate and latencies do not. With
--backend postgres, REDIS_URL in the environment is used as for `make run` at scale.
"""

import argparse
import asyncio
import os
import random
import re
import sys
import tempfile
import time

from _django import fresh_database
from delivery import database_url, free_port, make_readers, make_weekly, web_server

TRACKED = re.compile(rb"http://127\.0\.0\.1:\d+(/c/[0-9a-f-]+/(?:[0-9a-f-]+/)?)")


def click_paths(readers: int) -> list[bytes]:
    """The tracked paths of the mails the readers got (one per link per reader with --per-reader,
    one per link otherwise), as the delivery worker renders them."""
    from merumaga.delivery.fastrender import READER_FIELDS, FastTemplate, Reader
    from merumaga.mailings import rendering
    from merumaga.subscribers.models import Subscriber

    mailing = make_weekly()
    compiled = rendering.compile_mailing(mailing, "ja", track=True)
    template = FastTemplate(compiled)
    paths: set[bytes] = set()
    from django.utils import timezone

    now = timezone.localtime(timezone.now())
    rows = Subscriber.objects.values(*READER_FIELDS).order_by("pk")[:readers]
    for number, row in enumerate(rows):
        data = template.render(Reader(**row), date=now, message_id=f"{number}.b@example.jp").data
        paths.update(TRACKED.findall(data))
    return sorted(paths)


async def client(
    host: str, port: int, paths: list[bytes], until: float, results: dict, interval: float
) -> None:
    """Requests one after another on one keep-alive connection; with `interval`, one request
    every `interval` seconds on a fixed schedule (open loop: a slow answer does not slow the
    offered load, and its wait counts in the latency)."""
    reader, writer = await asyncio.open_connection(host, port)
    latencies = results["latencies"]
    due = time.perf_counter() + random.random() * interval
    while time.monotonic() < until:
        path = random.choice(paths)
        if interval:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            started, due = due, due + interval
        else:
            started = time.perf_counter()
        writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        if length and int(length[1]):
            await reader.readexactly(int(length[1]))
        latencies.append(time.perf_counter() - started)
        if head.startswith(b"HTTP/1.1 302"):
            results["302"] += 1
        else:
            results["other"] += 1
        if re.search(rb"(?i)\r\nconnection:\s*close", head):
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
    writer.close()


async def load(
    port: int, paths: list[bytes], connections: int, seconds: float, rate: float = 0
) -> dict:
    results: dict = {"302": 0, "other": 0, "latencies": []}
    until = time.monotonic() + seconds
    interval = connections / rate if rate else 0.0
    await asyncio.gather(
        *(client("127.0.0.1", port, paths, until, results, interval) for _ in range(connections))
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--readers", type=int, default=2_000)
    parser.add_argument("--per-reader", action="store_true", help="the site keeps who clicked")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--rate", type=float, default=0, help="offered redirects/s (0: as fast as answered)"
    )
    parser.add_argument("--postgres", default="postgres://merumaga:merumaga@127.0.0.1:5432")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="merumaga-bench-")
    port = free_port()
    env = {
        "MERUMAGA_DATA_DIR": data_dir,
        "DATABASE_URL": database_url(args.backend, data_dir, args.postgres),
        "SITE_URL": f"http://127.0.0.1:{port}",
        "MERUMAGA_LOG_LEVEL": "WARNING",
    }
    if args.backend == "sqlite":
        os.environ.pop("REDIS_URL", None)
    fresh_database(env)
    from django.conf import settings

    from merumaga.institute.models import SiteSettings
    from merumaga.mailings.models import Click

    SiteSettings.objects.create(clicks_per_reader=args.per_reader)
    make_readers(args.readers)
    paths = click_paths(args.readers)
    with web_server(port, env, data_dir):
        warm = asyncio.run(load(port, paths, args.connections, 2.0))  # imports, caches
        results = asyncio.run(load(port, paths, args.connections, args.seconds, args.rate))
    written = Click.objects.count()
    latencies = sorted(results["latencies"])
    answered = results["302"]
    answered_in_all = warm["302"] + answered
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    print(
        f"backend={args.backend} per_reader={args.per_reader} links={len(paths)} "
        f"connections={args.connections} offered={args.rate or 'max'} "
        f"web_workers={settings.WEB_WORKERS} "
        f"redirects_per_s={answered / args.seconds:.0f} p50_ms={p(0.5):.1f} p99_ms={p(0.99):.1f} "
        f"answered_302={answered_in_all} clicks_in_db={written} lost={answered_in_all - written} "
        f"other={warm['other'] + results['other']} server_log={data_dir}/server.log"
    )


if __name__ == "__main__":
    sys.exit(main())
