"""The built-in roles: groups of permissions, an account may hold several (README: Roles).

Kept as data here and applied by a migration and by `merumaga setup`, so that a role changed in
a later version reaches existing installations; a permission added to a role in the admin by
hand is taken away again at the next setup (the roles are the platform's; make a new group for
a local variation)."""

from django.apps import apps as installed_apps
from django.apps.registry import Apps

WRITER = "執筆"
SENDER = "承認・配信"
ANALYST = "分析"
OPERATOR = "運用"
ADMINISTRATOR = "管理者"

_CONTENT = ("article", "report", "event", "tag")

# Each role's permissions as "app_label.codename"; the administrator holds every permission.
ROLES: dict[str, list[str]] = {
    WRITER: [
        *(f"publishing.{verb}_{model}" for model in _CONTENT for verb in ("add", "change", "view")),
        "publishing.view_archivedmailing",
        "subscribers.view_topic",
    ],
    SENDER: [
        "mailings.add_mailing",
        "mailings.change_mailing",
        "mailings.view_mailing",
        "mailings.send_mailing",
        "mailings.test_send_mailing",
        "mailings.approve_mailing",
        *(f"publishing.view_{model}" for model in _CONTENT),
        "publishing.view_archivedmailing",
        "subscribers.view_topic",
        "delivery.view_domainhold",
        "outcomes.view_mailingreport",
    ],
    ANALYST: [
        "outcomes.view_mailingreport",
        "mailings.view_mailing",
        "publishing.view_archivedmailing",
        "subscribers.view_topic",
    ],
    OPERATOR: [
        "institute.view_sitesettings",
        "institute.change_sitesettings",
        "delivery.view_domainhold",
        "delivery.add_domainhold",
        "delivery.change_domainhold",
        "delivery.view_caught_mail",
        "bounces.view_bounceevent",
        "bounces.view_inboundmessage",
        "bounces.change_inboundmessage",
        "bounces.view_suppressionchange",
        "subscribers.view_suppression",
        "subscribers.add_suppression",
        "subscribers.lift_suppression",
        "subscribers.view_subscriber",
        # Readers' requests by hand or through the API (readers:write): their settings, a
        # reader added with consent held elsewhere, an erasure.
        "subscribers.add_subscriber",
        "subscribers.change_subscriber",
        "subscribers.delete_subscriber",
        "subscribers.view_consentrecord",
        "subscribers.view_topic",
        "mailings.view_mailing",
        "hooks.add_endpoint",
        "hooks.change_endpoint",
        "hooks.view_endpoint",
        "hooks.view_webhookdelivery",
    ],
    ADMINISTRATOR: [],
}


def sync_roles(apps: Apps = installed_apps, missing_ok: bool = False) -> None:
    """Create or update the role groups with exactly their permissions (idempotent). Takes the
    app registry so that a migration can run it on its historical models; there, a permission
    a later migration brings is not there yet (missing_ok), and `merumaga setup` adds it."""
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    everything = list(permission_model.objects.select_related("content_type"))
    by_name = {f"{p.content_type.app_label}.{p.codename}": p for p in everything}
    for role, names in ROLES.items():
        missing = [name for name in names if name not in by_name]
        if missing and not missing_ok:
            raise LookupError(f"role {role}: no such permission {', '.join(missing)}")
        group, _created = group_model.objects.get_or_create(name=role)
        held = everything if role == ADMINISTRATOR else [by_name[n] for n in names if n in by_name]
        group.permissions.set(held)
