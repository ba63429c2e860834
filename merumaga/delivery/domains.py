"""What is known about receiving domains now: which are held, how fast each is sent to.

Read-only, for the worker, the progress page, `mailing status` and the admin's banner.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Sum
from django.utils import timezone

from merumaga.delivery import queue
from merumaga.delivery.models import Delivery, DomainHold, DomainPace

# A worker writes its paces every few seconds while it sends; older rows are workers gone.
PACE_FRESH = timedelta(minutes=2)


def active_holds() -> dict[str, DomainHold]:
    """Held domains → their hold: one query on a table of a handful of rows."""
    return {hold.domain: hold for hold in DomainHold.objects.filter(lifted_at__isnull=True)}


def waiting_for_holds(mailing_id: int) -> dict[str, int]:
    """Rows of a mailing waiting for their domain's hold to end, per domain."""
    rows = (
        Delivery.objects.filter(
            mailing_id=mailing_id, status__in=queue.CLAIMABLE, reply__startswith=queue.HELD
        )
        .values("reply")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["reply"].removeprefix(queue.HELD): row["n"] for row in rows}


@dataclass(frozen=True)
class DomainRate:
    domain: str
    rate: float | None  # messages per second, all workers together; None: not limited
    ceiling: float | None
    throttles: int

    @property
    def slowed(self) -> bool:
        return self.rate is not None and self.ceiling is not None and self.rate < self.ceiling


def current_paces() -> list[DomainRate]:
    """The paced domains, summed over the workers sending now (each paces its own share)."""
    rows = (
        DomainPace.objects.filter(updated_at__gte=timezone.now() - PACE_FRESH)
        .values("domain")
        .annotate(rate=Sum("rate"), ceiling=Sum("ceiling"), throttles=Sum("throttles"))
        .order_by("domain")
    )
    return [DomainRate(r["domain"], r["rate"], r["ceiling"], r["throttles"] or 0) for r in rows]
