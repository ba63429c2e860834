"""The admin's sections as editors work, not as the code is split: 書く, 配信する, 読者, 結果,
設定. Every page stays where it was (/admin/<app>/<model>/); only the first page's list and
the section pages group them this way. A model no group names goes to その他, never lost."""

from typing import Any

from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from unfold.sites import UnfoldAdminSite

# (section, its models as "app_label.ObjectName", in the order shown)
SECTIONS = [
    (
        "write",
        _("書く"),
        ["publishing.Article", "publishing.Report", "publishing.Event", "publishing.Tag"],
    ),
    (
        "send",
        _("配信する"),
        ["mailings.Mailing", "publishing.ArchivedMailing", "delivery.DomainHold"],
    ),
    (
        "readers",
        _("読者"),
        [
            "subscribers.Subscriber",
            "subscribers.ConsentRecord",
            "subscribers.Suppression",
            "bounces.SuppressionChange",
            "subscribers.Topic",
        ],
    ),
    (
        "results",
        _("結果"),
        ["outcomes.MailingReport", "bounces.BounceEvent", "bounces.InboundMessage"],
    ),
    (
        "settings",
        _("設定"),
        [
            "institute.SiteSettings",
            "auth.User",
            "auth.Group",
            "team.AuditEntry",
            "hooks.Endpoint",
            "hooks.WebhookDelivery",
            "api.ApiToken",
            "operations.DoctorRun",
        ],
    ),
]


class RecordAdmin:
    """A model admin for records (evidence, logs): viewed, searched and exported, never added,
    changed or deleted by hand. Placed before ModelAdmin in the bases."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class MerumagaAdminSite(UnfoldAdminSite):
    index_title = _("ダッシュボード")

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        models = {
            f"{app['app_label']}.{model['object_name']}": model
            for app in apps
            for model in app["models"]
        }
        sections = []
        for key, name, members in SECTIONS:
            found = [models.pop(member) for member in members if member in models]
            if found:
                sections.append(
                    {
                        "name": name,
                        "app_label": key,
                        "app_url": "",
                        "has_module_perms": True,
                        "models": found,
                    }
                )
        if models:
            sections.append(
                {
                    "name": _("その他"),
                    "app_label": "others",
                    "app_url": "",
                    "has_module_perms": True,
                    "models": list(models.values()),
                }
            )
        return sections


class MerumagaAdminConfig(AdminConfig):
    """Django's admin, with the site above (INSTALLED_APPS names this instead of the admin)."""

    default_site = "merumaga.admin_site.MerumagaAdminSite"


def sidebar(request: HttpRequest) -> list[dict[str, Any]]:
    """The sidebar's groups: the same sections as the first page, with only what this account
    may see (the app list is already filtered by permission), and the mail viewer for those
    who may read caught mail."""
    from django.contrib import admin

    groups = [
        {
            "key": section["app_label"],
            "title": section["name"],
            "items": [
                {"title": model["name"], "link": model["admin_url"]}
                for model in section["models"]
                if model.get("admin_url")
            ],
        }
        for section in admin.site.get_app_list(request)
    ]
    if request.user.has_perm("delivery.view_caught_mail"):
        viewer = {"title": _("送信メールの確認"), "link": reverse("mailcatcher:list")}
        send = next((group for group in groups if group["key"] == "send"), None)
        if send is None:
            groups.append({"key": "send", "title": SECTIONS[1][1], "items": [viewer]})
        else:
            send["items"].append(viewer)
    return groups


def site_header(request: HttpRequest) -> str:
    from merumaga.institute.services import sender_identity  # models: not at app loading

    return sender_identity().organisation_name


def stylesheet(request: HttpRequest) -> str:
    """Ours on top of the theme's: list columns, the dashboard, the report pages."""
    return static("merumaga/admin.css")
