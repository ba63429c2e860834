"""The figures of a mailing and of the readership, read from the apps before this one.

Read-only: each function is a handful of aggregate queries (GROUP BY on indexed columns), never
one per reader or per link.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import unquote

from django.db.models import Count, Q, QuerySet, Sum, Value
from django.db.models.functions import Lower, StrIndex, Substr, TruncDate, TruncHour
from django.utils import timezone

from merumaga.bounces.models import BounceEvent, InboundMessage, Kind
from merumaga.delivery import queue
from merumaga.delivery.models import Delivery
from merumaga.institute.services import records_clicks_per_reader
from merumaga.mailings.models import Click, Link, Mailing
from merumaga.providers import OTHERS, PROVIDERS, provider
from merumaga.subscribers.models import (
    ConsentRecord,
    Subscriber,
    Subscription,
    Topic,
    UnsubscribeReason,
)


@dataclass(frozen=True)
class LinkFigures:
    url: str
    article: str  # the article's title, for a weekly report's links to articles
    clicks: int
    clickers: int | None  # readers who clicked it; None when clicks are not kept per reader

    @property
    def readable_url(self) -> str:
        """The URL as a person reads it: percent-encoded Japanese shown as Japanese."""
        return unquote(self.url)


@dataclass(frozen=True)
class MailingFigures:
    audience: int  # readers it was for (the snapshot)
    sent: int
    deferred: int  # waiting to be tried again
    failed: int
    hard_bounces: int
    soft_bounces: int
    complaints: int
    unsubscribes: int  # from this mailing's links and List-Unsubscribe
    clicks: int
    unique_clickers: int | None  # None when clicks are not kept per reader
    links: list[LinkFigures]

    def rate(self, count: int | None) -> float | None:
        """`count` as a share of the mails sent (None when nothing was sent or it is unknown)."""
        return count / self.sent if self.sent and count is not None else None

    def as_pairs(self) -> list[tuple[str, int | None]]:
        return [
            ("audience", self.audience),
            ("sent", self.sent),
            ("deferred", self.deferred),
            ("failed", self.failed),
            ("hard_bounces", self.hard_bounces),
            ("soft_bounces", self.soft_bounces),
            ("complaints", self.complaints),
            ("unsubscribes", self.unsubscribes),
            ("clicks", self.clicks),
            ("unique_clickers", self.unique_clickers),
        ]


def mailing_figures(mailing: Mailing, *, exact: bool = True) -> MailingFigures:
    """The mailing's figures. `exact` counts its delivery rows by status (one GROUP BY over the
    mailing's rows: fine for one report); otherwise the counters the worker keeps on the
    mailing are used (no row read: for the first page's list), and `deferred` is 0."""
    if exact:
        counts = queue.counts(mailing.pk)
    else:
        counts = {"total": mailing.recipients, "sent": mailing.sent, "deferred": 0}
        counts["failed"] = mailing.failed
    bounces = dict(
        BounceEvent.objects.filter(mailing=mailing, kind__in=[Kind.HARD, Kind.SOFT, Kind.COMPLAINT])
        .values_list("kind")
        .annotate(n=Count("id"))
        .order_by()
    )
    unsubscribes = ConsentRecord.objects.filter(
        mailing_id=mailing.pk, action=ConsentRecord.Action.UNSUBSCRIBE
    ).count()
    links = _link_figures(mailing)
    clicks = sum(link.clicks for link in links)
    per_reader = Click.objects.filter(link__mailing=mailing, subscriber__isnull=False)
    unique: int | None = None
    if per_reader.exists():
        unique = per_reader.values("subscriber").distinct().count()
    elif records_clicks_per_reader():
        unique = 0  # kept per reader, and nobody has clicked yet
    return MailingFigures(
        audience=counts["total"] or mailing.recipients,
        sent=counts["sent"],
        deferred=counts["deferred"],
        failed=counts["failed"],
        hard_bounces=bounces.get(Kind.HARD, 0),
        soft_bounces=bounces.get(Kind.SOFT, 0),
        complaints=bounces.get(Kind.COMPLAINT, 0),
        unsubscribes=unsubscribes,
        clicks=clicks,
        unique_clickers=unique,
        links=links,
    )


def _link_figures(mailing: Mailing) -> list[LinkFigures]:
    rows = (
        Link.objects.filter(mailing=mailing)
        .annotate(
            total=Count("clicks"),
            readers=Count("clicks__subscriber", distinct=True),
            named=Count("clicks", filter=Q(clicks__subscriber__isnull=False)),
        )
        .select_related("article")
        .order_by("position")
    )
    return [
        LinkFigures(
            url=link.url,
            article=link.article.title if link.article else "",
            clicks=link.total,
            clickers=link.readers if link.named else None,
        )
        for link in rows
    ]


@dataclass(frozen=True)
class TopicFigures:
    key: str
    name: str
    readers: int  # confirmed readers receiving it now
    joined: int  # subscribed to it in the period
    left: int  # unsubscribed from it in the period


def reader_figures(now: datetime | None = None, days: int = 30) -> list[TopicFigures]:
    """Per mailing topic: readers now, and who joined and left in the last `days` days."""
    since = (now or timezone.now()) - timedelta(days=days)
    subscribed = Subscription.objects.filter(
        subscribed=True, subscriber__status=Subscriber.Status.CONFIRMED
    )
    readers = dict(subscribed.values_list("topic").annotate(n=Count("id")).order_by())
    joined = dict(
        subscribed.filter(changed_at__gte=since)
        .values_list("topic")
        .annotate(n=Count("id"))
        .order_by()
    )
    left = dict(
        Subscription.objects.filter(subscribed=False, changed_at__gte=since)
        .values_list("topic")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [
        TopicFigures(
            topic.key,
            str(topic.name),
            readers.get(topic.pk, 0),
            joined.get(topic.pk, 0),
            left.get(topic.pk, 0),
        )
        for topic in Topic.objects.order_by("position")
    ]


@dataclass(frozen=True)
class ReaderDay:
    day: date
    readers: int  # confirmed readers at the end of the day
    joined: int  # confirmed that day (of a topic: chose it that day)
    left: int  # unsubscribed from everything or erased that day (of a topic: left it)


def reader_series(now: datetime | None = None, days: int = 90) -> list[ReaderDay]:
    """Confirmed readers per day (Japan time) over the last `days` days, counted back from
    today's total: two GROUP BY queries, whatever the number of readers."""
    today = timezone.localdate(now or timezone.now())
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=timezone.get_current_timezone())
    readers = Subscriber.objects.filter(status=Subscriber.Status.CONFIRMED).count()
    joined = _per_day(Subscriber.objects.filter(confirmed_at__gte=since), "confirmed_at")
    left = _per_day(
        Subscriber.objects.filter(unsubscribed_at__gte=since, confirmed_at__isnull=False),
        "unsubscribed_at",
    )
    # Erasure counts as leaving only for a confirmed reader who had not left already (it does
    # not clear unsubscribed_at, which counted them then).
    erased = _per_day(
        Subscriber.objects.filter(
            erased_at__gte=since, confirmed_at__isnull=False, unsubscribed_at__isnull=True
        ),
        "erased_at",
    )
    series: list[ReaderDay] = []
    for offset in range(days):
        day = today - timedelta(days=offset)
        gone = left.get(day, 0) + erased.get(day, 0)
        series.append(ReaderDay(day, readers, joined.get(day, 0), gone))
        readers = readers - joined.get(day, 0) + gone
    return series[::-1]


# Consent records hold the reader's topics after each act. A sign-up through the form (or by
# mail) leaves the reader pending, and their confirmation counts; a reader imported, added in
# the admin or loaded as demo data is confirmed at once.
_SETS_TOPICS = {
    ConsentRecord.Action.CONFIRM,
    ConsentRecord.Action.CHANGE,
    ConsentRecord.Action.UNSUBSCRIBE,
}
_CONFIRMED_ON_SIGN_UP = {
    ConsentRecord.Source.IMPORT,
    ConsentRecord.Source.ADMIN,
    ConsentRecord.Source.DEMO,
}


def _reads_topic(was: bool, action: str, source: str, topics: list[str], key: str) -> bool:
    if action == ConsentRecord.Action.ERASE:
        return False
    if action == ConsentRecord.Action.UNSUBSCRIBE:  # what is left: it only ever takes away
        return was and key in topics
    if action in _SETS_TOPICS or (
        action == ConsentRecord.Action.SUBSCRIBE and source in _CONFIRMED_ON_SIGN_UP
    ):
        return key in topics
    return was


def topic_series(key: str, now: datetime | None = None, days: int = 90) -> list[ReaderDay]:
    """Readers of one topic per day (Japan time) over the last `days` days: today's count, and
    before it the joins and leaves the consent records show (every change of a reader's topics
    writes one). Reads the whole record history of the readers who acted in the window, in
    chunks of 2,000 readers: the cost follows the window's activity, not the list's size."""
    tokyo = timezone.get_current_timezone()
    today = timezone.localdate(now or timezone.now())
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=tokyo)
    readers = Subscription.objects.filter(
        topic__key=key, subscribed=True, subscriber__status=Subscriber.Status.CONFIRMED
    ).count()
    active = list(
        ConsentRecord.objects.filter(created_at__gte=since)
        .order_by("subscriber_id")
        .values_list("subscriber_id", flat=True)
        .distinct()
    )
    joined: Counter[date] = Counter()
    left: Counter[date] = Counter()
    for start in range(0, len(active), 2000):
        history = (
            ConsentRecord.objects.filter(subscriber_id__in=active[start : start + 2000])
            .order_by("subscriber_id", "created_at", "id")
            .values_list("subscriber_id", "action", "source", "topics", "created_at")
        )
        reader, reads = None, False
        for subscriber_id, action, source, topics, at in history.iterator(chunk_size=5000):
            if subscriber_id != reader:
                reader, reads = subscriber_id, False
            now_reads = _reads_topic(reads, action, source, topics, key)
            if at >= since and now_reads != reads:
                (joined if now_reads else left)[at.astimezone(tokyo).date()] += 1
            reads = now_reads
    series: list[ReaderDay] = []
    for offset in range(days):
        day = today - timedelta(days=offset)
        series.append(ReaderDay(day, readers, joined[day], left[day]))
        readers = readers - joined[day] + left[day]
    return series[::-1]


