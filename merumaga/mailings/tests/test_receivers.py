"""Publishing turns into mail: the article, report and event announcements."""

from datetime import timedelta

import pytest
from django.utils import timezone

from merumaga.mailings.models import Mailing
from merumaga.publishing import services as publishing
from merumaga.publishing.models import Event
from merumaga.publishing.tests.factories import make_article, make_report
from merumaga.subscribers.tests.factories import make_subscriber

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


def test_a_published_report_is_announced(django_capture_on_commit_callbacks):
    make_subscriber(topics=["reports"])
    report = make_report("新レポート", published=False)
    with django_capture_on_commit_callbacks(execute=True):
        publishing.publish_report(report)
    mailing = Mailing.objects.get()
    assert (mailing.kind, mailing.status) == ("report", "sending")


def test_a_published_event_sends_invitations(django_capture_on_commit_callbacks):
    make_subscriber(topics=["events"])
    starts = timezone.now() + timedelta(days=14)
    event = Event.objects.create(
        title="説明会", slug="briefing", starts_at=starts, ends_at=starts + timedelta(hours=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        publishing.publish_event(event)
    mailing = Mailing.objects.get()
    assert mailing.kind == "event_invitation" and mailing.status == "sending"


def test_an_announcement_that_fails_its_checks_stays_a_draft(django_capture_on_commit_callbacks):
    # Nobody subscribes to the articles topic: nothing to send, the draft waits in the admin.
    article = make_article("読者なし", published=False, notify_subscribers=True)
    with django_capture_on_commit_callbacks(execute=True):
        publishing.publish_article(article)
    assert Mailing.objects.get().status == "draft"
