"""`merumaga bounces SUBCOMMAND …`: work on what comes back to the bounce domain by hand.

    merumaga bounces classify FILE… [--envelope-to ADDRESS]
    merumaga bounces process FILE… [--envelope-to ADDRESS]
    merumaga bounces poll [--url URL] [--limit N]

`classify` says what each saved message is, as one JSON object a line, and changes nothing.
`process` feeds saved messages to the pipeline as if they had just arrived (kept, read, acted on).
`poll` fetches the bounce mailbox now, as the periodic task does.
"""

import json
from collections.abc import Iterator
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from merumaga.bounces import mailbox, services
from merumaga.bounces.classify import classify
from merumaga.bounces.models import Source
from merumaga.terminal import progress_bar


class Command(BaseCommand):
    help = "Bounces, complaints and mailed unsubscribes: read them by hand."

    # A subcommand is one entry here plus two methods: add_<name>_arguments(parser) and
    # handle_<name>(**options). Sibling subcommands need no change elsewhere.
    subcommands = {
        "classify": "Say what each saved message (FILE…) is, as JSON lines; changes nothing.",
        "process": "Keep, read and act on saved messages (FILE…) as if they had just arrived.",
        "poll": "Fetch the bounce mailbox (MERUMAGA_BOUNCE_MAILBOX_URL) now.",
    }

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
        for name, help_text in self.subcommands.items():
            subparser = subparsers.add_parser(name, help=help_text, description=help_text)
            getattr(self, f"add_{name}_arguments")(subparser)

    def handle(self, *args, subcommand: str, **options) -> None:
        getattr(self, f"handle_{subcommand}")(**options)

    def add_classify_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE", help="a message, as received")
        parser.add_argument(
            "--envelope-to",
            action="append",
            default=[],
            metavar="ADDRESS",
            help="the envelope recipient (RCPT TO) it was received for; may be repeated",
        )

    def handle_classify(self, *, files: list[str], envelope_to: list[str], **options) -> None:
        for path, raw in self._read_files(files):
            self._write_json(classify(raw, envelope_to).as_json(file=path))

    def add_process_arguments(self, parser: CommandParser) -> None:
        self.add_classify_arguments(parser)

    def handle_process(self, *, files: list[str], envelope_to: list[str], **options) -> None:
        for path, raw in self._read_files(files):
            message = services.receive(raw, Source.FILE, envelope_to=envelope_to)
            events = message.events.order_by("pk")
            self._write_json(
                {
                    "file": path,
                    "message": message.pk,
                    "kind": message.kind,
                    "rule": message.rule,
                    "times_received": message.times_received,
                    "events": [
                        {"kind": e.kind, "outcome": e.outcome, "subscriber": e.subscriber_id}
                        for e in events
                    ],
                }
            )

    def _read_files(self, files: list[str]) -> Iterator[tuple[str, bytes]]:
        """Each readable file's bytes; an unreadable one is reported in line, and the command
        fails after the others, so that one bad name does not hide the rest."""
        unreadable = 0
        for path in files:
            try:
                raw = Path(path).read_bytes()
            except OSError as error:
                unreadable += 1
                self._write_json({"file": path, "error": error.strerror or str(error)})
                continue
            yield path, raw
        if unreadable:
            raise CommandError(f"{unreadable} of {len(files)} files could not be read.")

    def add_poll_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", help="another mailbox than MERUMAGA_BOUNCE_MAILBOX_URL")
        parser.add_argument(
            "--limit",
            type=int,
            default=mailbox.MAX_MESSAGES,
            help="at most this many messages (default %(default)s)",
        )

    def handle_poll(self, *, url: str | None, limit: int, **options) -> None:
        with progress_bar("bounces") as progress:
            try:
                report = mailbox.poll_mailbox(url, limit=limit, progress=progress)
            except mailbox.MailboxError as error:
                if error.report is not None:
                    self.stderr.write(str(error.report))
                raise CommandError(str(error)) from None
        self.stdout.write(str(report))
        if report.failed:
            raise CommandError(f"{report.failed} messages could not be stored; left on the server.")

    def _write_json(self, data: dict) -> None:
        self.stdout.write(json.dumps(data, ensure_ascii=False))
