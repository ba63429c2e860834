"""Mailing state changes: compose, schedule, start, pause, resume, cancel — one function each.

Every transition locks the mailing row, checks the state it starts from, and writes a
StatusChange with who and when; so two editors pressing "send" at once send once.
"""

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from merumaga.institute.services import weekly_schedule
from merumaga.mailings.audience import deliverable
from merumaga.mailings.checks import content_problems
from merumaga.mailings.contents import FIRST_WEEKLY_LOOKBACK, weekly_gone_out
from merumaga.mailings.models import Mailing, MailingArticle, StatusChange, WeeklyRun
from merumaga.publishing.models import Article, Event, Report
from merumaga.subscribers.models import Topic

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


class MailingError(ValueError):
    """An editor action that cannot be done now; the message says why, for the editor."""


def _transition(
    mailing: Mailing,
    allowed_from: Collection[str],
    to: str,
    by: "User | None" = None,
    note: str = "",
    **fields: Any,
) -> Mailing:
    with transaction.atomic():
        locked = Mailing.objects.select_for_update().get(pk=mailing.pk)
        if locked.status not in allowed_from:
            raise MailingError(
                _("この配信は「%(status)s」のため、この操作はできません。")
                % {"status": locked.get_status_display()}
            )
        StatusChange.objects.create(
            mailing=locked, from_status=locked.status, to_status=to, by=by, note=note
        )
        locked.status = to
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.save(update_fields=["status", *fields, "updated_at"])
    return locked


def _create(by: "User | None" = None, **fields: Any) -> Mailing:
    mailing = Mailing.objects.create(**fields)
    StatusChange.objects.create(mailing=mailing, to_status=mailing.status, by=by, note="created")
    return mailing


# Composing.


# A weekly report "uses" its articles once it has gone out, wholly or in part (cancelled once a
# worker had begun sending it included: some readers have them); until then, a draft or scheduled
# report only holds them. Cancelled before sending, or deleted, it gives them back.
WEEKLY_UNSENT = (Mailing.Status.DRAFT, Mailing.Status.SCHEDULED)


def weekly_candidates(until: datetime) -> list[Article]:
    """Published articles no weekly report that went out contained, up to `until` (inclusive),
    newest first.

    The record of what each report contained is what keeps an article from going twice; having
    no lower bound after the first report is what keeps a late or back-dated one from being
    missed.
    """
    gone_out = weekly_gone_out()
    articles = Article.objects.published().filter(published_at__lte=until)
    if not gone_out.exists():
        articles = articles.filter(published_at__gt=until - FIRST_WEEKLY_LOOKBACK)
    used = MailingArticle.objects.filter(mailing__in=gone_out)
    articles = articles.exclude(pk__in=used.values("article_id"))
    return list(articles.order_by("-published_at", "-id"))


@dataclass(frozen=True)
class WeeklyComposed:
    """What composing did: made a report, refreshed the one waiting, or found nothing."""

    mailing: Mailing | None
    created: bool = False
    added: int = 0
    removed: int = 0

    @property
    def articles(self) -> int:
        return self.mailing.articles.count() if self.mailing else 0


