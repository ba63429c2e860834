from django.core.management.base import BaseCommand, CommandError

from merumaga.mailings import services


class Command(BaseCommand):
    help = (
        "Compose the weekly report now from the articles not yet sent. Prints the new mailing's "
        "id; with --send also starts sending it. Exits 0 with a clear line when nothing is new."
    )

    def add_arguments(self, parser):
        parser.add_argument("--send", action="store_true", help="start sending it at once")

    def handle(self, *args, send=False, **options):
        mailing = services.compose_weekly()
        if mailing is None:
            self.stdout.write("nothing new: no article was published since the last weekly report")
            return
        if send:
            try:
                services.start(mailing, note="compose-weekly --send")
            except services.MailingError as error:
                raise CommandError(f"mailing {mailing.pk} composed but not sent: {error}") from None
        self.stdout.write(str(mailing.pk))
