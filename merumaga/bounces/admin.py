from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.decorators import permission_required
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from unfold.admin import ModelAdmin
from unfold.widgets import UnfoldAdminEmailInputWidget

from merumaga.admin_site import RecordAdmin
from merumaga.bounces import rates, services
from merumaga.bounces.models import BounceEvent, InboundMessage, SuppressionChange
from merumaga.subscribers.models import Suppression, address_hash

RAW_SHOWN = 64 * 1024  # the admin shows this much of a kept message; the download has it all


class ReviewedFilter(admin.SimpleListFilter):
    title = gettext_lazy("確認")
    parameter_name = "reviewed"

    def lookups(self, request, model_admin):
        return [("no", _("未確認")), ("yes", _("確認済み"))]

    def queryset(self, request, queryset):
        if self.value() in ("no", "yes"):
            return queryset.filter(reviewed_at__isnull=self.value() == "no")
        return queryset


@admin.register(InboundMessage)
class InboundMessageAdmin(RecordAdmin, ModelAdmin):
    # The rule and the source are on each message's page and in the filters: the list fits.
    list_display = (
        "received_at",
        "kind",
        "reason",
        "subject",
        "subscriber",
        "mailing",
        "times_received",
        "reviewed_at",
    )
    list_filter = ("kind", "reason", "source", ReviewedFilter)
    search_fields = ("subject", "rule", "envelope_to")
    date_hierarchy = "received_at"
    list_select_related = ("subscriber", "mailing")
    fields = (
        "received_at",
        "source",
        "kind",
        "reason",
        "rule",
        "status",
        "addresses",
        "subscriber",
        "mailing",
        "envelope_from",
        "envelope_to",
        "subject",
        "times_received",
        "size",
        "note",
        "reviewed_at",
        "message_text",
    )
    readonly_fields = fields
    actions = ["mark_reviewed", "read_again"]

    @admin.display(description=gettext_lazy("受信したメッセージ"))
    def message_text(self, obj: InboundMessage) -> str:
        raw = bytes(obj.raw or b"")
        text = raw[:RAW_SHOWN].decode("utf-8", "replace")
        more = ""
        if len(raw) > RAW_SHOWN or obj.truncated:
            more = _("(%(shown)d バイトのみ表示。受信サイズ %(size)d バイト)") % {
                "shown": min(len(raw), RAW_SHOWN),
                "size": obj.size,
            }
        return format_html(
            '<pre style="white-space:pre-wrap;max-height:40em;overflow:auto">{}</pre>{}',
            text,
            more,
        )

    def has_review_permission(self, request) -> bool:
        # The admin edits nothing here by hand, but reviewing and re-reading are changes.
        return request.user.has_perm("bounces.change_inboundmessage")

    @admin.action(description=gettext_lazy("確認済みにする"), permissions=["review"])
    def mark_reviewed(self, request, queryset):
        done = queryset.filter(reviewed_at__isnull=True).update(reviewed_at=timezone.now())
        self.message_user(request, _("%(count)d 件を確認済みにしました。") % {"count": done})

    @admin.action(
        description=gettext_lazy("もう一度判定する (判別不能・隔離のみ)"), permissions=["review"]
    )
    def read_again(self, request, queryset):
        changed = sum(services.read_again(message) for message in queryset)
        self.message_user(request, _("%(count)d 件の判定が変わりました。") % {"count": changed})


class LiftForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("取り消す理由"),
        max_length=300,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text=gettext_lazy("記録に残ります。例: 読者から連絡があり、受信できることを確認した"),
    )


def lift_with_reason(model_admin, request, hashes: list[str], shown: list[str]):
    """The lift action of bounce events and of suppressions: asks for the reason, then lifts
    each address through services.lift_suppression (which records it), and says what stayed."""
    form = LiftForm(request.POST if "reason" in request.POST else None)
    if form.is_bound and form.is_valid():
        lifted, refused = 0, []
        for hashed in hashes:
            try:
                services.lift_suppression(hashed, form.cleaned_data["reason"], request.user)
                lifted += 1
            except services.CannotLift as error:
                refused.append(str(error))
        model_admin.message_user(
            request, _("%(count)d 件の配信停止を取り消しました。") % {"count": lifted}
        )
        for reason in sorted(set(refused)):
            model_admin.message_user(request, reason, messages.WARNING)
        return None
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("配信停止を取り消す"),
        "opts": model_admin.model._meta,
        "form": form,
        "items": shown,
        "count": len(hashes),
        "action": "lift",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
    }
    return TemplateResponse(request, "admin/bounces/lift.html", context)