def compose_weekly(now: datetime | None = None, by: "User | None" = None) -> WeeklyComposed:
    """The weekly report: every article not yet sent, with upcoming events and new reports.

    There is at most one weekly report not yet sent. Composing again (the schedule, an editor's
    「週報を今すぐ作成」, `merumaga compose-weekly`) refreshes a draft: articles published since
    are added at the top, articles taken back are dropped, the editor's order of the rest is
    kept. A scheduled report was approved as it is: it is left alone, and what is new goes in
    the next one. Nothing new and no report waiting means no mail. Every run is recorded, with
    what it did.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # One composer at a time: the lock on the topic row serialises concurrent runs.
        topic = Topic.objects.select_for_update().get(key="weekly")
        waiting = (
            Mailing.objects.select_for_update()
            .filter(kind=Mailing.Kind.WEEKLY, status__in=WEEKLY_UNSENT)
            .first()
        )
        candidates = weekly_candidates(now)
        if waiting is not None and waiting.status == Mailing.Status.SCHEDULED:
            result = WeeklyComposed(waiting)
        elif waiting is not None:
            result = _refresh_weekly(waiting, candidates, now)
        elif candidates:
            result = _new_weekly(topic, candidates, now, by)
        else:
            result = WeeklyComposed(None)
        WeeklyRun.objects.create(ran_at=now, mailing=result.mailing, note=_weekly_note(result))
    return result


def _new_weekly(
    topic: Topic, articles: list[Article], now: datetime, by: "User | None"
) -> WeeklyComposed:
    number = next_issue_number(topic)
    mailing = _create(
        by=by,
        kind=Mailing.Kind.WEEKLY,
        topic=topic,
        issue_number=number,
        subject=_weekly_subject(now, len(articles), number),
        preheader=articles[0].title,
        covers_until=now,
    )
    MailingArticle.objects.bulk_create(
        MailingArticle(mailing=mailing, article=article, position=position)
        for position, article in enumerate(articles)
    )
    return WeeklyComposed(mailing, created=True, added=len(articles))


def _refresh_weekly(mailing: Mailing, candidates: list[Article], now: datetime) -> WeeklyComposed:
    """New articles at the top, in their order (newest first); the rest keep their positions;
    articles no longer published, or sent meanwhile by another report, leave."""
    held = list(MailingArticle.objects.filter(mailing=mailing).select_related("article"))
    published = set(Article.objects.published().values_list("pk", flat=True))
    used = set(
        MailingArticle.objects.filter(mailing__in=weekly_gone_out()).values_list(
            "article_id", flat=True
        )
    )
    leaving = [row for row in held if row.article_id not in published or row.article_id in used]
    staying = sorted((row for row in held if row not in leaving), key=lambda row: row.position)
    held_ids = {row.article_id for row in held}
    added = [article for article in candidates if article.pk not in held_ids]
    if not added and not leaving:
        return WeeklyComposed(mailing)
    MailingArticle.objects.filter(pk__in=[row.pk for row in leaving]).delete()
    MailingArticle.objects.bulk_create(
        MailingArticle(mailing=mailing, article=article, position=position)
        for position, article in enumerate(added)
    )
    for position, row in enumerate(staying, start=len(added)):
        row.position = position
    MailingArticle.objects.bulk_update(staying, ["position"])
    count = len(added) + len(staying)
    first = added[0] if added else (staying[0].article if staying else None)
    mailing.subject = _weekly_subject(now, count, mailing.issue_number)
    mailing.preheader = first.title if first else ""
    mailing.covers_until = now
    mailing.save(update_fields=["subject", "preheader", "covers_until", "updated_at"])
    return WeeklyComposed(mailing, added=len(added), removed=len(leaving))


def _weekly_subject(now: datetime, count: int, number: int | None) -> str:
    local = timezone.localtime(now)
    return _("週報 第%(number)s号 (%(date)s) — 今週の記事 %(count)d本") % {
        "number": number,
        "date": f"{local:%Y年%-m月%-d日}",
        "count": count,
    }


def next_issue_number(topic: Topic) -> int:
    """第N号 of the next weekly report to this topic: one more than the last that went out."""
    last = (
        weekly_gone_out()
        .filter(topic=topic, issue_number__isnull=False)
        .order_by("-issue_number")
        .values_list("issue_number", flat=True)
        .first()
    )
    return (last or 0) + 1


def _weekly_note(result: WeeklyComposed) -> str:
    if result.mailing is None:
        return _("新しい記事がないため、週報は作成しませんでした。")
    if result.created:
        return _("週報を作成しました (記事 %(count)d本)。") % {"count": result.added}
    values = {"count": result.articles, "added": result.added, "removed": result.removed}
    if result.mailing.status == Mailing.Status.SCHEDULED:
        at = timezone.localtime(result.mailing.scheduled_at)
        return _(
            "予約済みの週報 (%(at)s 配信、記事 %(count)d本) は承認された内容のまま変えていません。"
            "新しい記事は次の週報に入ります。"
        ) % {**values, "at": f"{at:%Y-%m-%d %H:%M}"}
    if result.added or result.removed:
        return (
            _(
                "配信前の週報を更新しました: 記事 %(added)d本を追加、%(removed)d本を除外 "
                "(計 %(count)d本)。"
            )
            % values
        )
    return (
        _("新しい記事はありません。配信前の週報 (記事 %(count)d本) がそのまま配信を待っています。")
        % values
    )


def compose_custom(mailing: Mailing, by: "User | None" = None) -> Mailing:
    """An editor's own announcement (お知らせ), written in the admin: saved as a draft."""
    mailing.kind = Mailing.Kind.CUSTOM
    mailing.status = Mailing.Status.DRAFT
    mailing.save()
    StatusChange.objects.create(mailing=mailing, to_status=mailing.status, by=by, note="created")
    return mailing


def compose_for_article(article: Article, by: "User | None" = None) -> Mailing:
    return _create(
        by=by,
        kind=Mailing.Kind.ARTICLE,
        topic=Topic.objects.get(key="articles"),
        article=article,
        **announcement_wording(article),
    )


def compose_for_report(report: Report, by: "User | None" = None) -> Mailing:
    return _create(
        by=by,
        kind=Mailing.Kind.REPORT,
        topic=Topic.objects.get(key="reports"),
        report=report,
        attach_pdf=False,
        **announcement_wording(report),
    )


