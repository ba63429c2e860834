"""The weekly report on a calendar of publications: every article exactly once, none missed."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from merumaga.mailings import services
from merumaga.mailings.models import Mailing, StatusChange, WeeklyRun
from merumaga.publishing.models import Article
from merumaga.publishing.tests.factories import make_article, make_report

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


def test_a_week_with_nothing_new_makes_no_mail_and_says_so():
    assert services.compose_weekly(MONDAY) is None
    run = WeeklyRun.objects.get()
    assert run.mailing is None and "新しい記事がない" in run.note


def test_one_article():
    published("ひとつ", MONDAY - timedelta(days=2))
    mailing = services.compose_weekly(MONDAY)
    assert titles(mailing) == ["ひとつ"]
    assert mailing.kind == "weekly" and mailing.topic.key == "weekly" and mailing.status == "draft"
    assert mailing.covers_until == MONDAY
    assert "1本" in mailing.subject


def test_many_articles_in_publication_order_and_drafts_left_out():
    for day in (6, 4, 1):
        published(f"{day}日前", MONDAY - timedelta(days=day))
    make_article("下書き", published=False)
    assert titles(services.compose_weekly(MONDAY)) == ["6日前", "4日前", "1日前"]


def test_consecutive_weeks_never_repeat_and_never_miss():
    published("第1週", MONDAY - timedelta(days=3))
    first = services.compose_weekly(MONDAY)
    published("第2週", MONDAY + timedelta(days=2))
    second = services.compose_weekly(MONDAY + timedelta(days=7))
    assert titles(first) == ["第1週"] and titles(second) == ["第2週"]
    assert services.compose_weekly(MONDAY + timedelta(days=14)) is None


def test_an_article_published_exactly_at_the_cut_off_goes_in_once():
    published("境界", MONDAY)
    assert titles(services.compose_weekly(MONDAY)) == ["境界"]
    published("翌週", MONDAY + timedelta(days=1))
    assert titles(services.compose_weekly(MONDAY + timedelta(days=7))) == ["翌週"]


def test_an_article_back_dated_into_an_earlier_week_is_not_missed():
    published("先週分", MONDAY - timedelta(days=1))
    services.compose_weekly(MONDAY)
    # Published on Wednesday, but dated the Saturday before the last report's cut-off.
    published("遅れて公開", MONDAY - timedelta(days=2))
    assert titles(services.compose_weekly(MONDAY + timedelta(days=7))) == ["遅れて公開"]


def test_a_cancelled_weekly_gives_its_articles_back():
    published("取り消し", MONDAY - timedelta(days=1))
    services.cancel(services.compose_weekly(MONDAY))
    assert titles(services.compose_weekly(MONDAY + timedelta(hours=1))) == ["取り消し"]


def test_the_first_weekly_looks_back_one_week_only():
    published("昔の記事", MONDAY - timedelta(days=30))
    published("今週の記事", MONDAY - timedelta(days=3))
    assert titles(services.compose_weekly(MONDAY)) == ["今週の記事"]


def test_a_report_delayed_by_a_day_is_in_the_next_weekly():
    published("記事A", MONDAY - timedelta(days=2))
    first = services.compose_weekly(MONDAY)
    report = make_report("遅れたレポート")
    type(report).objects.filter(pk=report.pk).update(published_at=MONDAY + timedelta(days=1))
    published("記事B", MONDAY + timedelta(days=3))
    second = services.compose_weekly(MONDAY + timedelta(days=7))
    assert [r.title for r in services.weekly_extras(first)["reports"]] == []
    assert [r.title for r in services.weekly_extras(second)["reports"]] == ["遅れたレポート"]


def test_weekly_due_follows_the_site_settings(settings):
    from merumaga.institute.models import SiteSettings

    SiteSettings.objects.create(weekly_weekday=2, weekly_time=datetime(2000, 1, 1, 9, 30).time())
    wednesday = datetime(2026, 11, 4, 9, 29, tzinfo=JST)
    assert not services.weekly_due(wednesday)
    assert services.weekly_due(wednesday + timedelta(minutes=1))
    services.compose_weekly(wednesday + timedelta(minutes=1))  # nothing new, but it ran
    assert not services.weekly_due(wednesday + timedelta(minutes=2))
    assert services.weekly_due(wednesday + timedelta(days=7, minutes=1))


def test_transitions_are_recorded_and_refused_from_the_wrong_state(admin_user):
    published("記事", MONDAY - timedelta(days=1))
    mailing = services.compose_weekly(MONDAY)
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
    mailing = services.compose_weekly(MONDAY)
    with pytest.raises(services.MailingError, match="過去"):
        services.schedule(mailing, datetime(2020, 1, 1, tzinfo=JST))
    mailing.refresh_from_db()
    assert mailing.status == "draft"


def test_a_due_mailing_that_fails_its_checks_goes_back_to_draft_with_the_reason():
    from django.utils import timezone

    published("記事", MONDAY - timedelta(days=1))
    mailing = services.compose_weekly(MONDAY)
    Mailing.objects.filter(pk=mailing.pk).update(
        status=Mailing.Status.SCHEDULED, scheduled_at=timezone.now() - timedelta(minutes=1)
    )
    assert services.start_due() == 0  # nobody reads the weekly report: it cannot start
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.DRAFT
    assert "購読者がいません" in mailing.status_changes.last().note