def _per_day(rows: QuerySet[Subscriber], field: str) -> dict[date, int]:
    return dict(
        rows.annotate(day=TruncDate(field, tzinfo=timezone.get_current_timezone()))
        .values_list("day")
        .annotate(n=Count("id"))
        .order_by()
    )


@dataclass(frozen=True)
class Deliverability:
    sent: int
    hard_bounces: int
    soft_bounces: int
    complaints: int

    def rate(self, count: int) -> float | None:
        return count / self.sent if self.sent else None


COMPLAINT_WARNING = 0.001  # Gmail's and Yahoo's guidance: stay under 0.1 %
COMPLAINT_LIMIT = 0.003  # and never reach 0.3 %


def deliverability(now: datetime | None = None, days: int = 7) -> Deliverability:
    """Mails sent by the mailings started in the last `days` days, and the bounces and
    complaints recorded in that time."""
    since = (now or timezone.now()) - timedelta(days=days)
    sent = Mailing.objects.filter(started_at__gte=since).aggregate(n=Sum("sent"))["n"] or 0
    kinds = dict(
        BounceEvent.objects.filter(
            created_at__gte=since, kind__in=[Kind.HARD, Kind.SOFT, Kind.COMPLAINT]
        )
        .values_list("kind")
        .annotate(n=Count("id"))
        .order_by()
    )
    return Deliverability(
        sent, kinds.get(Kind.HARD, 0), kinds.get(Kind.SOFT, 0), kinds.get(Kind.COMPLAINT, 0)
    )


