from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from unfold.admin import ModelAdmin, TabularInline

from merumaga.admin_site import RecordAdmin
from merumaga.subscribers import csv_io, services
from merumaga.subscribers.models import ConsentRecord, Subscriber, Subscription, Topic

IMPORT_MAX_BYTES = 50 * 1024 * 1024


class TopicFilter(admin.SimpleListFilter):
    title = _("購読中の配信種別")
    parameter_name = "topic"

    def lookups(self, request, model_admin):
        return [(topic.key, topic.name) for topic in Topic.objects.all()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(
                subscription__topic__key=self.value(), subscription__subscribed=True
            )
        return queryset


class SubscriptionInline(TabularInline):
    model = Subscription
    extra = 0
    readonly_fields = ("topic", "subscribed", "changed_at")
    can_delete = False

    def has_add_permission(self, request, obj=None):
        # Changes go through the reader's preferences so that each is a consent record.
        return False


class TopicNames:
    """A consent record's topics by their names, not their stored keys (the names read once
    per page, not once per row)."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[ConsentRecord]:
        self._names = dict(Topic.objects.values_list("key", "name"))
        return super().get_queryset(request)  # type: ignore[misc]

    @admin.display(description=pgettext_lazy("plural", "配信種別"))
    def topic_names(self, record: ConsentRecord) -> str:
        names = getattr(self, "_names", None) or dict(Topic.objects.values_list("key", "name"))
        return "、".join(str(names.get(key, key)) for key in record.topics) or "—"


class ConsentRecordInline(TopicNames, TabularInline):
    model = ConsentRecord
    extra = 0
    can_delete = False
    fields = ("created_at", "action", "source", "topic_names", "ip_address", "wording")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ImportForm(forms.Form):
    file = forms.FileField(label=_("CSVファイル"))
    source = forms.CharField(
        label=_("同意の取得元"),
        max_length=300,
        help_text=_("例: 「2026年秋セミナー申込者 (申込書で配信に同意)」。同意記録に残ります。"),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                _(
                    "ファイルが大きすぎます (上限 %(mb)d MB)。"
                    "コマンド merumaga import-subscribers をお使いください。"
                )
                % {"mb": IMPORT_MAX_BYTES // 1024 // 1024}
            )
        return upload


@admin.register(Subscriber)
class SubscriberAdmin(ModelAdmin):
    list_before_template = "admin/subscribers/subscriber/list_tools.html"
    list_display = ("email", "name", "organisation", "status", "charset", "created_at")
    list_filter = (
        "status",
        TopicFilter,
        "charset",
        "language",
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("email", "name", "organisation")
    date_hierarchy = "created_at"
    readonly_fields = (
        "email",
        "status",
        "created_at",
        "confirmed_at",
        "unsubscribed_at",
        "erased_at",
        "confirmation_sent_at",
        "clicks",
    )
    fields = ("email", "name", "organisation", "language", "charset", *readonly_fields[1:])
    inlines = [SubscriptionInline, ConsentRecordInline]
    actions = ["export_csv"]
    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request):
        # New readers come through the form (double opt-in) or an import with a declared source.
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting would lose consent records the law requires us to keep; erase instead.
        return False

    @admin.display(description=_("クリック"))
    def clicks(self, obj: Subscriber) -> str:
        """The links this reader clicked, when the site keeps clicks per reader."""
        rows = services.kept_by_other_apps(obj).get("clicks") or []
        if not rows:
            return str(_("記録なし (クリックを読者ごとに記録する設定のときだけ記録します)"))
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} — {} — {}</li>",
                ((r["at"][:16].replace("T", " "), r["subject"], r["url"]) for r in rows),
            ),
        )

    def has_export_permission(self, request) -> bool:
        return request.user.has_perm("subscribers.export_subscriber")

    @admin.action(description=_("選択した購読者をCSVで書き出す"), permissions=["export"])
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="subscribers.csv"'
        csv_io.write_csv(response, services.EXPORT_HEADER, services.export_rows(queryset))
        return response

    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="subscribers_subscriber_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request):
        if not request.user.has_perm("subscribers.import_subscriber"):
            raise PermissionDenied
        report = None
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                report = services.import_subscribers(
                    form.cleaned_data["file"].read(),
                    form.cleaned_data["source"],
                    services.Evidence(
                        source=ConsentRecord.Source.IMPORT,
                        ip_address=request.META.get("REMOTE_ADDR"),
                        user_agent=f"admin:{request.user.get_username()}",
                    ),
                )
            except services.InvalidInput as error:
                form.add_error(None, str(error))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("購読者のインポート"),
            "form": form,
            "report": report,
            "shown_errors": report.errors[:200] if report else [],
        }
        return TemplateResponse(request, "admin/subscribers/subscriber/import.html", context)


@admin.register(Topic)
class TopicAdmin(ModelAdmin):
    list_display = ("name", "key", "position", "is_active")
    list_editable = ("position", "is_active")

    def get_readonly_fields(self, request, obj=None):
        # Consent records, links and charts name a topic by its key: it is set once.
        return ("key",) if obj is not None else ()


@admin.register(ConsentRecord)
class ConsentRecordAdmin(RecordAdmin, TopicNames, ModelAdmin):
    list_display = ("created_at", "email", "action", "source", "topic_names", "ip_address")
    list_filter = ("action", "source")
    exclude = ("topics",)
    readonly_fields = ("topic_names",)
    search_fields = ("email",)
    show_full_result_count = False