def compose_event_invitation(event: Event, by: "User | None" = None) -> Mailing:
    return _create(
        by=by,
        kind=Mailing.Kind.EVENT_INVITATION,
        topic=Topic.objects.get(key="events"),
        event=event,
        **announcement_wording(event),
    )


def announcement_wording(item: Article | Report | Event) -> dict[str, str]:
    """The subject and preheader an announcement of `item` starts with, from the item as it is."""
    if isinstance(item, Article):
        return {"subject": item.title, "preheader": item.digest[:100]}
    if isinstance(item, Report):
        return {
            "subject": _("研究レポート: %(title)s") % {"title": item.title},
            "preheader": item.summary[:100],
        }
    return {
        "subject": _("ご招待: %(title)s") % {"title": item.title},
        "preheader": f"{timezone.localtime(item.starts_at):%Y年%-m月%-d日 %H:%M}",
    }


def compose_event_reminder(event: Event, by: "User | None" = None) -> Mailing:
    """Goes to those who said they attend (not to the whole topic), a few days before."""
    return _create(
        by=by,
        kind=Mailing.Kind.EVENT_REMINDER,
        topic=Topic.objects.get(key="events"),
        subject=_("まもなく開催: %(title)s") % {"title": event.title},
        event=event,
    )


def announcement_for(item: Article | Report | Event, by: "User | None" = None) -> Mailing:
    """The mailing that announces `item`: the draft an editor previewed before publishing, else
    a new one. A draft's subject and preheader follow the item (its title or date may have
    changed since the preview) unless an editor wrote them."""
    # Each kind's composer takes that kind of item: more than the dict's type can say.
    announcements: dict[type, tuple[str, str, Callable[..., Mailing]]] = {
        Article: (Mailing.Kind.ARTICLE, "article", compose_for_article),
        Report: (Mailing.Kind.REPORT, "report", compose_for_report),
        Event: (Mailing.Kind.EVENT_INVITATION, "event", compose_event_invitation),
    }
    kind, field, compose = announcements[type(item)]
    draft = (
        Mailing.objects.filter(kind=kind, status=Mailing.Status.DRAFT, **{field: item})
        .order_by("-created_at", "-id")
        .first()
    )
    if draft is None:
        return compose(item, by=by)
    if not draft.wording_edited:
        wording = announcement_wording(item)
        for name, value in wording.items():
            setattr(draft, name, value)
        draft.save(update_fields=[*wording, "updated_at"])
    return draft


def record_note(mailing: Mailing, note: str, by: "User | None" = None) -> None:
    """Something the editor must see on the mailing's page (its history) that is no transition."""
    StatusChange.objects.create(
        mailing=mailing, from_status=mailing.status, to_status=mailing.status, by=by, note=note
    )


# Transitions.

EDITABLE = (Mailing.Status.DRAFT, Mailing.Status.SCHEDULED)


def schedule(mailing: Mailing, at: datetime, by: "User | None" = None) -> Mailing:
    if at <= timezone.now():
        raise MailingError(
            _("配信予定日時が過去です。未来の日時を指定するか「今すぐ配信」を使ってください。")
        )
    _require_sendable(mailing, by)
    return _transition(mailing, EDITABLE, Mailing.Status.SCHEDULED, by, scheduled_at=at)


def start(mailing: Mailing, by: "User | None" = None, note: str = "") -> Mailing:
    """Start sending now (an editor's "send now", or the scheduler when the time comes)."""
    _require_sendable(mailing, by)
    # The delivery workers take mailings in "sending": the first to see it freezes its audience.
    return _transition(
        mailing, EDITABLE, Mailing.Status.SENDING, by, note, started_at=timezone.now()
    )


def pause(mailing: Mailing, by: "User | None" = None, note: str = "") -> Mailing:
    return _transition(mailing, (Mailing.Status.SENDING,), Mailing.Status.PAUSED, by, note)


def resume(mailing: Mailing, by: "User | None" = None) -> Mailing:
    return _transition(mailing, (Mailing.Status.PAUSED,), Mailing.Status.SENDING, by)


def cancel(mailing: Mailing, by: "User | None" = None) -> Mailing:
    allowed = (*EDITABLE, Mailing.Status.SENDING, Mailing.Status.PAUSED)
    return _transition(mailing, allowed, Mailing.Status.CANCELLED, by)


def finish(mailing: Mailing, *, sent: int, failed: int) -> Mailing:
    """Sending is over (the delivery engine says so, with its counts)."""
    return _transition(
        mailing,
        (Mailing.Status.SENDING,),
        Mailing.Status.SENT,
        finished_at=timezone.now(),
        sent=sent,
        failed=failed,
    )


