import errno

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from merumaga.bounces.receiver import start_receiver, stop_receiver
from merumaga.delivery.catcher import serve_until_stopped


def parse_bind(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CommandError(f"Cannot read {value!r} as HOST:PORT (e.g. 127.0.0.1:2526).")
    return host, int(port)


class Command(BaseCommand):
    help = (
        "Receive bounces, complaints and mailed unsubscribes over SMTP (or LMTP) for the bounce "
        "domain; the MTA forwards that domain here."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--bind",
            default=settings.BOUNCE_RECEIVER_BIND,
            help="HOST:PORT to listen on (MERUMAGA_BOUNCE_RECEIVER_BIND, default %(default)s)",
        )
        parser.add_argument("--lmtp", action="store_true", help="speak LMTP instead of SMTP")

    def handle(self, *args, bind: str, lmtp: bool, **options) -> None:
        host, port = parse_bind(bind)
        try:
            controller = start_receiver(host, port, lmtp=lmtp)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"{host}:{port} is taken; choose another with --bind or "
                    "MERUMAGA_BOUNCE_RECEIVER_BIND."
                ) from None
            raise CommandError(f"Cannot listen on {host}:{port}: {error}") from None
        protocol = "lmtp" if lmtp else "smtp"
        self.stdout.write(f"Bounce receiver listening on {protocol}://{host}:{port}")
        self.stdout.write(f"Accepting mail for the bounce domain {settings.BOUNCE_DOMAIN}")
        serve_until_stopped(lambda: stop_receiver(controller))
        self.stdout.write(f"Bounce receiver stopped after {controller.handler.received} messages.")
