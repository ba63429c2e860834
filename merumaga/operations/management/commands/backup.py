from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from merumaga.operations import backups


class Command(BaseCommand):
    help = (
        "Write a consistent backup of the running platform (database, task queue, uploads, "
        "caught mail, generated secret key) to FILE, by default $MERUMAGA_DATA_DIR/backups/."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", type=Path)

    def handle(self, *args, file, **options):
        target = (file or backups.default_file()).resolve()
        try:
            manifest = backups.backup(target)
        except backups.BackupError as error:
            raise CommandError(str(error)) from None
        figures = ", ".join(f"{name} {count}" for name, count in manifest.counts.items())
        self.stdout.write(f"{target} ({manifest.backend}): {figures}")
        if not manifest.secret_key_included:
            self.stdout.write(
                "the secret key comes from SECRET_KEY or SECRET_KEY_FILE: keep it with the backup"
            )
