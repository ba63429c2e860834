from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from merumaga.subscribers import services
from merumaga.subscribers.models import ConsentRecord


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
        console = Console(stderr=True)
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("importing rows", total=None)
            try:
                report = services.import_subscribers(
                    data,
                    source,
                    services.Evidence(source=ConsentRecord.Source.IMPORT, user_agent="cli"),
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
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
