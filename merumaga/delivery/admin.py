from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from unfold.admin import ModelAdmin

from merumaga.delivery import services
from merumaga.delivery.models import DomainHold


class LiftHoldForm(forms.Form):
    note = forms.CharField(
        label=gettext_lazy("解除の理由"),
        max_length=300,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text=gettext_lazy("記録に残ります。例: ブロックリストからの削除を確認した"),
    )


class HoldForm(forms.ModelForm):
    """Holding a domain by hand: the domain and why, nothing else (the rest is the service's)."""

    class Meta:
        model = DomainHold
        fields = ["domain", "reason"]

    def clean_domain(self):
        domain = self.cleaned_data["domain"].strip().lower().rstrip(".")
        if "@" in domain or "." not in domain or " " in domain:
            raise forms.ValidationError(_("ドメイン名だけを入力してください (例: example.co.jp)。"))
        if DomainHold.objects.filter(domain=domain, lifted_at__isnull=True).exists():
            raise forms.ValidationError(_("このドメインはすでに一時停止中です。"))
        return domain


class ActiveFilter(admin.SimpleListFilter):
    title = gettext_lazy("状態")
    parameter_name = "active"

    def lookups(self, request, model_admin):
        return [("yes", _("一時停止中")), ("no", _("解除済み"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(lifted_at__isnull=self.value() == "yes")
        return queryset


@admin.register(DomainHold)
class DomainHoldAdmin(ModelAdmin):
    list_display = (
        "domain",
        "is_active",
        "reason",
        "started_at",
        "probe_at",
        "probes",
        "lifted_at",
        "lifted_by",
        "lift_note",
    )
    list_filter = (ActiveFilter,)
    search_fields = ("domain", "reason")
    date_hierarchy = "started_at"
    actions = ["lift"]
    form = HoldForm

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["domain", "reason"]
        return [*self.list_display[:1], "reason", "started_at", "backoff", "probe_at", "probes",
                "lifted_at", "lifted_by", "lift_note"]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        # Viewed and lifted (an action), never edited: a hold is a record.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        hold = services.hold_domain(
            form.cleaned_data["domain"],
            _("管理画面から %(user)s が停止: %(reason)s")
            % {"user": request.user.get_username(), "reason": form.cleaned_data["reason"]},
        )
        # None: another hold of the domain came first (the form checked a moment ago).
        obj.pk = (hold or DomainHold.objects.get(domain=obj.domain, lifted_at__isnull=True)).pk

    @admin.display(description=gettext_lazy("一時停止中"), boolean=True)
    def is_active(self, obj: DomainHold) -> bool:
        return obj.active

    def has_lift_permission(self, request) -> bool:
        return request.user.has_perm("delivery.change_domainhold")

    @admin.action(description=gettext_lazy("一時停止を解除する (理由を記録)"), permissions=["lift"])
    def lift(self, request, queryset):
        holds = list(queryset.filter(lifted_at__isnull=True))
        form = LiftHoldForm(request.POST if "note" in request.POST else None)
        if form.is_bound and form.is_valid():
            for hold in holds:
                released = services.lift_hold(
                    hold, user=request.user, note=form.cleaned_data["note"]
                )
                self.message_user(
                    request,
                    _("%(domain)s への配信を再開しました (待っていた %(count)d 通を送ります)。")
                    % {"domain": hold.domain, "count": released},
                )
            if not holds:
                self.message_user(request, _("選択したものはすでに解除されています。"))
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("一時停止を解除する"),
            "opts": self.model._meta,
            "form": form,
            "holds": holds,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        }
        return TemplateResponse(request, "admin/delivery/lift_hold.html", context)
