"""The 結果 section of the admin: each mailing sent, with what it achieved."""

import csv

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin

from merumaga.mailings.models import Mailing
from merumaga.outcomes import charts, figures
from merumaga.outcomes.models import MailingReport
from merumaga.subscribers.models import Topic

GONE_OUT = (Mailing.Status.SENDING, Mailing.Status.PAUSED, Mailing.Status.SENT)


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.2f}%"


@admin.register(MailingReport)
class MailingReportAdmin(ModelAdmin):
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

    def get_urls(self) -> list[URLPattern]:
        readers = path(
            "readers.csv", self.admin_site.admin_view(self.readers_csv), name="outcomes_readers_csv"
        )
        return [readers, *super().get_urls()]

    def readers_csv(self, request: HttpRequest) -> HttpResponse:
        """The first page's reader figures as CSV: per topic now, then per day (90 days), of all
        readers or of one topic."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="readers.csv"'
        response.write("\ufeff")
        writer = csv.writer(response)
        writer.writerow([_("配信種別"), _("読者数"), _("新規 (30日)"), _("配信停止 (30日)")])
        for row in figures.reader_figures():
            writer.writerow([row.name, row.readers, row.joined, row.left])
        writer.writerow([])
        # ?topic=<key>: that topic's readers per day, as the first page's chart shows them.
        chosen = Topic.objects.filter(key=request.GET.get("topic", "")).first()
        writer.writerow([chosen.name if chosen else _("すべての読者")])
        writer.writerow([_("日付"), _("読者"), _("新規"), _("配信停止")])
        series = figures.topic_series(chosen.key) if chosen else figures.reader_series()
        for day in series:
            writer.writerow([day.day.isoformat(), day.readers, day.joined, day.left])
        return response

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
        if not self.has_view_permission(request):
            raise PermissionDenied
        mailing = self.get_object(request, object_id)
        if mailing is None:
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
        if request.GET.get("format") == "csv":
            return _csv(mailing, found, rows)
        hours = figures.first_hours(mailing)
        labels = [date_format(timezone.localtime(hour.start), "m/d H:i") for hour in hours]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": mailing.subject,
            "mailing": mailing,
            "figures": found,
            "rows": rows,
            "providers": figures.provider_figures(mailing),
            "hours_chart": charts.line_chart(
                gettext("最初の72時間の送信とクリック (1時間ごと)"),
                labels,
                [
                    charts.Line(gettext("送信"), [hour.sent for hour in hours], "#0b5cad"),
                    charts.Line(gettext("クリック"), [hour.clicks for hour in hours], "#1a7f37"),
                ],
            )
            if hours
            else "",
            "busy_hours": [hour for hour in hours if hour.sent or hour.clicks],
            "links": [
                {
                    "url": link.url,
                    "readable_url": link.readable_url,
                    "article": link.article,
                    "clicks": link.clicks,
                    "rate": _percent(found.rate(link.clicks)),
                    "clickers": link.clickers,
                }
                for link in found.links
            ],
        }
        return TemplateResponse(request, "admin/outcomes/mailing_report.html", context)


def _csv(mailing: Mailing, found: figures.MailingFigures, rows: list) -> HttpResponse:
    """The report as CSV (UTF-8 with a BOM, which Excel needs to read Japanese)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="mailing-{mailing.pk}.csv"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow([_("項目"), _("件数"), _("送信済みに対する割合")])
    for label, count, rate in rows:
        writer.writerow([label, "" if count is None else count, rate])
    writer.writerow([])
    writer.writerow([_("リンク先"), _("記事"), _("クリック"), _("クリックした読者")])
    for link in found.links:
        writer.writerow(
            [link.url, link.article, link.clicks, "" if link.clickers is None else link.clickers]
        )
    return response
