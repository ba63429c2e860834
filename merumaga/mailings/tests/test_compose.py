"""The weekly report on a calendar of publications: every article exactly once, none missed."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from merumaga.mailings import contents, services
from merumaga.mailings.models import Mailing, StatusChange, WeeklyRun
from merumaga.publishing.models import Article
from merumaga.testing import make_article, make_report

pytestmark = pytest.mark.django_db
JST = ZoneInfo("Asia/Tokyo")
# A Monday safely in the past: only what is published by now can go out.
MONDAY = datetime(2026, 11, 2, 8, 0, tzinfo=JST)


def published(title: str, at: datetime) -> Article:
    return make_article(title, published_at=at)


def titles(mailing: Mailing) -> list[str]:
    return list(
        mailing.articles.order_by("mailingarticle__position").values_list("title", flat=True)
    )


def compose(at: datetime) -> Mailing | None:
    return services.compose_weekly(at).mailing


def went_out(mailing: Mailing) -> Mailing:
    """What the delivery engine does at the end: the report is sent."""
    Mailing.objects.filter(pk=mailing.pk).update(status=Mailing.Status.SENT)
    mailing.refresh_from_db()
    return mailing


def test_a_week_with_nothing_new_makes_no_mail_and_says_so():
    assert services.compose_weekly(MONDAY).mailing is None
    run = WeeklyRun.objects.get()
    assert run.mailing is None and "新しい記事がない" in run.note


def test_one_article():
    published("ひとつ", MONDAY - timedelta(days=2))
    composed = services.compose_weekly(MONDAY)
    mailing = composed.mailing
    assert composed.created and composed.added == 1
    assert titles(mailing) == ["ひとつ"]
    assert mailing.kind == "weekly" and mailing.topic.key == "weekly" and mailing.status == "draft"
    assert mailing.covers_until == MONDAY
    assert "1本" in mailing.subject


def test_articles_newest_first_and_drafts_left_out():
    for day in (6, 4, 1):
        published(f"{day}日前", MONDAY - timedelta(days=day))
    make_article("下書き", published=False)
    assert titles(compose(MONDAY)) == ["1日前", "4日前", "6日前"]


def test_consecutive_weeks_never_repeat_and_never_miss():
    published("第1週", MONDAY - timedelta(days=3))
    first = went_out(compose(MONDAY))
    published("第2週", MONDAY + timedelta(days=2))
    second = went_out(compose(MONDAY + timedelta(days=7)))
    assert titles(first) == ["第1週"] and titles(second) == ["第2週"]
    assert compose(MONDAY + timedelta(days=14)) is None


def test_an_article_published_exactly_at_the_cut_off_goes_in_once():
    published("境界", MONDAY)
    assert titles(went_out(compose(MONDAY))) == ["境界"]
    published("翌週", MONDAY + timedelta(days=1))
    assert titles(compose(MONDAY + timedelta(days=7))) == ["翌週"]


def test_an_article_back_dated_into_an_earlier_week_is_not_missed():
    published("先週分", MONDAY - timedelta(days=1))
    went_out(compose(MONDAY))
    # Published on Wednesday, but dated the Saturday before the last report's cut-off.
    published("遅れて公開", MONDAY - timedelta(days=2))
    assert titles(compose(MONDAY + timedelta(days=7))) == ["遅れて公開"]


def test_composing_again_refreshes_the_report_waiting_to_be_sent():
    published("月曜の記事", MONDAY - timedelta(days=1))
    draft = compose(MONDAY)
    published("水曜の記事", MONDAY + timedelta(days=2))
    composed = services.compose_weekly(MONDAY + timedelta(days=2, hours=1))
    assert composed.mailing == draft and not composed.created
    assert (composed.added, composed.removed, composed.articles) == (1, 0, 2)
    assert titles(draft) == ["水曜の記事", "月曜の記事"]
    draft.refresh_from_db()
    assert "2本" in draft.subject and draft.preheader == "水曜の記事"
    assert Mailing.objects.filter(kind="weekly").count() == 1
    assert "1本を追加" in WeeklyRun.objects.first().note


def test_composing_again_with_nothing_new_says_the_report_is_waiting():
    published("記事", MONDAY - timedelta(days=1))
    draft = compose(MONDAY)
    composed = services.compose_weekly(MONDAY + timedelta(hours=1))
    assert composed.mailing == draft and (composed.added, composed.removed) == (0, 0)
    note = WeeklyRun.objects.first().note
    assert "新しい記事はありません" in note and "配信を待っています" in note


def test_a_refresh_keeps_the_editors_order_and_drops_what_was_taken_back():
    from merumaga.mailings.models import MailingArticle
    from merumaga.publishing import services as publishing

    a = published("A", MONDAY - timedelta(days=3))
    published("B", MONDAY - timedelta(days=2))
    c = published("C", MONDAY - timedelta(days=1))
    draft = compose(MONDAY)
    assert titles(draft) == ["C", "B", "A"]
    MailingArticle.objects.filter(mailing=draft, article=a).update(position=0)  # the editor
    MailingArticle.objects.filter(mailing=draft, article=c).update(position=2)
    publishing.unpublish(MailingArticle.objects.get(mailing=draft, article__title="B").article)
    published("D", MONDAY + timedelta(days=1))
    composed = services.compose_weekly(MONDAY + timedelta(days=2))
    assert titles(draft) == ["D", "A", "C"]
    assert (composed.added, composed.removed) == (1, 1)


def test_a_scheduled_report_was_approved_as_it_is_and_is_left_alone():
    from django.utils import timezone

    published("記事1", MONDAY - timedelta(days=1))
    draft = compose(MONDAY)
    Mailing.objects.filter(pk=draft.pk).update(
        status=Mailing.Status.SCHEDULED, scheduled_at=timezone.now() + timedelta(hours=1)
    )
    published("記事2", MONDAY + timedelta(hours=2))
    assert compose(MONDAY + timedelta(hours=3)) == draft
    draft.refresh_from_db()
    assert draft.status == "scheduled" and titles(draft) == ["記事1"]
    note = WeeklyRun.objects.first().note
    assert "承認された内容のまま" in note and "次の週報" in note
    went_out(draft)
    assert titles(compose(MONDAY + timedelta(days=7))) == ["記事2"]  # not stranded


def test_a_weekly_cancelled_while_it_was_going_out_keeps_its_articles_used():
    from django.utils import timezone

    published("途中まで送った記事", MONDAY - timedelta(days=1))
    sending = compose(MONDAY)
    Mailing.objects.filter(pk=sending.pk).update(
        status=Mailing.Status.CANCELLED, audience_frozen_at=timezone.now()
    )
    assert compose(MONDAY + timedelta(hours=1)) is None  # some readers have it already


def test_at_most_one_weekly_report_waits_to_be_sent():
    from django.db import IntegrityError, transaction

    published("記事", MONDAY - timedelta(days=1))
    draft = compose(MONDAY)
    with pytest.raises(IntegrityError), transaction.atomic():
        Mailing.objects.create(kind="weekly", topic=draft.topic, subject="二つ目")


def test_a_cancelled_weekly_gives_its_articles_back():
    published("取り消し", MONDAY - timedelta(days=1))
    services.cancel(compose(MONDAY))
    assert titles(compose(MONDAY + timedelta(hours=1))) == ["取り消し"]


def test_a_deleted_draft_gives_its_articles_back():
    published("削除", MONDAY - timedelta(days=1))
    compose(MONDAY).delete()
    assert titles(compose(MONDAY + timedelta(hours=1))) == ["削除"]


def test_an_article_is_used_only_once_a_report_holding_it_went_out():
    published("記事", MONDAY - timedelta(days=1))
    sending = compose(MONDAY)
    Mailing.objects.filter(pk=sending.pk).update(status=Mailing.Status.SENDING)
    published("次の記事", MONDAY + timedelta(days=1))
    assert titles(compose(MONDAY + timedelta(days=2))) == ["次の記事"]


def test_every_article_reaches_exactly_one_sent_weekly_report_on_a_calendar():
    """Auto-draft, compose now with the draft present, publish more, cancel, send: every
    published article ends in exactly one sent weekly report."""
    from merumaga.mailings.models import MailingArticle

    published("月1", MONDAY - timedelta(days=2))
    published("月2", MONDAY - timedelta(days=1))
    auto = compose(MONDAY)  # the schedule's draft, waiting for approval
    published("火", MONDAY + timedelta(days=1))
    assert compose(MONDAY + timedelta(days=1, hours=1)) == auto  # 「週報を今すぐ作成」
    published("水", MONDAY + timedelta(days=2))
    services.cancel(auto)  # the editor changes their mind
    published("木", MONDAY + timedelta(days=3))
    again = compose(MONDAY + timedelta(days=3, hours=1))
    assert again != auto
    went_out(again)
    published("金", MONDAY + timedelta(days=4))
    published("翌月", MONDAY + timedelta(days=7))
    went_out(compose(MONDAY + timedelta(days=7)))
    assert compose(MONDAY + timedelta(days=8)) is None  # nothing left, nothing sent twice

    sent = MailingArticle.objects.filter(mailing__status=Mailing.Status.SENT)
    per_article = {}
    for title in sent.values_list("article__title", flat=True):
        per_article[title] = per_article.get(title, 0) + 1
    everything = set(Article.objects.published().values_list("title", flat=True))
    assert per_article == dict.fromkeys(everything, 1)


def test_the_first_weekly_looks_back_one_week_only():
    published("昔の記事", MONDAY - timedelta(days=30))
    published("今週の記事", MONDAY - timedelta(days=3))
    assert titles(compose(MONDAY)) == ["今週の記事"]


def test_a_report_delayed_by_a_day_is_in_the_next_weekly():
    published("記事A", MONDAY - timedelta(days=2))
    first = went_out(compose(MONDAY))
    report = make_report("遅れたレポート")
    type(report).objects.filter(pk=report.pk).update(published_at=MONDAY + timedelta(days=1))
    published("記事B", MONDAY + timedelta(days=3))
    second = compose(MONDAY + timedelta(days=7))
    assert [r.title for r in contents.weekly_extras(first)["reports"]] == []
    assert [r.title for r in contents.weekly_extras(second)["reports"]] == ["遅れたレポート"]


def test_weekly_due_follows_the_site_settings(settings):
    from merumaga.institute.models import SiteSettings

    SiteSettings.objects.create(weekly_weekday=2, weekly_time=time(9, 30))
    wednesday = datetime(2026, 11, 4, 9, 29, tzinfo=JST)
    assert not services.weekly_due(wednesday)
    assert services.weekly_due(wednesday + timedelta(minutes=1))
    services.compose_weekly(wednesday + timedelta(minutes=1))  # nothing new, but it ran
    assert not services.weekly_due(wednesday + timedelta(minutes=2))
    assert services.weekly_due(wednesday + timedelta(days=7, minutes=1))


def test_transitions_are_recorded_and_refused_from_the_wrong_state(admin_user):
    published("記事", MONDAY - timedelta(days=1))
    mailing = compose(MONDAY)
    mailing = services.cancel(mailing, by=admin_user)
    with pytest.raises(services.MailingError, match="中止"):
        services.cancel(mailing, by=admin_user)
    with pytest.raises(services.MailingError):
        services.pause(mailing)
    changes = list(
        StatusChange.objects.filter(mailing=mailing).values_list("from_status", "to_status", "by")
    )
    assert changes == [("", "draft", None), ("draft", "cancelled", admin_user.pk)]


def test_a_schedule_in_the_past_is_refused():
    published("記事", MONDAY - timedelta(days=1))
    mailing = compose(MONDAY)
    with pytest.raises(services.MailingError, match="過去"):
        services.schedule(mailing, datetime(2020, 1, 1, tzinfo=JST))
    mailing.refresh_from_db()
    assert mailing.status == "draft"


def test_a_due_mailing_that_fails_its_checks_goes_back_to_draft_with_the_reason():
    from django.utils import timezone

    published("記事", MONDAY - timedelta(days=1))
    mailing = compose(MONDAY)
    Mailing.objects.filter(pk=mailing.pk).update(
        status=Mailing.Status.SCHEDULED, scheduled_at=timezone.now() - timedelta(minutes=1)
    )
    assert services.start_due() == 0  # nobody reads the weekly report: it cannot start
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.DRAFT
    assert "購読者がいません" in mailing.status_changes.last().note


def test_a_scheduled_mailing_that_raises_goes_back_to_draft_and_the_others_start(monkeypatch):
    from django.utils import timezone

    from merumaga.mailings import checks
    from merumaga.subscribers.models import Topic
    from merumaga.testing import make_subscriber

    make_subscriber()
    topic = Topic.objects.get(key="weekly")
    broken, healthy = (
        Mailing.objects.create(
            kind="custom",
            topic=topic,
            subject=subject,
            status=Mailing.Status.SCHEDULED,
            scheduled_at=timezone.now() - timedelta(minutes=1),
        )
        for subject in ("壊れた", "健全")
    )
    content_problems = checks.content_problems

    def raising_for_one(mailing):
        if mailing.pk == broken.pk:
            raise RuntimeError("template error")
        return content_problems(mailing)

    monkeypatch.setattr(services, "content_problems", raising_for_one)
    assert services.start_due() == 1
    broken.refresh_from_db()
    healthy.refresh_from_db()
    assert healthy.status == Mailing.Status.SENDING
    assert broken.status == Mailing.Status.DRAFT
    assert "RuntimeError: template error" in broken.status_changes.last().note