def record_counts(mailing: Mailing, *, sent: int, failed: int) -> None:
    """The delivery engine's final counts, for a mailing it could not finish (an editor paused
    or cancelled it at the last moment): the mailing still says how many went."""
    Mailing.objects.filter(pk=mailing.pk).update(sent=sent, failed=failed)


def freeze_audience(mailing: Mailing, make_rows: Callable[[Mailing], int]) -> bool:
    """Fix who receives `mailing`, once, whichever worker comes first: mark it frozen and have
    the delivery engine make its rows (`make_rows`, which returns how many) in one transaction,
    so that a crash leaves neither; the count becomes the mailing's `recipients`. True if this
    call did it."""
    with transaction.atomic():
        taken = Mailing.objects.filter(pk=mailing.pk, audience_frozen_at__isnull=True).update(
            audience_frozen_at=timezone.now()
        )
        if taken:
            Mailing.objects.filter(pk=mailing.pk).update(recipients=make_rows(mailing))
    return bool(taken)


def start_due(now: datetime | None = None) -> int:
    """Start the scheduled mailings whose time has come; returns how many. Run every minute."""
    due = Mailing.objects.filter(
        status=Mailing.Status.SCHEDULED, scheduled_at__lte=now or timezone.now()
    )
    started = 0
    for mailing in due:
        try:
            start(mailing, note="scheduled")
        except Exception as error:
            # No longer passes its checks (edited, or what it announces was taken back), or its
            # checks themselves failed (a template error): back to draft with the reason in its
            # history, rather than "scheduled" for ever; the other due mailings still start.
            reason = str(error)
            if not isinstance(error, MailingError):
                logger.exception("scheduled mailing %s could not start", mailing.pk)
                reason = f"{type(error).__name__}: {error}"
            with contextlib.suppress(MailingError):  # an editor changed it meanwhile
                _transition(
                    mailing,
                    (Mailing.Status.SCHEDULED,),
                    Mailing.Status.DRAFT,
                    note=reason[:300],
                )
            continue
        started += 1
    return started


def weekly_due(now: datetime | None = None) -> bool:
    """Whether this week's report should be composed now: its day and time have come and no
    weekly report was composed (or found nothing) since then."""
    now = timezone.localtime(now or timezone.now())
    plan = weekly_schedule()
    this_week = now - timedelta(days=(now.weekday() - plan.weekday) % 7)
    slot = this_week.replace(hour=plan.time.hour, minute=plan.time.minute, second=0, microsecond=0)
    if now < slot:
        return False
    return not WeeklyRun.objects.filter(ran_at__gte=slot).exists()


def _require_sendable(mailing: Mailing, by: "User | None" = None) -> None:
    problems = content_problems(mailing)
    if problems:
        raise MailingError(" ".join(problems))
    if not deliverable(mailing).exists():
        raise MailingError(_("この配信先には、配信できる購読者がいません。"))
    _require_approval(mailing, by)


def content_fingerprint(mailing: Mailing) -> str:
    """What an approver approved: the words, the audience and what the mail carries."""
    articles = list(
        MailingArticle.objects.filter(mailing=mailing)
        .order_by("position", "id")
        .values_list("article_id", flat=True)
    )
    content = [
        mailing.kind,
        mailing.topic_id,
        mailing.subject,
        mailing.preheader,
        mailing.intro,
        mailing.attach_pdf,
        mailing.article_id,
        mailing.report_id,
        mailing.event_id,
        articles,
    ]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


def needs_approval(mailing: Mailing) -> bool:
    limit = settings.MAILING_APPROVAL_ABOVE
    return bool(limit) and deliverable(mailing).count() > limit


def _require_approval(mailing: Mailing, by: "User | None") -> None:
    """The two-person rule: approved by another account than the one starting or scheduling
    it, and not edited since."""
    if not needs_approval(mailing):
        return
    if mailing.approved_by_id is None or mailing.approved_content != content_fingerprint(mailing):
        raise MailingError(
            _("この配信は %(limit)s 人を超える読者に届くため、別のアカウントの承認が必要です。")
            % {"limit": f"{settings.MAILING_APPROVAL_ABOVE:,}"}
        )
    if by is not None and mailing.approved_by_id == by.pk:
        raise MailingError(_("承認した本人は、この配信を開始・予約できません (二人承認)。"))


def approve(mailing: Mailing, by: "User") -> Mailing:
    """A second account approves the mailing as it stands now (an edit later voids it)."""
    with transaction.atomic():
        locked = Mailing.objects.select_for_update().get(pk=mailing.pk)
        if locked.status not in EDITABLE:
            raise MailingError(_("下書きか予約中の配信だけを承認できます。"))
        locked.approved_by = by
        locked.approved_at = timezone.now()
        locked.approved_content = content_fingerprint(locked)
        locked.save(update_fields=["approved_by", "approved_at", "approved_content", "updated_at"])
    return locked
