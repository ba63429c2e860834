import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Run the whole platform in the foreground: web server, background tasks (Huey), one "
        "delivery worker and, unless SMTP_URL is set, the mail catcher. Ctrl-C stops everything."
    )

    def handle(self, *args, **options):
        merumaga = [sys.executable, "-m", "merumaga.cli"]
        bind = f"{settings.BIND_ADDRESS}:{settings.PORT}"
        commands = {
            "web": [
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
            ],
            "tasks": [*merumaga, "run_huey"],
            "delivery": [*merumaga, "worker"],
        }
        if not settings.SMTP_URL:
            commands["mailcatcher"] = [*merumaga, "mailcatcher"]
        children = {name: subprocess.Popen(argv) for name, argv in commands.items()}

        self.stdout.write(
            self.style.SUCCESS(
                f"\nmerumaga is running (Ctrl-C to stop)\n"
                f"  site:         {settings.SITE_URL}/\n"
                f"  admin:        {settings.SITE_URL}/admin/\n"
                + (
                    f"  mail viewer:  {settings.SITE_URL}/admin/mail/\n"
                    if "mailcatcher" in children
                    else f"  mail goes to: {settings.SMTP_URL.split('@')[-1]}\n"
                )
            )
        )

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(f"{name} stopped (exit {child.returncode}): stopping all")
                    exit_code = child.returncode or 1
                    stopping = True
            time.sleep(0.5)
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        if exit_code:
            sys.exit(exit_code)
