import errno
import logging
import multiprocessing
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from merumaga.bounces.reading import run_reader
from merumaga.bounces.server import start_receiver, stop_receiver
from merumaga.delivery.catcher import serve_until_stopped

logger = logging.getLogger(__name__)


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
        parser.add_argument(
            "--readers",
            type=int,
            default=settings.BOUNCE_RECEIVER_READERS,
            help="processes that read and act on what was received "
            "(MERUMAGA_BOUNCE_RECEIVER_READERS, default %(default)s)",
        )

    def handle(self, *args, bind: str, lmtp: bool, readers: int, **options) -> None:
        host, port = parse_bind(bind)
        if readers < 1:
            raise CommandError("--readers must be 1 or more: someone has to read what is kept.")
        # Spawned, not forked: a fork would share this process's database connections.
        context = multiprocessing.get_context("spawn")
        kept, stopping = context.Event(), context.Event()
        try:
            controller = start_receiver(host, port, lmtp=lmtp, kept=kept)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"{host}:{port} is taken; choose another with --bind or "
                    "MERUMAGA_BOUNCE_RECEIVER_BIND."
                ) from None
            raise CommandError(f"Cannot listen on {host}:{port}: {error}") from None
        # Started after the server: what it keeps meanwhile waits for them (nothing is lost).
        reading = _Readers(context, readers, kept, stopping)
        protocol = "lmtp" if lmtp else "smtp"
        self.stdout.write(f"Bounce receiver listening on {protocol}://{host}:{port}")
        self.stdout.write(f"Accepting mail for the bounce domain {settings.BOUNCE_DOMAIN}")
        self.stdout.write(f"{readers} reader process(es) read and act on what is received")

        def stop() -> None:
            stop_receiver(controller)
            reading.stop()

        serve_until_stopped(stop)
        self.stdout.write(f"Bounce receiver stopped after {controller.handler.received} messages.")


class _Readers:
    """The reader processes, each reading its share of what is kept (ids modulo their number).
    One that dies is started again (its share would otherwise wait for the periodic task)."""

    def __init__(self, context, count: int, kept, stopping) -> None:
        self.context, self.count, self.kept, self.stopping = context, count, kept, stopping
        self.processes = [self._start(index) for index in range(count)]
        self.watch = threading.Thread(target=self._watch, name="reader-watch", daemon=True)
        self.watch.start()

    def _start(self, index: int):
        process = self.context.Process(
            target=run_reader,
            args=(self.kept, self.stopping, (index, self.count)),
            name=f"bounce-reader-{index}",
        )
        process.start()
        return process

    def _watch(self) -> None:
        while not self.stopping.wait(5):
            for index, process in enumerate(self.processes):
                if not process.is_alive() and not self.stopping.is_set():
                    logger.error(
                        "bounce reader %d ended (exit code %s); started again",
                        index,
                        process.exitcode,
                    )
                    self.processes[index] = self._start(index)

    def stop(self) -> None:
        """Each reader ends after the batch in hand; what is still waiting is read at the next
        start (or by the periodic task)."""
        self.stopping.set()
        self.watch.join(timeout=10)
        for process in self.processes:
            process.join(timeout=60)
            if process.is_alive():
                process.terminate()