@admin.register(BounceEvent)
class BounceEventAdmin(RecordAdmin, ModelAdmin):
    # What happened to whom; the relay, the status code, the rule that read the mail and its
    # source are on each record's page (the source is a filter), so the list fits 1280 px.
    list_display = (
        "created_at",
        "kind",
        "reason",
        "outcome",
        "subscriber",
        "mailing",
        "domain",
        "score",
    )
    list_filter = ("kind", "reason", "outcome", "source")
    search_fields = ("domain", "relay", "status", "rule", "subscriber__email")
    date_hierarchy = "created_at"
    list_select_related = ("subscriber", "mailing")
    readonly_fields = [field.name for field in BounceEvent._meta.fields]
    actions = ["lift"]
    list_before_template = "admin/bounces/bounceevent/list_tools.html"

    def get_urls(self):
        may_view = permission_required("bounces.view_bounceevent", raise_exception=True)
        rates_view = self.admin_site.admin_view(may_view(self.rates_view))
        return [path("rates/", rates_view, name="bounces_rates"), *super().get_urls()]

    def rates_view(self, request):
        by_mailing, by_domain = rates.per_mailing(), rates.per_domain()
        if any(row.level == "danger" for row in [*by_mailing, *by_domain]):
            messages.error(
                request,
                _("迷惑メール報告率が0.1%%を超えています。Gmailは0.3%%で受信を制限します。"),
            )
        elif any(row.level == "warning" for row in [*by_mailing, *by_domain]):
            messages.warning(request, _("迷惑メール報告率または不達率が上限に近づいています。"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("不達率・迷惑メール報告率"),
            "opts": self.model._meta,
            "by_mailing": by_mailing,
            "by_domain": by_domain,
            "by_relay": rates.ours_per_relay(),
            "complaint_warning": rates.COMPLAINT_WARNING * 100,
            "bounce_warning": rates.BOUNCE_WARNING * 100,
        }
        return TemplateResponse(request, "admin/bounces/rates.html", context)

    def has_lift_permission(self, request) -> bool:
        return request.user.has_perm("subscribers.lift_suppression")

    @admin.action(description=gettext_lazy("配信停止を取り消す (理由を記録)"), permissions=["lift"])
    def lift(self, request, queryset):
        """Lift the suppressions these events caused; asks for a reason first."""
        hashes = list(
            Suppression.objects.filter(
                address_hash__in=queryset.exclude(address_hash="").values("address_hash")
            ).values_list("address_hash", flat=True)
        )
        shown = [
            f"{event} — {event.subscriber or ''}"
            for event in queryset.select_related("subscriber")[:100]
        ]
        return lift_with_reason(self, request, hashes, shown)


@admin.register(SuppressionChange)
class SuppressionChangeAdmin(RecordAdmin, ModelAdmin):
    list_display = ("created_at", "action", "subscriber", "reason", "user", "event")
    list_filter = ("action",)
    search_fields = ("reason", "subscriber__email")
    list_select_related = ("subscriber", "user", "event")
    readonly_fields = [field.name for field in SuppressionChange._meta.fields]


class SuppressForm(forms.ModelForm):
    """A suppression made by hand: the address (kept only as its hash) and why."""

    # The theme's input (a plain one shows no box in its forms).
    email = forms.EmailField(
        label=gettext_lazy("メールアドレス"), widget=UnfoldAdminEmailInputWidget
    )

    class Meta:
        model = Suppression
        fields = ["note"]
        labels = {"note": gettext_lazy("理由")}
        help_texts = {"note": gettext_lazy("記録に残ります。例: 電話で配信停止の依頼があった")}

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        if Suppression.objects.filter(address_hash=address_hash(email)).exists():
            raise forms.ValidationError(_("このアドレスはすでに配信停止になっています。"))
        return email

    def clean_note(self) -> str:
        note = self.cleaned_data["note"].strip()
        if not note:
            raise forms.ValidationError(_("理由を入力してください。"))
        return note


@admin.register(Suppression)
class SuppressionAdmin(ModelAdmin):
    """Addresses bulk mail never reaches. Made by the platform (bounces, complaints, erasure)
    or by hand here, and lifted only with the lift action (a reason, on the audit trail): never
    edited or deleted, or an erased reader could be imported back."""

    list_display = ("address_hash", "reason", "note", "created_at")
    list_filter = ("reason",)
    search_fields = ("note",)
    actions = ["lift"]
    form = SuppressForm

    def get_fields(self, request, obj=None):
        return (
            ["email", "note"] if obj is None else ["address_hash", "reason", "note", "created_at"]
        )

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["address_hash", "reason", "note", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_lift_permission(self, request) -> bool:
        return request.user.has_perm("subscribers.lift_suppression")

    def save_model(self, request, obj, form, change):
        services.suppress_by_hand(
            form.cleaned_data["email"], form.cleaned_data["note"], request.user
        )

    def save_related(self, request, form, formsets, change):
        pass  # nothing is related; the row was written by the service

    def response_add(self, request, obj, post_url_continue=None):
        messages.success(request, _("配信停止にしました (記録に残しました)。"))
        return HttpResponseRedirect(reverse("admin:subscribers_suppression_changelist"))

    @admin.action(description=gettext_lazy("配信停止を取り消す (理由を記録)"), permissions=["lift"])
    def lift(self, request, queryset):
        shown = [str(suppression) for suppression in queryset[:100]]
        return lift_with_reason(
            self, request, list(queryset.values_list("address_hash", flat=True)), shown
        )
