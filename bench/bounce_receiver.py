"""Bounce receiver throughput: N readers, N RFC 3464 bounces to their VERP addresses, sent over
C SMTP connections to `merumaga bounce-receiver` (with its reader processes) in a process of
its own. Prints one line:

    .venv/bin/python bench/bounce_receiver.py --n 5000 --connections 4 --backend sqlite

The receiver replies 250 only after a message is stored; its readers then read it and act on
it (the reader suppressed). bounces_per_s: from the first MAIL FROM to the last 250;
read_per_s: from the first MAIL FROM until every bounce has suppressed its reader (`suppressed`
checks that each did); rss_mb: the receiver's and its readers' peak resident memory.
"""

import argparse
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import threading
import time

from _django import ROOT, fresh_database
from delivery import database_url, free_port, make_readers, wait_listening

BOUNCE_DOMAIN = "bounces.example.jp"


def make_bounces(n: int) -> list[tuple[str, bytes]]:
    """(VERP address, DSN) for each reader, as a Postfix-like server would return it."""
    from merumaga.delivery.catcher import unknown_user_dsn
    from merumaga.subscribers.models import Subscriber
    from merumaga.subscribers.tokens import address_token

    original = (
        b"From: news@example.jp\r\nSubject: =?UTF-8?B?6YCx5aCx?=\r\n"
        b"List-Id: weekly <weekly.example.jp>\r\nPrecedence: bulk\r\n"
        b"Content-Type: multipart/alternative; boundary=x\r\n\r\n" + b"x" * 2000
    )
    bounces = []
    for pk, email in Subscriber.objects.order_by("pk").values_list("pk", "email")[:n]:
        verp = f"bounce+{address_token('bounce', 1, pk)}@{BOUNCE_DOMAIN}"
        bounces.append((verp, unknown_user_dsn(verp, [email], original)))
    return bounces


def send(port: int, bounces: list[tuple[str, bytes]], errors: list) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        for verp, dsn in bounces:
            refused = client.sendmail("", [verp], dsn)
            if refused:
                errors.append(refused)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--readers", type=int, default=1)
    parser.add_argument("--postgres", default="postgres://merumaga:merumaga@127.0.0.1:5432")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="merumaga-bench-")
    port = free_port()
    env = {
        "MERUMAGA_DATA_DIR": data_dir,
        "DATABASE_URL": database_url(args.backend, data_dir, args.postgres),
        "MERUMAGA_BOUNCE_DOMAIN": BOUNCE_DOMAIN,
        "MERUMAGA_LOG_LEVEL": "WARNING",
    }
    fresh_database(env)
    from merumaga.subscribers.models import Suppression

    make_readers(args.n)
    bounces = make_bounces(args.n)
    receiver = subprocess.Popen(
        [
            *(sys.executable, "-m", "merumaga.cli", "bounce-receiver"),
            *("--bind", f"127.0.0.1:{port}", "--readers", str(args.readers)),
        ],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, receiver)
        errors: list = []
        shares = [bounces[i :: args.connections] for i in range(args.connections)]
        threads = [threading.Thread(target=send, args=(port, s, errors)) for s in shares]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        # Until every reader is suppressed, or nothing moved for a minute (a reader died).
        done, moved_at = 0, time.perf_counter()
        while done < args.n - len(errors) and time.perf_counter() - moved_at < 60:
            time.sleep(0.05)
            if (now_done := Suppression.objects.count()) > done:
                done, moved_at = now_done, time.perf_counter()
        read_elapsed = time.perf_counter() - started
        rss_mb = peak_rss_mb(receiver.pid)
    finally:
        receiver.terminate()
        receiver.wait(timeout=90)
    suppressed = Suppression.objects.count()
    print(
        f"backend={args.backend} n={args.n} connections={args.connections} "
        f"readers={args.readers} bounces_per_s={args.n / elapsed:.0f} elapsed_s={elapsed:.1f} "
        f"read_per_s={args.n / read_elapsed:.0f} read_elapsed_s={read_elapsed:.1f} "
        f"rss_mb={rss_mb:.0f} dsn_bytes={len(bounces[0][1])} suppressed={suppressed} "
        f"refused={len(errors)}"
    )
    shutil.rmtree(data_dir, ignore_errors=True)


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process and its children, from /proc."""
    total = 0
    pids = [pid]
    children = f"/proc/{pid}/task/{pid}/children"
    if os.path.exists(children):
        with open(children) as listed:
            pids += [int(child) for child in listed.read().split()]
    for each in pids:
        with open(f"/proc/{each}/status") as status:
            total += sum(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return total / 1024


if __name__ == "__main__":
    main()
