"""The 結果 section of the admin: each mailing sent, with what it achieved."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from merumaga.mailings.models import Mailing
from merumaga.outcomes import figures
from merumaga.outcomes.models import MailingReport

GONE_OUT = (Mailing.Status.SENDING, Mailing.Status.PAUSED, Mailing.Status.SENT)


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.2f}%"


@admin.register(MailingReport)
class MailingReportAdmin(admin.ModelAdmin):
    list_display = ("subject", "started", "sent", "failed")
    list_display_links = ("subject",)
    search_fields = ("subject",)
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[MailingReport]:
        return (
            super().get_queryset(request).filter(status__in=GONE_OUT).order_by("-started_at", "-id")
        )

    @admin.display(description=_("配信開始"), ordering="started_at")
    def started(self, obj: Mailing) -> str:
        return (
            date_format(timezone.localtime(obj.started_at), "Y-m-d H:i") if obj.started_at else "—"
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, object] | None = None,
    ) -> HttpResponse:
        """The mailing's report instead of a form: its funnel and its links."""
        mailing = self.get_object(request, object_id)
        if mailing is None or not self.has_view_permission(request, mailing):
            raise Http404(_("この配信は見つかりません。"))
        found = figures.mailing_figures(mailing)
        rows = [
            (_("配信対象"), found.audience, ""),
            (_("送信済み"), found.sent, ""),
            (_("再送待ち"), found.deferred, _percent(found.rate(found.deferred))),
            (_("失敗"), found.failed, _percent(found.rate(found.failed))),
            (_("不達 (宛先なし)"), found.hard_bounces, _percent(found.rate(found.hard_bounces))),
            (_("不達 (一時的)"), found.soft_bounces, _percent(found.rate(found.soft_bounces))),
            (_("迷惑メール報告"), found.complaints, _percent(found.rate(found.complaints))),
            (_("配信停止"), found.unsubscribes, _percent(found.rate(found.unsubscribes))),
            (_("クリック"), found.clicks, _percent(found.rate(found.clicks))),
            (
                _("クリックした読者"),
                found.unique_clickers,
                _percent(found.rate(found.unique_clickers)),
            ),
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": mailing.subject,
            "mailing": mailing,
            "figures": found,
            "rows": rows,
        }
        return TemplateResponse(request, "admin/outcomes/mailing_report.html", context)
