import sys

from django.core.management.base import BaseCommand

from merumaga.subscribers import csv_io, services
from merumaga.subscribers.models import Subscriber


class Command(BaseCommand):
    help = "Write subscribers as CSV (UTF-8 with BOM, safe against spreadsheet formulas)."

    def add_arguments(self, parser):
        parser.add_argument("--status", choices=Subscriber.Status.values)
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")

    def handle(self, *args, status=None, output=None, **options):
        queryset = Subscriber.objects.all()
        if status:
            queryset = queryset.filter(status=status)
        rows = services.export_rows(queryset)
        if output:
            with open(output, "w", newline="", encoding="utf-8") as out:
                csv_io.write_csv(out, services.EXPORT_HEADER, rows)
        else:
            csv_io.write_csv(sys.stdout, services.EXPORT_HEADER, rows)
