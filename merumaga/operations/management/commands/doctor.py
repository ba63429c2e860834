import json
import sys

from django.core.management.base import BaseCommand
from django.utils import translation

from merumaga.operations import doctor
from merumaga.operations.models import DoctorRun


class Command(BaseCommand):
    help = (
        "Check what a real domain needs for this setup's mail to reach the inbox (SPF, DKIM, "
        "DMARC, MX, reverse DNS, the relay's TLS, HTTPS, the sender's details, the bulk sender "
        "rules) and say what to fix. Exit status 1 when anything fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("--lang", choices=["ja", "en"], default="ja")
        parser.add_argument("--json", action="store_true", dest="as_json", help="for scripts")

    def handle(self, *args, lang, as_json: bool, **options):
        with translation.override(lang):
            findings = doctor.Doctor(lookup=doctor.dns_lookup).run()
        counts = doctor.summary(findings)
        DoctorRun.objects.create(**counts, findings=doctor.as_dicts(findings))
        if as_json:
            self.stdout.write(
                json.dumps(
                    {"summary": counts, "findings": doctor.as_dicts(findings)},
                    ensure_ascii=False,
                    indent=1,
                )
            )
        else:
            for finding in findings:
                self.stdout.write(f"{finding.status:<5} {finding.check:<11} {finding.message}")
                if finding.fix:
                    self.stdout.write(f"{'':17} → {finding.fix}")
            self.stdout.write(f"\n{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail")
        if counts["fail"]:
            sys.exit(1)
