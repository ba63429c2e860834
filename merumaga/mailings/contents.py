"""What a mailing carries, read from the published content; nothing here changes anything.

Read by the services (composing), the checks and the rendering alike.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from merumaga.mailings.models import Mailing
from merumaga.publishing.models import Article, Event, Report, Status, Tag
from merumaga.publishing.related import related_to_each

# Only the first weekly report looks back this far; later ones take everything not yet sent.
FIRST_WEEKLY_LOOKBACK = timedelta(days=7)
UPCOMING_EVENTS_WINDOW = timedelta(days=45)


def weekly_gone_out() -> QuerySet[Mailing]:
    return Mailing.objects.filter(kind=Mailing.Kind.WEEKLY).filter(
        Q(status__in=(Mailing.Status.SENDING, Mailing.Status.PAUSED, Mailing.Status.SENT))
        | Q(status=Mailing.Status.CANCELLED, audience_frozen_at__isnull=False)
    )


def weekly_extras(mailing: Mailing) -> dict:
    """The reports and events a weekly report lists after its articles."""
    until = mailing.covers_until or timezone.now()
    previous = (
        weekly_gone_out()
        .filter(covers_until__lt=until)
        .order_by("-covers_until")
        .values_list("covers_until", flat=True)
        .first()
    ) or until - FIRST_WEEKLY_LOOKBACK
    return {
        "reports": list(
            Report.objects.published().filter(published_at__gt=previous, published_at__lte=until)
        ),
        "events": list(
            Event.objects.filter(
                status=Event.EventStatus.PUBLISHED,
                starts_at__gt=until,
                starts_at__lte=until + UPCOMING_EVENTS_WINDOW,
            ).order_by("starts_at")
        ),
    }


RELATED_PER_ARTICLE = 2


def weekly_tags(mailing: Mailing) -> frozenset[int]:
    """The tags of a weekly report's articles (none for other mailings): the research fields by
    which readers' copies may differ."""
    if mailing.kind != Mailing.Kind.WEEKLY:
        return frozenset()
    return frozenset(
        Tag.objects.filter(articles__in=mailing.articles.all()).values_list("pk", flat=True)
    )


@dataclass
class WeeklyItem:
    article: Article
    number: int  # 【1】… in the text, #a1 in the HTML: the same in the 目次 and the body
    related: list[Article] = field(default_factory=list)


@dataclass
class WeeklySection:
    title: str  # "" when the report is one list
    items: list[WeeklyItem]


def _related(mailing: Mailing, articles: list[Article]) -> dict[int, list[Article]]:
    """Related articles, computed once per Mailing object: a worker compiles one body per group
    of readers from the same object, and the related articles are the same for every group
    (500 candidates weighed: tens of ms)."""
    key = tuple(article.pk for article in articles)
    cached = getattr(mailing, "_weekly_related", None)
    if cached is None or cached[0] != key:
        cached = (key, related_to_each(articles, RELATED_PER_ARTICLE))
        mailing._weekly_related = cached  # type: ignore[attr-defined]
    return cached[1]


def weekly_sections(
    mailing: Mailing, interests: frozenset[int] = frozenset()
) -> list[WeeklySection]:
    """The weekly report's articles as the reader sees them: in the editor's order, or grouped
    by each article's first tag; the articles with a tag in `interests` (the reader's research
    fields) first. Two queries, three with related articles."""
    articles = list(mailing.articles.order_by("mailingarticle__position").prefetch_related("tags"))

    def favoured(article: Article) -> bool:
        return any(tag.pk in interests for tag in article.tags.all())

    if mailing.grouping == Mailing.Grouping.TAG:
        groups: dict[Tag | None, list[Article]] = {}
        for article in articles:
            tags = sorted(article.tags.all(), key=lambda tag: (tag.pk not in interests, tag.name))
            groups.setdefault(tags[0] if tags else None, []).append(article)
        order = sorted(
            groups, key=lambda tag: (tag is None, tag is None or tag.pk not in interests)
        )
        grouped = [(tag.name if tag else _("その他"), groups[tag]) for tag in order]
    elif interests and any(favoured(article) for article in articles):
        grouped = [
            (_("関心分野の記事"), [a for a in articles if favoured(a)]),
            (_("そのほかの記事"), [a for a in articles if not favoured(a)]),
        ]
    else:
        grouped = [("", articles)]
    related = _related(mailing, articles) if mailing.show_related else {}
    sections, number = [], 0
    for title, members in grouped:
        items = []
        for article in members:
            number += 1
            items.append(WeeklyItem(article, number, related.get(article.pk, [])))
        if items:
            sections.append(WeeklySection(title, items))
    return sections


def publishing_status_ok(mailing: Mailing) -> bool:
    """What a mailing announces is still published (an article taken back must not go out)."""
    for item in (mailing.article, mailing.report):
        if item is not None and item.status != Status.PUBLISHED:
            return False
    return True
