"""`merumaga stats mailing ID` and `merumaga stats readers`: the figures as key=value lines."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from merumaga.mailings.models import Mailing
from merumaga.outcomes import figures


class Command(BaseCommand):
    help = (
        "Print a mailing's figures (`stats mailing ID`) or the readers per topic (`stats "
        "readers`) as key=value pairs, one line each."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", choices=["mailing", "readers"])
        parser.add_argument("id", nargs="?", type=int)

    def handle(self, *args: object, what: str, id: int | None, **options: object) -> None:
        if what == "readers":
            for topic in figures.reader_figures():
                self.stdout.write(
                    f"topic={topic.key} readers={topic.readers} joined_30d={topic.joined} "
                    f"left_30d={topic.left}"
                )
            return
        if id is None:
            raise CommandError("stats mailing needs the mailing's ID: merumaga stats mailing 12")
        mailing = Mailing.objects.filter(pk=id).first()
        if mailing is None:
            raise CommandError(f"No mailing has ID {id}.")
        found = figures.mailing_figures(mailing)
        pairs = [("mailing", mailing.pk), ("status", mailing.status), *found.as_pairs()]
        # "unknown": clicks are not kept per reader, so unique clickers cannot be counted.
        self.stdout.write(" ".join(f"{k}={'unknown' if v is None else v}" for k, v in pairs))
