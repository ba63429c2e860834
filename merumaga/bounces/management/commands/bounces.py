"""`merumaga bounces SUBCOMMAND …`: work on what comes back to the bounce domain by hand.

    merumaga bounces classify FILE… [--envelope-to ADDRESS]

`classify` says what each saved message is, as one JSON object a line, and changes nothing.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from merumaga.bounces.classify import classify


class Command(BaseCommand):
    help = "Bounces, complaints and mailed unsubscribes: read them by hand."

    # A subcommand is one entry here plus two methods: add_<name>_arguments(parser) and
    # handle_<name>(**options). Sibling subcommands need no change elsewhere.
    subcommands = {
        "classify": "Say what each saved message (FILE…) is, as JSON lines; changes nothing.",
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
        unreadable = 0
        for path in files:
            try:
                raw = Path(path).read_bytes()
            except OSError as error:
                unreadable += 1
                self._write_json({"file": path, "error": error.strerror or str(error)})
                continue
            self._write_json(classify(raw, envelope_to).as_json(file=path))
        if unreadable:
            # After the others, so that one bad name does not hide the verdicts on the rest.
            raise CommandError(f"{unreadable} of {len(files)} files could not be read.")

    def _write_json(self, data: dict) -> None:
        self.stdout.write(json.dumps(data, ensure_ascii=False))
