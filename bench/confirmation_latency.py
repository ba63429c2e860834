"""How long a sign-up waits for its confirmation mail while a big mailing is being sent.

N readers and a weekly report go to a sink through the delivery workers (as bench/delivery.py);
meanwhile, every --every seconds, a new address signs up (subscribers.services, as the form
does). The confirmation goes the way of every mail sent one at a time (a task at mail priority,
the task runner `merumaga run_huey`, outgoing.send, the relay backend and its SMTP pool) to the
relays of the transactional lane; here a small SMTP server in this process notes when each mail
arrives. With --relay separate (the default) that server is the transactional lane's own relay
and the mailing goes to the sink; with --relay shared one relay (that server) takes both, as when
SMTP_RELAYS names no lane. Prints one line:

    .venv/bin/python bench/confirmation_latency.py --n 100000 --backend sqlite [--relay shared]

latency_s: from the sign-up's commit to the mail's arrival, p50/p95/max over the sign-ups made
while the mailing was sending; idle_latency_s: the same for one sign-up after --idle seconds of
nothing to do, made at second 55 of a minute (the task runner polls less often the longer it is
idle, and its periodic tasks wake it at each minute: this is its longest wait); mailing_msgs_per_s:
the mailing's rate meanwhile. With --backend postgres, Huey uses Redis if REDIS_URL is set.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from _django import ROOT, fresh_database
from aiosmtpd.controller import Controller
from delivery import database_url, free_port, make_readers, make_weekly, start_sink, stop_sink


class ArrivalClock:
    """An SMTP server that notes when a mail for each recipient arrives."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        now = time.monotonic()
        with self.lock:
            for recipient in envelope.rcpt_tos:
                if "@signup" in recipient:  # not the mailing's readers, when it comes here too
                    self.arrived.setdefault(recipient, now)
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--every", type=float, default=1.0, help="seconds between sign-ups")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds idle before the first")
    parser.add_argument("--postgres", default="postgres://merumaga:merumaga@127.0.0.1:5432")
    parser.add_argument("--relay", choices=["separate", "shared"], default="separate")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="merumaga-bench-")
    sink_port, clock_port = free_port(), free_port()
    env = {
        "MERUMAGA_DATA_DIR": data_dir,
        "DATABASE_URL": database_url(args.backend, data_dir, args.postgres),
        "SMTP_RELAYS": (
            f"smtp://127.0.0.1:{sink_port}?connections=8&lane=bulk "
            f"smtp://127.0.0.1:{clock_port}?lane=transactional"
            if args.relay == "separate"
            else f"smtp://127.0.0.1:{clock_port}?connections=8"
        ),
        "MERUMAGA_LOG_LEVEL": "WARNING",
        "MERUMAGA_DOMAIN_LIMITS": "",
    }
    if args.backend == "sqlite":
        os.environ.pop("REDIS_URL", None)  # Huey on SQLite, as the embedded default
    fresh_database(env)
    from django.db import transaction

    from merumaga.delivery import queue
    from merumaga.mailings import services
    from merumaga.subscribers import services as subscriber_services

    make_readers(args.n)
    mailing = make_weekly()
    clock = ArrivalClock()
    clock_server = Controller(clock, hostname="127.0.0.1", port=clock_port)
    clock_server.start()
    sink = start_sink("aiosmtpd", sink_port)
    child_env = {**os.environ, **env}
    merumaga = [sys.executable, "-m", "merumaga.cli"]
    tasks = subprocess.Popen(
        [*merumaga, "run_huey"],
        env=child_env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    signed_up: dict[str, float] = {}

    def sign_up(address: str) -> None:
        with transaction.atomic():
            subscriber_services.request_subscription(
                address, ["weekly"], subscriber_services.Evidence(source="form")
            )
        signed_up[address] = time.monotonic()  # the task is queued at the commit

    try:
        time.sleep(args.idle)
        time.sleep((55 - time.time()) % 60)  # the end of an idle minute
        sign_up("idle@signup0.example.jp")
        services.start(mailing)
        queue.freeze_audience(mailing)
        started = time.monotonic()
        workers = [
            subprocess.Popen(
                [*merumaga, "worker", "--once"], env=child_env, cwd=ROOT, stdout=subprocess.DEVNULL
            )
            for _ in range(args.workers)
        ]
        n = 0
        while any(worker.poll() is None for worker in workers):
            n += 1
            sign_up(f"new{n}@signup{n}.example.jp")
            time.sleep(args.every)
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + 30
        while len(clock.arrived) < len(signed_up) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        tasks.terminate()
        tasks.wait(timeout=30)
        sink_count = stop_sink(sink)
        clock_server.stop()
    sent = queue.counts(mailing.pk)["sent"]
    idle = signed_up.pop("idle@signup0.example.jp")
    idle_latency = clock.arrived.get("idle@signup0.example.jp", float("nan")) - idle
    latencies = sorted(clock.arrived[a] - t for a, t in signed_up.items() if a in clock.arrived)
    if not latencies:
        raise SystemExit(f"no confirmation arrived of {len(signed_up)} sign-ups")
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
    print(
        f"backend={args.backend} relay={args.relay} n={args.n} signups={len(signed_up)} "
        f"arrived={len(latencies)} latency_s_p50={statistics.median(latencies):.2f} "
        f"p95={p95:.2f} max={latencies[-1]:.2f} idle_latency_s={idle_latency:.2f} "
        f"mailing_msgs_per_s={sent / elapsed:.0f} "
        f"sink_count={sink_count}"
    )


if __name__ == "__main__":
    main()
