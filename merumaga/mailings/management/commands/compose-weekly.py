from django.core.management.base import BaseCommand, CommandError

from merumaga.mailings import services


class Command(BaseCommand):
    help = (
        "Compose the weekly report now from the articles not yet sent, or refresh the one waiting "
        "to be sent. Prints its id (and on stderr what was done); with --send also starts sending "
        "it. Exits 0 with a clear line when there is nothing to send."
    )

    def add_arguments(self, parser):
        parser.add_argument("--send", action="store_true", help="start sending it at once")

    def handle(self, *args, send=False, **options):
        composed = services.compose_weekly()
        mailing = composed.mailing
        if mailing is None:
            self.stdout.write("nothing new: no article was published since the last weekly report")
            return
        if composed.created:
            self.stderr.write(f"composed weekly report {mailing.pk}: {composed.added} articles")
        else:
            self.stderr.write(
                f"weekly report {mailing.pk} was waiting to be sent: {composed.added} articles "
                f"added, {composed.removed} taken out, {composed.articles} in all"
            )
        if send:
            try:
                services.start(mailing, note="compose-weekly --send")
            except services.MailingError as error:
                raise CommandError(f"mailing {mailing.pk} composed but not sent: {error}") from None
        self.stdout.write(str(mailing.pk))
