"""Bounce and complaint rates per mailing and per recipient domain, and the refusals that are
ours per relay, for the admin.

Mailbox providers judge a sender by these: Gmail's guidelines ask for a spam-complaint rate below
0.1% and never at 0.3%; a hard-bounce rate above about 2% says the list is not kept clean.
Each rate counts readers (distinct addresses), not messages, over mails actually sent.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, F, Value
from django.db.models.functions import StrIndex, Substr
from django.utils import timezone

from merumaga import reasons
from merumaga.bounces.models import BounceEvent, Kind
from merumaga.delivery.models import Delivery
from merumaga.mailings.models import Mailing

COMPLAINT_WARNING = 0.0008  # nearing Gmail's 0.1%
COMPLAINT_LIMIT = 0.001
BOUNCE_WARNING = 0.02
DOMAIN_WINDOW = timedelta(days=30)


@dataclass
class Rates:
    label: str
    sent: int
    hard: int = 0
    soft: int = 0
    complaints: int = 0
    mailing: Mailing | None = None

    @property
    def hard_rate(self) -> float:
        return self.hard / self.sent if self.sent else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sent if self.sent else 0.0

    @property
    def hard_percent(self) -> str:
        return f"{self.hard_rate:.2%}"

    @property
    def complaint_percent(self) -> str:
        return f"{self.complaint_rate:.3%}"

    @property
    def level(self) -> str:
        """ "danger", "warning" or "" for the row's colour and the admin's notice."""
        if self.complaint_rate >= COMPLAINT_LIMIT:
            return "danger"
        if self.complaint_rate >= COMPLAINT_WARNING or self.hard_rate >= BOUNCE_WARNING:
            return "warning"
        return ""


_COUNTED = {Kind.HARD: "hard", Kind.SOFT: "soft", Kind.COMPLAINT: "complaints"}
_ACTED = (
    BounceEvent.Outcome.SUPPRESSED,
    BounceEvent.Outcome.SCORED,
    BounceEvent.Outcome.ALREADY_SUPPRESSED,
)


def _add_events(rows: dict, events, key: str) -> None:
    """Distinct readers per (key, kind): one GROUP BY query."""
    for row in (
        # Acted on only: unverified claims and unknown addresses are what anyone could mail us.
        events.filter(kind__in=list(_COUNTED), outcome__in=_ACTED)
        .values(key, "kind")
        .annotate(n=Count("address_hash", distinct=True))
        .order_by()
    ):
        if row[key] in rows:
            setattr(rows[row[key]], _COUNTED[row["kind"]], row["n"])


def per_mailing(limit: int = 30) -> list[Rates]:
    """The latest mailings that sent anything: three queries whatever the limit."""
    mailings = list(
        Mailing.objects.filter(started_at__isnull=False).order_by("-started_at", "-id")[:limit]
    )
    sent = dict(
        Delivery.objects.filter(mailing__in=mailings, status=Delivery.Status.SENT)
        .values_list("mailing")
        .annotate(n=Count("id"))
        .order_by()
    )
    rows = {m.pk: Rates(label=m.subject, sent=sent.get(m.pk, 0), mailing=m) for m in mailings}
    _add_events(rows, BounceEvent.objects.filter(mailing__in=mailings), "mailing")
    return list(rows.values())


def per_domain(limit: int = 30) -> list[Rates]:
    """The domains that received most in the last 30 days, by the address's part after "@"."""
    since = timezone.now() - DOMAIN_WINDOW
    email = F("subscriber__email")
    sent = (
        Delivery.objects.filter(status=Delivery.Status.SENT, updated_at__gte=since)
        .annotate(domain=Substr(email, StrIndex(email, Value("@")) + 1))
        .values_list("domain")
        .annotate(n=Count("id"))
        .order_by("-n")[:limit]
    )
    rows = {domain: Rates(label=domain, sent=n) for domain, n in sent if domain}
    _add_events(
        rows, BounceEvent.objects.filter(created_at__gte=since, domain__in=list(rows)), "domain"
    )
    return sorted(rows.values(), key=lambda r: (-r.complaint_rate, -r.hard_rate, -r.sent))


RELAY_WINDOW = timedelta(hours=24)


@dataclass
class RelayRefusals:
    relay: str
    readers: int  # distinct readers refused for a reason of ours
    by_reason: list[tuple[str, int]]  # (label, readers), most first


def ours_per_relay() -> list[RelayRefusals]:
    """The refusals that are ours (kind `sender`) in the last 24 hours, per relay that got them:
    a relay whose IP is listed shows them at every domain. Two GROUP BY queries."""
    events = BounceEvent.objects.filter(
        kind=Kind.SENDER, created_at__gte=timezone.now() - RELAY_WINDOW
    ).exclude(relay="")
    rows = {
        relay: RelayRefusals(relay, n, [])
        for relay, n in events.values_list("relay")
        .annotate(n=Count("address_hash", distinct=True))
        .order_by()
    }
    for relay, reason, n in (
        events.values_list("relay", "reason")
        .annotate(n=Count("address_hash", distinct=True))
        .order_by("relay", "-n")
    ):
        label = reasons.REASONS[reason].label if reason in reasons.REASONS else reason
        rows[relay].by_reason.append((str(label), n))
    return sorted(rows.values(), key=lambda row: -row.readers)