@dataclass(frozen=True)
class Attention:
    paused: list[Mailing]
    weekly_drafts: list[Mailing]
    quarantined: int


def attention() -> Attention:
    """What an editor or operator should look at now."""
    return Attention(
        paused=list(Mailing.objects.filter(status=Mailing.Status.PAUSED).order_by("-id")[:10]),
        weekly_drafts=list(
            Mailing.objects.filter(kind=Mailing.Kind.WEEKLY, status=Mailing.Status.DRAFT).order_by(
                "-id"
            )[:3]
        ),
        quarantined=InboundMessage.objects.filter(kind=Kind.QUARANTINED).count(),
    )


def recent_mailings(count: int = 5) -> list[tuple[Mailing, MailingFigures]]:
    gone_out = Mailing.objects.filter(
        status__in=[Mailing.Status.SENDING, Mailing.Status.PAUSED, Mailing.Status.SENT]
    ).order_by("-started_at", "-id")[:count]
    return [(mailing, mailing_figures(mailing, exact=False)) for mailing in gone_out]


# Mailbox providers readers are grouped by: their shares differ, and each has its own filters.
@dataclass
class ProviderFigures:
    name: str
    sent: int = 0
    failed: int = 0
    hard_bounces: int = 0
    complaints: int = 0
    clicks: int | None = None  # only when clicks are kept per reader


