"""Helpers the tests share: factories of readers and content, a free port, waiting for mail in
the catcher, the phone-width check. Fixtures live in the conftest.py files.
"""

import socket
import time
from datetime import datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from django.utils import timezone
from playwright.sync_api import expect

from merumaga.delivery.catcher import list_messages, read_message
from merumaga.mailings import services as mailing_services
from merumaga.mailings.models import Mailing
from merumaga.publishing import services as publishing_services
from merumaga.publishing.models import Article, Event, Report, Status
from merumaga.subscribers.models import ConsentRecord, Subscriber, Subscription, Topic

ALL_TOPICS = ["weekly", "articles", "reports", "events"]
TOKYO = ZoneInfo("Asia/Tokyo")


def make_subscriber(
    email="reader@example.jp", status=Subscriber.Status.CONFIRMED, topics=ALL_TOPICS, **fields
) -> Subscriber:
    subscriber = Subscriber.objects.create(email=email, status=status, **fields)
    for topic in Topic.objects.filter(key__in=topics):
        Subscription.objects.create(subscriber=subscriber, topic=topic)
    ConsentRecord.objects.create(
        subscriber=subscriber, email=email, action="subscribe", source="admin", topics=list(topics)
    )
    return subscriber


def subscribed_keys(subscriber: Subscriber) -> set[str]:
    return set(
        Subscription.objects.filter(subscriber=subscriber, subscribed=True).values_list(
            "topic__key", flat=True
        )
    )


def make_article(title="記事", published=True, **fields) -> Article:
    article = Article(
        title=title,
        digest=fields.pop("digest", "要約の文章。"),
        body=fields.pop("body", "本文。"),
        status=Status.PUBLISHED if published else Status.DRAFT,
        published_at=fields.pop("published_at", timezone.now() if published else None),
        **fields,
    )
    publishing_services.prepare_article(article)
    article.save()
    return article


def make_report(title="レポート", published=True, **fields) -> Report:
    report = Report(
        title=title,
        summary=fields.pop("summary", "概要。"),
        pdf=fields.pop("pdf", "reports/demo.pdf"),
        status=Status.PUBLISHED if published else Status.DRAFT,
        published_at=timezone.now() if published else None,
        **fields,
    )
    publishing_services.prepare_report(report)
    report.save()
    return report


def make_event(**fields) -> Event:
    """A published event a week from now, 14:00–16:00 Japan time, unless told otherwise."""
    day = (timezone.now() + timedelta(days=7)).astimezone(TOKYO).date()
    starts_at = datetime(day.year, day.month, day.day, 14, 0, tzinfo=TOKYO)
    defaults = {
        "title": "政策セミナー",
        "description": "## 概要\n\n最新の**研究成果**を紹介します。",
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(hours=2),
        "venue": "東京都千代田区 会議室A",
        "capacity": 5,
        "status": Event.EventStatus.PUBLISHED,
        "published_at": timezone.now(),
    }
    event = publishing_services.prepare_event(Event(**{**defaults, **fields}))
    event.save()
    return event


def make_seminar(**fields) -> Event:
    """A published event ten days from now, made directly (slug "seminar"): the mail tests'
    event."""
    starts = timezone.now() + timedelta(days=10)
    return Event.objects.create(
        title="公開セミナー",
        slug="seminar",
        starts_at=starts,
        ends_at=starts + timedelta(hours=2),
        venue="東京",
        status="published",
        published_at=timezone.now(),
        description="**説明**",
        **fields,
    )


KINDS = ["weekly", "article", "report", "event_invitation", "event_reminder", "custom"]


def mailing_of(kind: str) -> Mailing:
    if kind == "weekly":
        make_article(
            "週報の記事",
            published_at=timezone.now() - timedelta(days=1),
            source_name="架空新聞",
            source_detail="12月号",
        )
        return mailing_services.compose_weekly().mailing
    if kind == "article":
        return mailing_services.compose_for_article(
            make_article("通知する記事", source_name="架空新聞")
        )
    if kind == "report":
        return mailing_services.compose_for_report(make_report("コンパクト版レポート"))
    if kind == "event_invitation":
        return mailing_services.compose_event_invitation(make_seminar())
    if kind == "event_reminder":
        return mailing_services.compose_event_reminder(make_seminar())
    return Mailing.objects.create(
        kind="custom",
        topic=Topic.objects.get(key="articles"),
        subject="お知らせ",
        intro="年末年始の休業について",
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_mail(directory, count: int = 1, timeout: float = 10.0) -> EmailMessage:
    """The newest mail in the catcher's Maildir once it holds `count`; fails after `timeout`.
    For a mail a server sends from another thread or process (the browser tests)."""
    deadline = time.monotonic() + timeout
    total = 0
    while time.monotonic() < deadline:
        messages, total = list_messages(directory)
        if total >= count:
            return read_message(directory, messages[0].key)  # newest first
        time.sleep(0.1)
    raise AssertionError(f"expected {count} mails in the catcher, found {total}")


def assert_fits_the_phone(page) -> None:
    """No sideways scrolling on a 375 px wide screen."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def log_in(page, live_server, username: str, password: str) -> None:
    """Log in to the admin in the browser test's page."""
    page.goto(f"{live_server.url}/admin/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.locator("input[type=submit]").click()
    expect(page.locator("#user-tools")).to_contain_text(username)
