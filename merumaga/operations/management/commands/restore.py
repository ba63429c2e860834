from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from merumaga.operations import backups


class Command(BaseCommand):
    help = (
        "Restore a backup made by `merumaga backup` into an empty data directory and database "
        "(--force replaces what is there), then bring its tables to this version."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--force", action="store_true", help="replace what is there")

    def handle(self, *args, file, force, **options):
        if not file.is_file():
            raise CommandError(f"{file}: no such backup file")
        try:
            manifest, found = backups.restore(file, force=force)
        except backups.BackupError as error:
            raise CommandError(str(error)) from None
        call_command("migrate", verbosity=0)  # a backup of an older version: its tables now
        differing = {
            name: (count, found.get(name))
            for name, count in manifest.counts.items()
            if found.get(name) != count
        }
        if differing:
            raise CommandError(f"restored, but counts differ from the backup's: {differing}")
        figures = ", ".join(f"{name} {count}" for name, count in found.items())
        self.stdout.write(f"restored {file} (taken {manifest.created_at}): {figures}")
