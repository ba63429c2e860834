"""Is this process, and what it depends on, ready to serve? Read by /readyz, which operators
and load balancers poll every few seconds: each check is cheap, and the two that would not be
(the migration graph, a TCP connection to each relay) remember their answer for a while."""

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from merumaga.delivery.models import WorkerBeat
from merumaga.relays import all_relays

WORKER_SEEN_WITHIN = timedelta(minutes=1)
RELAY_ANSWER_KEPT = 30.0  # seconds a relay's reachability is remembered
RELAY_TIMEOUT = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str  # why not, or what was seen; never personal data
    ms: float


def _timed(name: str, probe: Callable[[], str]) -> Check:
    started = time.perf_counter()
    try:
        detail, ok = probe(), True
    except Exception as error:  # any failure of a dependency is its check's answer
        detail, ok = f"{type(error).__name__}: {error}"[:300], False
    return Check(name, ok, detail, round((time.perf_counter() - started) * 1000, 1))


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return connection.vendor


_migrated = False


def _migrations() -> str:
    """Unapplied migrations: the code is newer than the database (run `merumaga setup`). Once
    all are applied, they stay so for this process's life: the graph is not read again."""
    global _migrated
    if not _migrated:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            names = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan[:5])
            raise DatabaseError(f"{len(plan)} migrations not applied ({names}…)")
        _migrated = True
    return "applied"


def _task_queue() -> str:
    return f"{HUEY.pending_count()} tasks waiting"


def _worker() -> str:
    latest = WorkerBeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
    if latest is None:
        raise LookupError("no delivery worker has started (merumaga worker)")
    age = timezone.now() - latest
    if age > WORKER_SEEN_WITHIN:
        raise LookupError(f"no delivery worker seen for {int(age.total_seconds())} s")
    alive = WorkerBeat.objects.filter(seen_at__gte=timezone.now() - WORKER_SEEN_WITHIN).count()
    return f"{alive} alive"


_relay_answers: dict[str, tuple[float, str]] = {}


def _relays() -> str:
    """Each relay (the mail catcher when none is configured) accepts a TCP connection."""
    reached = []
    for relay in all_relays():
        kept = _relay_answers.get(relay.name)
        if kept is None or time.monotonic() - kept[0] > RELAY_ANSWER_KEPT:
            try:
                socket.create_connection((relay.host, relay.port), RELAY_TIMEOUT).close()
                answer = ""
            except OSError as error:
                answer = f"{relay.name}: {error.strerror or error}"
            kept = _relay_answers[relay.name] = (time.monotonic(), answer)
        if kept[1]:
            raise ConnectionError(kept[1])
        reached.append(relay.name)
    return ", ".join(reached)


CHECKS: list[tuple[str, Callable[[], str]]] = [
    ("database", _database),
    ("migrations", _migrations),
    ("task_queue", _task_queue),
    ("delivery_worker", _worker),
    ("mail_relay", _relays),
]


def readiness() -> list[Check]:
    """Every check; the database ones are skipped (failed) when the database is away."""
    results: list[Check] = []
    for name, probe in CHECKS:
        if name in ("migrations", "delivery_worker") and not results[0].ok:
            results.append(Check(name, False, "the database is not reachable", 0.0))
            continue
        results.append(_timed(name, probe))
    return results


def forget() -> None:
    """Tests: check again what is remembered."""
    global _migrated
    _migrated = False
    _relay_answers.clear()
