from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from merumaga.subscribers import services
from merumaga.subscribers.models import ConsentRecord
from merumaga.terminal import progress_bar


class Command(BaseCommand):
    help = (
        "Import subscribers from a CSV file (UTF-8 with or without BOM, or Shift_JIS). Columns: "
        "email (required), name, organisation, topics (keys separated by ';'), language, charset."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--source",
            required=True,
            help='How these readers gave their consent, e.g. "2026年秋セミナー申込者"',
        )
        parser.add_argument("--errors", type=int, default=20, help="row errors to print")

    def handle(self, *args, file: Path, source: str, errors: int, **options):
        try:
            data = file.read_bytes()
        except OSError as error:
            raise CommandError(f"{file}: {error.strerror}") from None
        with progress_bar("importing rows", transient=True) as progress:
            try:
                report = services.import_subscribers(
                    data,
                    source,
                    services.Evidence(source=ConsentRecord.Source.IMPORT, user_agent="cli"),
                    progress=progress,
                )
            except services.InvalidInput as error:
                raise CommandError(str(error)) from None
        for row_error in report.errors[:errors]:
            self.stderr.write(f"row {row_error.line}: {row_error.email}: {row_error.message}")
        if len(report.errors) > errors:
            self.stderr.write(f"… and {len(report.errors) - errors} more row errors")
        self.stdout.write(
            f"encoding={report.encoding} rows={report.rows} created={report.created} "
            f"existing={report.existing} suppressed={report.suppressed} "
            f"duplicates={report.duplicates} errors={len(report.errors)}"
        )