def provider_figures(mailing: Mailing) -> list[ProviderFigures]:
    """The mailing's outcome per mailbox provider (Gmail, Yahoo, …, others). The recipients'
    domains are grouped in the database: one row per domain, not per reader."""
    domain = Lower(Substr("subscriber__email", StrIndex("subscriber__email", Value("@")) + 1))
    groups = {name: ProviderFigures(name) for name in [*PROVIDERS, OTHERS]}
    rows = (
        Delivery.objects.filter(
            mailing=mailing, status__in=[Delivery.Status.SENT, Delivery.Status.FAILED]
        )
        .annotate(domain=domain)
        .values_list("domain", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for name, status, count in rows:
        group = groups[provider(name or "")]
        if status == Delivery.Status.SENT:
            group.sent += count
        else:
            group.failed += count
    events = (
        BounceEvent.objects.filter(mailing=mailing, kind__in=[Kind.HARD, Kind.COMPLAINT])
        .values_list("domain", "kind")
        .annotate(n=Count("id"))
        .order_by()
    )
    for name, kind, count in events:
        group = groups[provider(name)]
        if kind == Kind.HARD:
            group.hard_bounces += count
        else:
            group.complaints += count
    clicks = (
        Click.objects.filter(link__mailing=mailing, subscriber__isnull=False)
        .annotate(domain=domain)
        .values_list("domain")
        .annotate(n=Count("id"))
        .order_by()
    )
    for name, count in clicks:
        group = groups[provider(name or "")]
        group.clicks = (group.clicks or 0) + count
    return [group for group in groups.values() if group.sent or group.failed]


@dataclass(frozen=True)
class Hour:
    start: datetime
    sent: int
    clicks: int


def first_hours(mailing: Mailing, hours: int = 72) -> list[Hour]:
    """Mails taken by the relays and clicks, per hour from the start of sending, for `hours`
    hours (both grouped by hour in the database)."""
    if mailing.started_at is None:
        return []
    start = mailing.started_at.replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(hours=hours)
    sent = dict(
        Delivery.objects.filter(
            mailing=mailing, status=Delivery.Status.SENT, updated_at__gte=start, updated_at__lt=end
        )
        .annotate(hour=TruncHour("updated_at"))
        .values_list("hour")
        .annotate(n=Count("id"))
        .order_by()
    )
    clicked = dict(
        Click.objects.filter(link__mailing=mailing, at__gte=start, at__lt=end)
        .annotate(hour=TruncHour("at"))
        .values_list("hour")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [
        Hour(hour, sent.get(hour, 0), clicked.get(hour, 0))
        for hour in (start + timedelta(hours=n) for n in range(hours))
    ]


def unsubscribe_reasons(now: datetime | None = None, days: int = 30) -> list[tuple[str, list[int]]]:
    """The answers to "why?" after unsubscribing in the last `days` days: per reason label, the
    count per topic in the order of `reason_topics()` (the last column: "all")."""
    since = timezone.localdate(now or timezone.now()) - timedelta(days=days - 1)
    counts = dict(
        ((topic, reason), n)
        for topic, reason, n in UnsubscribeReason.objects.filter(answered_on__gte=since)
        .values_list("topic", "reason")
        .annotate(n=Count("id"))
        .order_by()
    )
    topics = [*Topic.objects.order_by("position").values_list("pk", flat=True), None]
    return [
        (str(label), [counts.get((topic, value), 0) for topic in topics])
        for value, label in UnsubscribeReason.Reason.choices
    ]


def reason_topics() -> list[str]:
    return [str(topic.name) for topic in Topic.objects.order_by("position")]
