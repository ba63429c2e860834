"""Who is acting, for the audit log (the `team` app keeps it): set around a person's request or
command, read when a watched row changes. Also the signal for what a person does that changes
no watched row (an export, an import, a test send). Shared: no app is imported here."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.dispatch import Signal


@dataclass(frozen=True)
class Actor:
    user: Any  # the account (a User), or None for the command line
    via: str  # "admin", "cli", "api"


current_actor: ContextVar[Actor | None] = ContextVar("current_actor", default=None)

# Sent by the app where it happens: actor=Actor, action="subscribers.export", target=str,
# details=dict (no personal data). The audit log records it.
acted = Signal()


@contextmanager
def acting_as(user: Any, via: str) -> Iterator[None]:
    token = current_actor.set(Actor(user, via))
    try:
        yield
    finally:
        current_actor.reset(token)


def tell(action: str, target: str = "", **details: Any) -> None:
    """Record an act of the current person that changes no watched row (none: nothing)."""
    actor = current_actor.get()
    if actor is not None:
        acted.send(sender=None, actor=actor, action=action, target=target, details=details)
