"""Throughput of the sending pool (merumaga.delivery.smtp.Pool) into local SMTP sinks.

Sends pre-built 8 KB messages through Pool into (a) the fault server as an accepting sink (aiosmtpd,
in a process of its own) and (b) Postfix's smtp-sink, if installed, each with 4, 8 and 16
connections. Prints one line of key=value figures per run:

    .venv/bin/python bench/smtp_pool.py [--messages 20000] [--connections 4 8 16] [--sink NAME]

Client and sink share this machine's cores, so the figure is for the whole loop, not the pool alone.
"""

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from merumaga.delivery.smtp import Pool
from merumaga.relays import Relay

SMTP_SINK = "/usr/sbin/smtp-sink"
MESSAGE_SIZE = 8 * 1024
RUN_TIMEOUT = 300  # seconds, for one run's sending
SENDER = "bounce+bench@news.example.jp"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def build_messages(count: int) -> list[tuple[str, bytes]]:
    """(recipient, message) pairs, each message its own bytes object of MESSAGE_SIZE bytes."""
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"
    messages = []
    for number in range(count):
        recipient = f"reader{number}@example.jp"
        head = (
            f"From: news@example.jp\r\nTo: {recipient}\r\nSubject: Bench {number}\r\n"
            f"Message-ID: <{number}.bench@example.jp>\r\n\r\n"
        ).encode()
        body = line * ((MESSAGE_SIZE - len(head)) // len(line) + 1)
        messages.append((recipient, (head + body)[: MESSAGE_SIZE - 2] + b"\r\n"))
    return messages


async def push(
    messages: list[tuple[str, bytes]], port: int, connections: int
) -> tuple[float, dict]:
    relay = Relay("sink", "127.0.0.1", port, "none", "", "", 1, connections, None, None)
    async with Pool([relay], timeout=30, domain_limits={}, helo_name="bench.example.jp") as pool:
        # A few senders per connection keep every connection busy, as the worker's batches do.
        feeders = connections * 2

        async def feed(offset: int) -> None:
            for recipient, data in messages[offset::feeders]:
                result = await pool.send(SENDER, recipient, data)
                if result.status != "sent":
                    raise RuntimeError(f"not sent: {result}")

        started = time.perf_counter()
        await asyncio.gather(*(feed(offset) for offset in range(feeders)))
        elapsed = time.perf_counter() - started
        stats = pool.stats()["sink"]
    return elapsed, stats


def start_process(command: list[str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the sink accepts connections
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited: {process.stdout.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{command[0]} did not start listening on {port}")


def stop_process(process: subprocess.Popen) -> str:
    process.terminate()
    try:
        output, _ = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


def sinks() -> list[tuple[str, callable]]:
    def fault_server(port: int) -> list[str]:
        return [sys.executable, "-m", "merumaga.delivery.faultserver", "--port", str(port)]

    def smtp_sink(port: int) -> list[str]:
        # -u root: it refuses to run as root otherwise; 1000: the listen backlog.
        return [SMTP_SINK, "-u", "root", f"127.0.0.1:{port}", "1000"]

    found = [("faultserver", fault_server)]
    if shutil.which(SMTP_SINK) or os.path.exists(SMTP_SINK):
        found.append(("smtp-sink", smtp_sink))
    else:
        print(f"# {SMTP_SINK} not found (apt-get install postfix): skipped")
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--sink", choices=["faultserver", "smtp-sink"], help="only this sink")
    args = parser.parse_args()
    messages = build_messages(args.messages)
    for name, command in sinks():
        if args.sink and name != args.sink:
            continue
        for connections in args.connections:
            port = free_port()
            process = start_process(command(port), port)
            cpu_before = time.process_time()
            try:
                elapsed, stats = asyncio.run(
                    asyncio.wait_for(push(messages, port, connections), RUN_TIMEOUT)
                )
            finally:
                output = stop_process(process)
            client_cpu = time.process_time() - cpu_before
            # The fault server prints its own figures when stopped (smtp-sink prints none).
            sink_figures = "".join(
                f" sink_{part}"
                for part in output.split()
                if part.startswith(("accepted=", "cpu_s="))
            )
            print(
                f"sink={name} msgs_per_s={len(messages) / elapsed:.0f} connections={connections}"
                f" opened={stats['connections']} messages={stats['sent']} seconds={elapsed:.2f}"
                f" client_cpu_s={client_cpu:.2f}{sink_figures}",
                flush=True,
            )


if __name__ == "__main__":
    main()
