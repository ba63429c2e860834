"""Bounce receiver memory under large mail: P senders at once, each a DSN carrying a huge original
(a bounced mailing with a big attachment), to `merumaga bounce-receiver` in its own process.
Prints one line:

    .venv/bin/python bench/bounce_receiver_memory.py --parallel 8 --mb 46

peak_rss_mb is the receiver's high-water mark (VmHWM), read from /proc when every sender has its
reply; reader_peak_rss_mb its reader process's, once it has read them all (each keeps the first
4 MB and a reading takes at most 64 MB of them); `replies` counts each reply code (250 stored,
421/452 "try again later"); `stored` is the number of messages the database holds afterwards,
`read` how many of them were read.
"""

import argparse
import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

from _django import ROOT, fresh_database
from delivery import database_url, free_port, make_readers, wait_listening

BOUNCE_DOMAIN = "bounces.example.jp"


def huge_bounce(megabytes: int) -> tuple[str, bytes]:
    """A DSN for the first reader that returns the whole original (message/rfc822), holding
    `megabytes` of attachment, as many servers do."""
    from merumaga.subscribers.models import Subscriber
    from merumaga.subscribers.tokens import address_token

    pk, email = Subscriber.objects.order_by("pk").values_list("pk", "email").first()
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n"
    attachment = line * (megabytes * 1024 * 1024 // len(line))
    verp = f"bounce+{address_token('bounce', 1, pk)}@{BOUNCE_DOMAIN}"
    dsn = (
        f"From: MAILER-DAEMON@mx.example.net\r\nTo: {verp}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
        "--r\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--r\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {email}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        "--r\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: news@example.jp\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        "Content-Type: text/plain\r\n\r\nhello\r\n--b\r\n"
        "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    return verp, dsn + attachment + b"--b--\r\n--r--\r\n"


def send(port: int, verp: str, message: bytes, replies: Counter, lock: threading.Lock) -> None:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=300) as client:
            client.sendmail("", [verp], message)
            code = 250
    except smtplib.SMTPResponseException as error:
        code = error.smtp_code
    except smtplib.SMTPServerDisconnected:
        code = 0  # closed without a reply
    with lock:
        replies[code] += 1


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--mb", type=int, default=46)
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="merumaga-bench-")
    port = free_port()
    env = {
        "MERUMAGA_DATA_DIR": data_dir,
        "DATABASE_URL": database_url("sqlite", data_dir, ""),
        "MERUMAGA_BOUNCE_DOMAIN": BOUNCE_DOMAIN,
        "MERUMAGA_LOG_LEVEL": "WARNING",
    }
    fresh_database(env)
    from merumaga.bounces.models import InboundMessage

    make_readers(1)
    verp, message = huge_bounce(args.mb)
    receiver = subprocess.Popen(
        [sys.executable, "-m", "merumaga.cli", "bounce-receiver", "--bind", f"127.0.0.1:{port}"],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, receiver)
        replies: Counter = Counter()
        lock = threading.Lock()
        senders = [
            threading.Thread(target=send, args=(port, verp, message, replies, lock))
            for _ in range(args.parallel)
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        peak = peak_rss_mb(receiver.pid)
        deadline = time.monotonic() + 120
        while InboundMessage.objects.filter(kind="received").exists():
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        with open(f"/proc/{receiver.pid}/task/{receiver.pid}/children") as children:
            reader_peak = max(peak_rss_mb(int(child)) for child in children.read().split())
    finally:
        receiver.terminate()
        receiver.wait(timeout=90)
    replies_text = ",".join(f"{code}:{n}" for code, n in sorted(replies.items()))
    print(
        f"parallel={args.parallel} message_mb={len(message) / 1024 / 1024:.1f} "
        f"peak_rss_mb={peak:.0f} reader_peak_rss_mb={reader_peak:.0f} replies={replies_text} "
        f"stored={InboundMessage.objects.count()} "
        f"read={InboundMessage.objects.exclude(kind='received').count()}"
    )


if __name__ == "__main__":
    main()
