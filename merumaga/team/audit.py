"""The audit log's writing: every change a person makes to a watched row, and every act they
report (merumaga.audit.tell), while merumaga.audit.current_actor names them.

Rows the platform changes by itself (the delivery worker, bounce processing) have no actor and
are not logged here: their own records say what happened (deliveries, bounce events,
suppression changes). A handler costs one context-variable read when nobody is acting, and one
query for the row's previous values when somebody is.
"""

import getpass
from datetime import date, datetime
from typing import Any

from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.utils import timezone

from merumaga.audit import Actor, acted, current_actor
from merumaga.team.models import AuditEntry

WATCHED = {
    "publishing.Article",
    "publishing.Report",
    "publishing.Event",
    "publishing.Tag",
    "mailings.Mailing",
    "subscribers.Subscriber",
    "subscribers.Subscription",
    "subscribers.Topic",
    "subscribers.Suppression",
    "institute.SiteSettings",
    "delivery.DomainHold",
    "bounces.InboundMessage",
    "api.ApiToken",
    "auth.User",
    "auth.Group",
    "hooks.Endpoint",
}

# Shown as changed, never by value: the log must not become a copy of personal data or keys.
PERSONAL = {
    "email",
    "name",
    "organisation",
    "pending_email",
    "first_name",
    "last_name",
    "password",
    "nonce",
    "address_hash",
    "ip_address",
    "user_agent",
    "secret",  # a webhook's signing key: a credential
    "digest",  # an API token's hash: a credential
}
HIDDEN = "(…)"

# What a row is called in the log: its own name unless that is personal data.
NAMED_BY_ID = {"subscribers.Subscriber", "subscribers.Subscription", "subscribers.Suppression"}


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S}"
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


def _fields(instance: Model, update_fields=None) -> list[str]:
    """The row's columns (attname: a foreign key as its id), or those a save names."""
    return [
        field.attname
        for field in instance._meta.concrete_fields
        if not update_fields or field.name in update_fields
    ]


def _name(instance: Model) -> str:
    if instance._meta.label in NAMED_BY_ID:
        return f"{instance._meta.verbose_name} #{instance.pk}"
    return str(instance)[:200]


def _write(actor: Actor, action: str, instance: Model | None, changes: dict, repr_: str = ""):
    user = actor.user if getattr(actor.user, "pk", None) else None
    AuditEntry.objects.create(
        user=user,
        username=user.get_username() if user else f"{actor.via}:{getpass.getuser()}",
        via=actor.via,
        action=action,
        object_type=instance._meta.label if instance is not None else "",
        object_id=str(instance.pk) if instance is not None else "",
        object_repr=repr_ or (_name(instance) if instance is not None else ""),
        changes=changes,
    )


def _diff(before: dict, instance: Model, fields: list[str]) -> dict:
    changes = {}
    for name in fields:
        old, new = _value(before.get(name)), _value(getattr(instance, name))
        if old != new:
            changes[name] = [HIDDEN, HIDDEN] if name.removesuffix("_id") in PERSONAL else [old, new]
    return changes


def remember_before(sender, instance: Model, **kwargs) -> None:
    if current_actor.get() is None or sender._meta.label not in WATCHED or instance.pk is None:
        return
    before = sender._default_manager.filter(pk=instance.pk).values(*_fields(instance)).first()
    instance._audit_before = before  # type: ignore[attr-defined]  # read back by record_save


def record_save(sender, instance: Model, created: bool, update_fields=None, **kwargs) -> None:
    actor = current_actor.get()
    if actor is None or sender._meta.label not in WATCHED:
        return
    fields = _fields(instance, update_fields)
    before = {} if created else (getattr(instance, "_audit_before", None) or {})
    changes = _diff(before, instance, fields)
    if changes or created:
        _write(
            actor, f"{sender._meta.label}.{'create' if created else 'change'}", instance, changes
        )


def record_delete(sender, instance: Model, **kwargs) -> None:
    actor = current_actor.get()
    if actor is not None and sender._meta.label in WATCHED:
        _write(actor, f"{sender._meta.label}.delete", instance, {})


def record_membership(sender, instance: Model, action: str, pk_set=None, model=None, **kwargs):
    """An account's roles and permissions, a role's permissions: who was added or taken away."""
    actor = current_actor.get()
    if actor is None or not action.startswith("post_") or instance._meta.label not in WATCHED:
        return
    field = next(
        (f.name for f in instance._meta.many_to_many if f.remote_field.through is sender), "?"
    )
    names = sorted(str(row) for row in model._default_manager.filter(pk__in=pk_set or []))
    sign = {"post_add": "+", "post_remove": "-", "post_clear": "-"}[action]
    changes = {field: [f"{sign}{name}" for name in names] or [f"{sign}(all)"]}
    _write(actor, f"{instance._meta.label}.{field}", instance, changes)


def record_act(sender, actor: Actor, action: str, target: str, details: dict, **kwargs) -> None:
    _write(actor, action, None, details, repr_=target[:200])


def connect() -> None:
    pre_save.connect(remember_before, dispatch_uid="audit-before")
    post_save.connect(record_save, dispatch_uid="audit-save")
    post_delete.connect(record_delete, dispatch_uid="audit-delete")
    m2m_changed.connect(record_membership, dispatch_uid="audit-membership")
    acted.connect(record_act, dispatch_uid="audit-act")
