"""Bounce receiver throughput: N readers, N RFC 3464 bounces to their VERP addresses, sent over
C SMTP connections to `merumaga bounce-receiver` in a process of its own. Prints one line:

    .venv/bin/python bench/bounce_receiver.py --n 5000 --connections 4 --backend sqlite

The receiver replies only after a message is stored, read and acted on (the reader suppressed),
so bounces_per_s is end to end: from the first MAIL FROM to the last 250. `suppressed` checks
that every bounce suppressed its reader.
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
        [sys.executable, "-m", "merumaga.cli", "bounce-receiver", "--bind", f"127.0.0.1:{port}"],
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
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)
    suppressed = Suppression.objects.count()
    print(
        f"backend={args.backend} n={args.n} connections={args.connections} "
        f"bounces_per_s={args.n / elapsed:.0f} elapsed_s={elapsed:.1f} "
        f"dsn_bytes={len(bounces[0][1])} suppressed={suppressed} refused={len(errors)}"
    )
    shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
