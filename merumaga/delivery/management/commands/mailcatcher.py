import errno
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from merumaga.delivery.catcher import serve_until_stopped, start_catcher
from merumaga.relays import uses_catcher

HOST = "127.0.0.1"


class Command(BaseCommand):
    help = "Run the built-in mail catcher: an SMTP server on loopback keeping mail in a Maildir."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=settings.MAILCATCHER_PORT)
        parser.add_argument("--dir", dest="directory", type=Path, default=settings.MAILCATCHER_DIR)

    def handle(self, *args, port: int, directory: Path, **options) -> None:
        if not uses_catcher():
            raise CommandError(
                "A relay is set (SMTP_RELAYS or SMTP_URL): mail goes there; "
                "the catcher is not needed"
            )
        try:
            controller = start_catcher(directory, host=HOST, port=port)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"Port {port} on {HOST} is taken (another mail catcher running?); "
                    "free it, or choose another with --port / MAILCATCHER_PORT."
                ) from None
            raise CommandError(f"Cannot listen on {HOST}:{port}: {error}") from None

        self.stdout.write(f"Mail catcher listening on smtp://{HOST}:{port}")
        self.stdout.write(f"Storing mail in the Maildir {Path(directory).resolve()}")
        self.stdout.write("Quit with CONTROL-C.")
        serve_until_stopped(controller.stop)
        self.stdout.write("Mail catcher stopped.")
