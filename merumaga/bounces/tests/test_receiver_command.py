"""`merumaga bounce-receiver` as the operator runs it: the server and its reader processes, on
the embedded default, in a data dir of its own."""

import importlib
import os
import signal
import smtplib
import sqlite3
import subprocess
import sys
import time

from merumaga.testing import free_port


def test_the_receiver_stores_before_250_and_its_reader_process_reads_it(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(MERUMAGA_DATA_DIR=str(tmp_path), MERUMAGA_BOUNCE_DOMAIN="bounces.example.jp")
    merumaga = [sys.executable, "-m", "merumaga.cli"]
    subprocess.run([*merumaga, "setup", "--no-demo"], env=env, check=True, capture_output=True)
    receiver = subprocess.Popen(
        [*merumaga, "bounce-receiver", "--bind", f"127.0.0.1:{port}", "--readers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    database = sqlite3.connect(tmp_path / "merumaga.sqlite3")

    def kinds() -> list[str]:
        return [row[0] for row in database.execute("SELECT kind FROM bounces_inboundmessage")]

    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                client = smtplib.SMTP("127.0.0.1", port, timeout=10)
                break
            except OSError:
                assert receiver.poll() is None, receiver.stdout.read()
                assert time.monotonic() < deadline, "the receiver did not answer in 60 s"
                time.sleep(0.2)
        with client:
            refused = client.sendmail(
                "",
                ["bounce@bounces.example.jp"],
                b"From: someone@example.com\r\nSubject: hello\r\n\r\nnot a bounce\r\n",
            )
        assert refused == {}
        assert len(kinds()) == 1  # stored before the 250
        while kinds() == ["received"]:  # read by a reader process, not by the test
            assert receiver.poll() is None, receiver.stdout.read()
            assert time.monotonic() < deadline, "no reader read the message in 60 s"
            time.sleep(0.2)
    finally:
        receiver.send_signal(signal.SIGINT)
        output, _ = receiver.communicate(timeout=90)
        database.close()
    assert kinds_after(tmp_path) == ["unrecognised"]
    assert receiver.returncode == 0, output
    assert "2 reader process(es)" in output and "Traceback" not in output


def kinds_after(data_dir) -> list[str]:
    with sqlite3.connect(data_dir / "merumaga.sqlite3") as database:
        return [row[0] for row in database.execute("SELECT kind FROM bounces_inboundmessage")]


def test_a_reader_process_that_dies_is_started_again():
    command = importlib.import_module("merumaga.bounces.management.commands.bounce-receiver")
    started = []

    class ReaderProcess:
        def __init__(self, target, args, name):
            self.share = args[2]
            # The first reader of the second share dies at once (killed, out of memory…).
            self.exitcode = -9 if self.share == (1, 2) and len(started) == 1 else None
            started.append(self)

        def start(self):
            pass

        def is_alive(self):
            return self.exitcode is None

        def join(self, timeout=None):
            pass

    class Context:
        Process = ReaderProcess

    class OneWatchRound:
        rounds = 0

        def wait(self, timeout):
            self.rounds += 1
            return self.rounds > 1

        def is_set(self):
            return self.rounds > 1

        def set(self):
            self.rounds = 99

    reading = command._Readers(Context, 2, kept=None, stopping=OneWatchRound())
    reading.watch.join(timeout=30)

    assert [p.share for p in started] == [(0, 2), (1, 2), (1, 2)]
    assert reading.processes == [started[0], started[2]]
