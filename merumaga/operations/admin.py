from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin

from merumaga.admin_site import RecordAdmin
from merumaga.operations.models import DoctorRun


@admin.register(DoctorRun)
class DoctorRunAdmin(RecordAdmin, ModelAdmin):
    """The answers of `merumaga doctor` (run it after changing DNS or relays)."""

    list_display = ("ran_at", "ok", "warn", "fail")
    fields = ("ran_at", "ok", "warn", "fail", "report")
    readonly_fields = fields

    @admin.display(description=_("結果"))
    def report(self, run: DoctorRun) -> str:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}<br><code>{}</code></td></tr>",
            (
                (finding["status"], finding["check"], finding["message"], finding.get("fix", ""))
                for finding in run.findings
            ),
        )
        return format_html('<div class="mm mm-scroll"><table>{}</table></div>', rows)
