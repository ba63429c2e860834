import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand

from merumaga.relays import all_relays, uses_catcher

# A child that ran this long before it died is started again at once; one that dies sooner waits
# 1, 2, 4 … seconds (at most MAX_DELAY) before each new start, so a crash loop costs little.
STEADY_SECONDS = 60.0
MAX_DELAY = 60.0


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    quick_deaths: int = 0  # in a row
    start_at: float | None = None  # when to start it again, after it died


class Supervisor:
    """Keeps each process of the platform running: one that dies is logged and started again
    after a delay that doubles while it keeps dying quickly. Nothing else is stopped."""

    def __init__(
        self,
        commands: dict[str, list[str]],
        *,
        spawn: Callable[[list[str]], subprocess.Popen] = subprocess.Popen,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] = print,
    ) -> None:
        self.children = {name: Child(name, argv) for name, argv in commands.items()}
        self.spawn, self.clock, self.log = spawn, clock, log

    def start_all(self) -> None:
        for child in self.children.values():
            self._start(child)

    def _start(self, child: Child) -> None:
        child.process = self.spawn(child.argv)
        child.started_at = self.clock()
        child.start_at = None

    def tick(self) -> None:
        """Notice the children that died and start those whose delay is over."""
        now = self.clock()
        for child in self.children.values():
            if child.start_at is None and child.process is not None:
                code = child.process.poll()
                if code is None:
                    continue
                ran = now - child.started_at
                child.quick_deaths = 0 if ran >= STEADY_SECONDS else child.quick_deaths + 1
                delay = min(MAX_DELAY, 2.0 ** (child.quick_deaths - 1)) if child.quick_deaths else 0
                child.start_at = now + delay
                self.log(
                    f"{child.name} stopped (exit {code}) after {ran:.0f} s; "
                    f"starting it again in {delay:.0f} s"
                )
            if child.start_at is not None and now >= child.start_at:
                self._start(child)
                self.log(f"{child.name} started again")

    def stop_all(self, timeout: float = 15.0) -> None:
        running = [c.process for c in self.children.values() if c.process is not None]
        for process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()


def web_command(bind: str) -> list[str]:
    """The web server as `make run` starts it (bench/clicks.py measures it this way)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "merumaga.wsgi",
        "--bind",
        bind,
        "--workers",
        str(settings.WEB_WORKERS),
        "--threads",
        "4",
        "--timeout",
        "120",
        "--access-logfile",
        "-",
        "--no-control-socket",
    ]


class Command(BaseCommand):
    help = (
        "Run the whole platform in the foreground: web server, background tasks (Huey), one "
        "delivery worker and, unless a relay is set (SMTP_RELAYS or SMTP_URL), the mail "
        "catcher. A process that dies is started again (after a growing delay if it keeps "
        "dying). Ctrl-C stops everything."
    )

    def handle(self, *args, **options):
        merumaga = [sys.executable, "-m", "merumaga.cli"]
        bind = f"{settings.BIND_ADDRESS}:{settings.PORT}"
        commands = {
            "web": web_command(bind),
            "tasks": [*merumaga, "run_huey"],
            "delivery": [*merumaga, "worker"],
        }
        if uses_catcher():
            commands["mailcatcher"] = [*merumaga, "mailcatcher"]
        # The web workers count requests into one directory, so that /metrics answered by any
        # of them sums them all; emptied at each start (the counts restart with the processes).
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            counts = settings.DATA_DIR / "metrics"
            shutil.rmtree(counts, ignore_errors=True)
            counts.mkdir(parents=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(counts)
        supervisor = Supervisor(commands, log=lambda line: self.stderr.write(line))
        supervisor.start_all()

        self.stdout.write(
            self.style.SUCCESS(
                f"\nmerumaga is running (Ctrl-C to stop)\n"
                f"  site:         {settings.SITE_URL}/\n"
                f"  admin:        {settings.SITE_URL}/admin/\n"
                + (
                    f"  mail viewer:  {settings.SITE_URL}/admin/mail/\n"
                    if "mailcatcher" in commands
                    else "  mail goes to: " + ", ".join(relay.name for relay in all_relays()) + "\n"
                )
            )
        )

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping:
            supervisor.tick()
            time.sleep(0.5)
        supervisor.stop_all()
