"""The delivery queue in the database: snapshot an audience, claim batches, record results.

Hard SQL lives here, each statement explained where it stands. Every function is one short
transaction; none ever waits on SMTP.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from merumaga.delivery.models import Delivery
from merumaga.mailings import services as mailing_services
from merumaga.mailings.audience import deliverable
from merumaga.mailings.models import Mailing

TABLE = Delivery._meta.db_table
Status = Delivery.Status
# Rows a worker may take when their time has come: new, to be retried, or whose lease ran out.
CLAIMABLE = (Status.QUEUED, Status.DEFERRED, Status.SENDING)
# The reply of a row waiting for its domain's hold to end (delivery.services.hold_domain),
# before the domain.
HELD = "held: "
FINAL = (Status.SENT, Status.FAILED, Status.SKIPPED, Status.CANCELLED)


def snapshot(mailing: Mailing) -> int:
    """One Delivery row per reader, inserted by the database itself (INSERT … SELECT): no Python
    loop over readers, one statement whatever the audience. Returns how many rows it made.

    The audience query is Django's own (mailings.audience.deliverable), embedded as a subquery,
    so the snapshot and the count shown to the editor can never disagree.
    """
    select_sql, select_params = deliverable(mailing).values("id").query.sql_with_params()
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} "
            "(mailing_id, subscriber_id, status, available_at, attempts, worker, reply) "
            f"SELECT %s, audience.id, %s, %s, 0, '', '' FROM ({select_sql}) AS audience",
            [mailing.pk, Status.QUEUED, now, *select_params],
        )
        return cursor.rowcount


def freeze_audience(mailing: Mailing) -> bool:
    """Snapshot the audience once, whichever worker comes first (mailings.services marks the
    mailing and records the count; the rows are made here). True if this call did it."""
    return mailing_services.freeze_audience(mailing, snapshot)


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    subscriber_id: int
    attempts: int


def claim(mailing_id: int, worker: str, size: int, lease: timedelta) -> list[Claimed]:
    """Take up to `size` rows of a mailing for this worker, for `lease`.

    PostgreSQL: FOR UPDATE SKIP LOCKED lets any number of workers claim at once without waiting
    for each other or taking the same row. SQLite: every write transaction is IMMEDIATE (settings),
    so claims run one after another and the conditional UPDATE cannot hand a row out twice.
    Both return the rows they took (RETURNING: SQLite ≥ 3.35, PostgreSQL).
    The statuses are written into the SQL, not passed as parameters, so that both planners can
    see the query matches the partial index `claimable` (models.py).
    """
    now = timezone.now()
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    statuses = ", ".join(f"'{status}'" for status in CLAIMABLE)  # constants, not input
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET status = %s, available_at = %s, worker = %s, "
            "attempts = attempts + 1, updated_at = %s "
            f"WHERE id IN (SELECT id FROM {TABLE} WHERE mailing_id = %s "
            f"AND status IN ({statuses}) AND available_at <= %s "
            f"ORDER BY id LIMIT %s{lock}) "
            "RETURNING id, subscriber_id, attempts",
            [Status.SENDING, now + lease, worker, now, mailing_id, now, size],
        )
        rows = cursor.fetchall()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.delivery_id)


@dataclass(frozen=True)
class Result:
    delivery_id: int
    status: str  # sent, deferred, failed or skipped
    reply: str = ""
    retry_at: datetime | None = None
    stage: str = ""  # the SMTP command the reply answered (RCPT, DATA, MAIL, connect)
    relay: str = ""  # which relay answered


def record(results: list[Result], worker: str) -> None:
    """Write a batch's results: one UPDATE per (status, reply) group — relays answer most
    messages alike, so a batch of 500 costs a handful of statements, not 500.

    Only rows this worker still holds are written: if its lease ran out and another worker took
    a row, that worker's result stands. The worker's name stays on the row: who sent it.
    """
    groups: dict[tuple, list[int]] = {}
    for result in results:
        key = (result.status, result.reply[:300], result.retry_at)
        groups.setdefault(key, []).append(result.delivery_id)
    now = timezone.now()
    with transaction.atomic():
        for (status, reply, retry_at), ids in groups.items():
            Delivery.objects.filter(pk__in=ids, status=Status.SENDING, worker=worker).update(
                status=status, reply=reply, available_at=retry_at or now, updated_at=now
            )


def release(delivery_ids: list[int], worker: str) -> int:
    """Give back rows this worker claimed but did not send (its mailing was set aside): queued
    again at once, the attempt the claim counted taken back."""
    return Delivery.objects.filter(
        pk__in=delivery_ids, status=Status.SENDING, worker=worker
    ).update(
        status=Status.QUEUED,
        available_at=timezone.now(),
        attempts=F("attempts") - 1,
        updated_at=timezone.now(),
    )


def postpone(delivery_ids: list[int], worker: str, until: datetime, reply: str) -> int:
    """Give back rows this worker claimed for a domain it must not send to now: queued again
    for `until`, the attempt the claim counted taken back, `reply` saying why they wait."""
    return Delivery.objects.filter(
        pk__in=delivery_ids, status=Status.SENDING, worker=worker
    ).update(
        status=Status.QUEUED,
        available_at=until,
        attempts=F("attempts") - 1,
        reply=reply[:300],
        updated_at=timezone.now(),
    )


def cancel_remaining(mailing: Mailing) -> int:
    return Delivery.objects.filter(mailing=mailing, status__in=CLAIMABLE).update(
        status=Status.CANCELLED, updated_at=timezone.now()
    )


def counts(mailing_id: int) -> dict[str, int]:
    """Rows per status, for progress: one GROUP BY on the (mailing, status) index."""
    found = {status: 0 for status in Status.values}
    for row in (
        Delivery.objects.filter(mailing_id=mailing_id)
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        found[row["status"]] = row["n"]
    found["total"] = sum(found[s] for s in Status.values)
    return found


def is_done(mailing_id: int) -> bool:
    """No row left to send: one probe of the partial index (literals, as in claim)."""
    statuses = ", ".join(f"'{status}'" for status in CLAIMABLE)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {TABLE} WHERE mailing_id = %s AND status IN ({statuses}) LIMIT 1",
            [mailing_id],
        )
        return cursor.fetchone() is None
