"""Publishing state changes: each editor action on content goes through one function here."""

import logging
from collections.abc import Collection
from datetime import datetime
from typing import TypeVar

from django.db import models, transaction
from django.db.models import Q, QuerySet
from django.dispatch import Signal
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from merumaga.publishing import caching, markdown, rsvp, signals
from merumaga.publishing.models import (
    Article,
    Event,
    ReaderInterest,
    Report,
    Status,
    Tag,
)
from merumaga.subscribers.services import field_max_length

logger = logging.getLogger(__name__)

# What publish_article and publish_report publish (Status); events have their own states.
_Item = TypeVar("_Item", Article, Report)
# What is scheduled and published by publish_due.
_Scheduled = TypeVar("_Scheduled", Article, Report, Event)


class PublishingError(ValueError):
    """An editor action that cannot be done; the message says why, for the editor."""


def unique_slug(
    model: type[Tag] | type[Article] | type[Event] | type[Report],
    title: str,
    current_pk: int | None = None,
    fallback: str = "item",
) -> str:
    """A readable slug from the title (Japanese kept), made unique with -2, -3, …"""
    max_length = field_max_length(model, "slug") - 4
    base = slugify(title, allow_unicode=True)[:max_length].strip("-") or fallback
    others = model.objects.filter(slug__startswith=base)
    if current_pk is not None:  # an unsaved item has no row of its own to leave out
        others = others.exclude(pk=current_pk)
    taken = set(others.values_list("slug", flat=True))
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base}-{number}", number + 1
    return candidate


def prepare_article(article: Article) -> Article:
    """Fill what is derived before saving: the sanitised HTML and, if empty, the slug."""
    article.body_html = markdown.render(article.body)
    if not article.slug:
        article.slug = unique_slug(Article, article.title, article.pk, "article")
    return article


def prepare_event(event: Event) -> Event:
    event.description_html = markdown.render(event.description)
    if not event.slug:
        event.slug = unique_slug(Event, event.title, event.pk, "event")
    return event


def prepare_report(report: Report) -> Report:
    if not report.slug:
        report.slug = unique_slug(Report, report.title, report.pk, "report")
    return report


def save_item(item: _Scheduled, changed: Collection[str] = ()) -> _Scheduled:
    """Save an article, report or event as an editor wrote it (the admin, the API): what is
    derived is filled first; an event given more seats hands them to its waitlist at once.
    `changed` names the fields the editor changed (an edit, not a new item)."""
    if isinstance(item, Article):
        prepare_article(item)
    elif isinstance(item, Report):
        prepare_report(item)
    else:
        prepare_event(item)
    item.save()
    if isinstance(item, Event) and "capacity" in changed:
        rsvp.fill_free_seats(item)
    return item


def _announce(signal: Signal, instance: models.Model) -> None:
    transaction.on_commit(lambda: signal.send(sender=type(instance), instance=instance))


def publish_article(article: Article, at: datetime | None = None) -> Article:
    """Publish now, or schedule for `at` in the future. An article needs its digest to go out:
    the weekly report is made of digests."""
    if not article.digest.strip():
        raise PublishingError(_("要約が空です。週報に載る要約を書いてから公開してください。"))
    return _publish(article, at, signals.article_published)


def publish_report(report: Report, at: datetime | None = None) -> Report:
    if not report.pdf:
        raise PublishingError(_("PDFがありません。PDFをアップロードしてから公開してください。"))
    return _publish(report, at, signals.report_published)


def _publish(item: _Item, at: datetime | None, signal: Signal) -> _Item:
    now = timezone.now()
    with transaction.atomic():
        item = type(item).objects.select_for_update().get(pk=item.pk)
        if item.status == Status.PUBLISHED:
            return item
        if at is not None and at > now:
            item.status, item.published_at = Status.SCHEDULED, at
        else:
            item.status, item.published_at = Status.PUBLISHED, item.published_at or now
            if item.published_at > now:
                item.published_at = now
            _announce(signal, item)
        item.save(update_fields=["status", "published_at", "updated_at"])
        transaction.on_commit(caching.content_changed)
    return item


def unpublish(item: Article | Report) -> None:
    """Back to draft (a mistake, a retraction); it disappears from the site at once."""
    type(item).objects.filter(pk=item.pk).update(status=Status.DRAFT)
    caching.content_changed()


def publish_due() -> int:
    """Publish what was scheduled for now or earlier; returns how many. Run every minute.

    One item that fails (logged with its error) stays scheduled and is tried again next minute;
    the others are published all the same.
    """
    now = timezone.now()
    due: list[Article | Report | Event] = [
        *_due(Article, now),
        *_due(Report, now),
        *_due(Event, now),
    ]
    count = 0
    for item in due:
        try:
            _publish_scheduled(item)
        except Exception:
            logger.exception("%s %s could not be published", type(item).__name__, item.pk)
            continue
        count += 1
    return count


def _publish_scheduled(item: Article | Report | Event) -> None:
    if isinstance(item, Article):
        _publish(item, None, signals.article_published)
    elif isinstance(item, Report):
        _publish(item, None, signals.report_published)
    else:
        publish_event(item)


def _due(model: type[_Scheduled], now: datetime) -> QuerySet[_Scheduled]:
    # A scheduled item whose date an editor cleared is due now ("blank: publish now").
    return model.objects.filter(status=Status.SCHEDULED).filter(
        Q(published_at__lte=now) | Q(published_at__isnull=True)
    )


def publish_event(event: Event, at: datetime | None = None) -> Event:
    """Publish now, or schedule for `at` in the future (then publish_due publishes it)."""
    now = timezone.now()
    with transaction.atomic():
        event = Event.objects.select_for_update().get(pk=event.pk)
        if event.status == Event.EventStatus.CANCELLED:
            raise PublishingError(_("中止したイベントは公開できません。"))
        if event.status == Event.EventStatus.PUBLISHED:
            return event
        if at is not None and at > now:
            event.status, event.published_at = Event.EventStatus.SCHEDULED, at
        else:
            event.status, event.published_at = Event.EventStatus.PUBLISHED, now
            _announce(signals.event_published, event)
        event.save(update_fields=["status", "published_at", "updated_at"])
        transaction.on_commit(caching.content_changed)
    return event


def cancel_event(event: Event) -> Event:
    with transaction.atomic():
        event = Event.objects.select_for_update().get(pk=event.pk)
        if event.status != Event.EventStatus.PUBLISHED:
            # Never shown: it must not appear on the site as cancelled either.
            event.published_at = None
        event.status = Event.EventStatus.CANCELLED
        event.save(update_fields=["status", "published_at", "updated_at"])
        transaction.on_commit(caching.content_changed)
    return event


def set_reader_interests(subscriber_id: int, tag_ids: Collection[int]) -> None:
    """The reader's research fields are now exactly `tag_ids` (tags that no longer exist are
    left out)."""
    wanted = set(Tag.objects.filter(pk__in=tag_ids).values_list("pk", flat=True))
    with transaction.atomic():
        ReaderInterest.objects.filter(subscriber_id=subscriber_id).exclude(
            tag_id__in=wanted
        ).delete()
        ReaderInterest.objects.bulk_create(
            [ReaderInterest(subscriber_id=subscriber_id, tag_id=tag) for tag in wanted],
            ignore_conflicts=True,
        )
