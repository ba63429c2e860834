import json

from django.apps import apps
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, Permission, User
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from merumaga.admin_site import RecordAdmin
from merumaga.shown import minute
from merumaga.subscribers import csv_io
from merumaga.team.models import AuditEntry

HEADER = ["at", "username", "via", "action", "object_type", "object_id", "object", "changes"]


@admin.register(AuditEntry)
class AuditEntryAdmin(RecordAdmin, ModelAdmin):
    """The audit log: searchable and exportable, never changed (append-only)."""

    list_display = ("when", "username", "action", "object_repr", "summary")
    list_filter = ("via", "object_type", "action")
    search_fields = ("username", "action", "object_type", "object_id", "object_repr")
    date_hierarchy = "at"
    actions = ["export_csv"]
    fields = ("when", "username", "via", "action", "object_type", "object_id", "object_repr")
    readonly_fields = (*fields, "changes_table")

    def get_fields(self, request, obj=None):
        return [*self.fields, "changes_table"]

    @admin.display(description=_("日時"), ordering="at")
    def when(self, entry: AuditEntry) -> str:
        return minute(entry.at)

    @admin.display(description=_("変更内容"))
    def summary(self, entry: AuditEntry) -> str:
        return ", ".join(entry.changes)[:120]

    @admin.display(description=_("変更内容"))
    def changes_table(self, entry: AuditEntry) -> str:
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            (
                (name, *(values if isinstance(values, list) and len(values) == 2 else ["", values]))
                for name, values in entry.changes.items()
            ),
        )
        head = format_html(
            "<tr><th>{}</th><th>{}</th><th>{}</th></tr>", _("項目"), _("変更前"), _("変更後")
        )
        return format_html(
            '<div class="mm mm-scroll"><table><thead>{}</thead><tbody>{}</tbody></table></div>',
            head,
            rows,
        )

    @admin.action(description=_("選択した記録をCSVで書き出す"), permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
        rows = (
            [
                minute(entry.at),
                entry.username,
                entry.via,
                entry.action,
                entry.object_type,
                entry.object_id,
                entry.object_repr,
                json.dumps(entry.changes, ensure_ascii=False),
            ]
            for entry in queryset.order_by("at", "id")
        )
        csv_io.write_csv(response, HEADER, rows)
        return response


# Accounts and roles in the theme's own forms (Django's admin registered them plainly).
admin.site.unregister(User)
admin.site.unregister(Group)
# django-otp's own pages would show anyone with access every account's authenticator key (and
# come in English only): a lost authenticator is removed with `merumaga 2fa-reset NAME`.
admin.site.unregister(TOTPDevice)
admin.site.unregister(StaticDevice)


DEFAULT_ACTIONS = {"add": _("追加"), "change": _("変更"), "delete": _("削除"), "view": _("閲覧")}


def permission_label(permission: Permission) -> str:
    """A permission as the page's reader says it: 「記事: 追加」, not Django's stored English
    "publishing | 記事 | Can add 記事" (Permission.name is written once, in English, when the
    table is made). A permission of our own keeps its name, which is Japanese already."""
    model = permission.content_type.model_class()
    if model is None:  # a model since removed
        return permission.name
    action, _sep, model_name = permission.codename.partition("_")
    if model_name == model._meta.model_name and action in DEFAULT_ACTIONS:
        said = DEFAULT_ACTIONS[action]
    else:
        said = _(permission.name)
    app = apps.get_app_config(model._meta.app_label).verbose_name
    return f"{app} › {model._meta.verbose_name}: {said}"


class PermissionsInWords:
    """The user's and the group's permission choices, labelled by permission_label."""

    def formfield_for_manytomany(self, db_field, request=None, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]
        if field is not None and db_field.name in ("permissions", "user_permissions"):
            field.label_from_instance = permission_label
        return field


@admin.register(User)
class UserAdmin(PermissionsInWords, BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    # The theme's own multiple choice, not Django's two boxes (which do not fit the page).
    filter_horizontal = ()


@admin.register(Group)
class GroupAdmin(PermissionsInWords, BaseGroupAdmin, ModelAdmin):
    filter_horizontal = ()
