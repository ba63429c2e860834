"""Publishing turns into mail: the article, report and event announcements."""

from datetime import timedelta

import pytest
from django.utils import timezone

from merumaga.mailings.models import Mailing
from merumaga.publishing import services as publishing
from merumaga.publishing.models import Event
from merumaga.testing import make_article, make_report, make_subscriber

pytestmark = pytest.mark.django_db


def test_an_article_published_with_notify_goes_to_the_articles_topic(
    django_capture_on_commit_callbacks,
):
    make_subscriber("articles@example.jp", topics=["articles"])
    make_subscriber("weekly-only@example.jp", topics=["weekly"])
    article = make_article("通知あり", published=False, notify_subscribers=True)
    with django_capture_on_commit_callbacks(execute=True):
        publishing.publish_article(article)
    mailing = Mailing.objects.get()
    assert (mailing.kind, mailing.topic.key, mailing.status) == ("article", "articles", "sending")


def test_an_article_without_notify_sends_nothing(django_capture_on_commit_callbacks):
    make_subscriber()
    with django_capture_on_commit_callbacks(execute=True):
        publishing.publish_article(make_article("通知なし", published=False))
    assert not Mailing.objects.exists()


@pytest.mark.parametrize("notify", [True, False])
def test_a_report_is_announced_only_when_its_editor_chose_to(
    django_capture_on_commit_callbacks, notify
):
    make_subscriber(topics=["reports"])
    report = make_report("新レポート", published=False)
    type(report).objects.filter(pk=report.pk).update(notify_subscribers=notify)
    with django_capture_on_commit_callbacks(execute=True):
        publishing.publish_report(type(report).objects.get(pk=report.pk))
    if notify:
        mailing = Mailing.objects.get()
        assert (mailing.kind, mailing.status) == ("report", "sending")
    else:
        assert not Mailing.objects.exists()


def make_event(**fields) -> Event:
    starts = timezone.now() + timedelta(days=14)
    return Event.objects.create(
        title="説明会",
        slug="briefing",
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        **fields,
    )


@pytest.mark.parametrize("notify", [True, False])
def test_an_event_sends_invitations_only_when_its_editor_chose_to(
    django_capture_on_commit_callbacks, notify
):
    make_subscriber(topics=["events"])
    event = make_event(notify_subscribers=notify)
    with django_capture_on_commit_callbacks(execute=True):
        publishing.publish_event(event)
    if notify:
        mailing = Mailing.objects.get()
        assert mailing.kind == "event_invitation" and mailing.status == "sending"
    else:
        assert not Mailing.objects.exists()


def test_an_event_scheduled_for_later_is_published_and_announced_then(
    django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to("2026-12-07 09:00 +09:00", tick=False)
    make_subscriber(topics=["events"])
    event = make_event(notify_subscribers=True)
    later = timezone.now() + timedelta(hours=3)
    with django_capture_on_commit_callbacks(execute=True):
        publishing.publish_event(event, at=later)
    event.refresh_from_db()
    assert event.status == Event.EventStatus.SCHEDULED and not Mailing.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert publishing.publish_due() == 0
    time_machine.shift(timedelta(hours=3))
    with django_capture_on_commit_callbacks(execute=True):
        assert publishing.publish_due() == 1
    event.refresh_from_db()
    assert event.status == Event.EventStatus.PUBLISHED
    assert Mailing.objects.get().status == "sending"


def test_a_scheduled_event_cancelled_before_it_is_published_never_shows(client):
    from merumaga.publishing.rsvp import public_events

    event = make_event()
    publishing.publish_event(event, at=timezone.now() + timedelta(days=1))
    publishing.cancel_event(event)
    assert not public_events().filter(pk=event.pk).exists()


def test_a_previewed_draft_follows_the_items_new_title_and_date(
    django_capture_on_commit_callbacks,
):
    from merumaga.mailings import services

    make_subscriber(topics=["events"])
    event = make_event(notify_subscribers=True)
    draft = services.announcement_for(event)
    later = event.starts_at + timedelta(days=7)
    Event.objects.filter(pk=event.pk).update(
        title="説明会 (日程変更)", starts_at=later, ends_at=later + timedelta(hours=1)
    )
    event.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        publishing.publish_event(event)
    sent = Mailing.objects.get()
    assert sent == draft and "日程変更" in sent.subject
    assert sent.preheader == f"{timezone.localtime(later):%Y年%-m月%-d日 %H:%M}"


def test_an_announcement_that_raises_after_the_publish_is_logged_not_lost(
    django_capture_on_commit_callbacks, monkeypatch, caplog
):
    from merumaga.mailings import services

    make_subscriber(topics=["articles"])
    article = make_article("記事", published=False, notify_subscribers=True)

    def broken_start(mailing, **kwargs):
        raise RuntimeError("template error")

    monkeypatch.setattr(services, "start", broken_start)
    with django_capture_on_commit_callbacks(execute=True):
        publishing.publish_article(article)  # no exception: the article is out
    article.refresh_from_db()
    assert article.status == "published"
    mailing = Mailing.objects.get()
    assert mailing.status == "draft" and "template error" in mailing.status_changes.last().note
    assert "its announcement not sent" in caplog.text


def test_the_draft_an_editor_previewed_is_the_one_sent(django_capture_on_commit_callbacks):
    from merumaga.mailings import services

    make_subscriber(topics=["reports"])
    report = make_report("新レポート", published=False)
    type(report).objects.filter(pk=report.pk).update(notify_subscribers=True)
    report.refresh_from_db()
    draft = services.announcement_for(report)
    Mailing.objects.filter(pk=draft.pk).update(subject="編集部が直した件名", wording_edited=True)
    assert services.announcement_for(report) == draft  # asking again: the same draft
    with django_capture_on_commit_callbacks(execute=True):
        publishing.publish_report(report)
    sent = Mailing.objects.get()
    assert sent == draft and sent.status == "sending" and sent.subject == "編集部が直した件名"


def test_an_announcement_that_fails_its_checks_stays_a_draft_and_says_why(
    django_capture_on_commit_callbacks,
):
    # Nobody subscribes to the articles topic: nothing to send, the draft waits in the admin.
    article = make_article("読者なし", published=False, notify_subscribers=True)
    with django_capture_on_commit_callbacks(execute=True):
        publishing.publish_article(article)
    mailing = Mailing.objects.get()
    assert mailing.status == "draft"
    assert "購読者がいません" in mailing.status_changes.last().note
