import io
import socket
from email import message_from_bytes, policy

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from merumaga.delivery.catcher import list_messages, raw_message
from merumaga.demo import ARTICLES, READERS
from merumaga.mailings.models import Click, Mailing
from merumaga.outcomes import figures
from merumaga.publishing.models import Article, Event, Report
from merumaga.subscribers.models import ConsentRecord, Subscriber
from merumaga.testing import free_port


@pytest.mark.django_db(transaction=True)  # the demo mailings go out from the worker's thread
def test_setup_creates_an_admin_once_and_loads_demo_readers_once(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MAILCATCHER_DIR = tmp_path / "mail"
    settings.MAILCATCHER_PORT = free_port()
    out = io.StringIO()
    call_command("setup", stdout=out)
    assert "password '" in out.getvalue()
    assert get_user_model().objects.filter(username="admin", is_superuser=True).exists()
    # The roles, with their permissions (a flushed test database has none before this).
    from django.contrib.auth.models import Group

    from merumaga.team.roles import ROLES, WRITER

    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)
    assert Group.objects.get(name=WRITER).permissions.filter(codename="add_article").exists()
    # One demo reader left through the weekly report's link (below).
    assert Subscriber.objects.filter(status="confirmed").count() == len(READERS) - 1 >= 12
    assert ConsentRecord.objects.filter(source="demo").count() == len(READERS)
    assert (tmp_path / "static" / "merumaga" / "site.css").exists()
    assert Article.objects.published().count() == len(ARTICLES) >= 3
    assert all(article.source_name and article.digest for article in Article.objects.all())
    report = Report.objects.published().get()
    assert (tmp_path / "media" / report.pdf.name).read_bytes().startswith(b"%PDF-")
    assert Event.objects.filter(status="published").count() == 1
    # The demo mailings went out for real, to the catcher, and readers acted on them.
    assert "demo mailings sent to the mail catcher" in out.getvalue()
    weekly = Mailing.objects.get(kind="weekly")
    found = figures.mailing_figures(weekly)
    # Every weekly reader, but perhaps not nosuchuser@ if an earlier demo mailing's bounce has
    # already suppressed them.
    weekly_readers = Subscriber.objects.filter(subscription__topic__key="weekly").count()
    assert weekly_readers - 1 <= found.sent <= weekly_readers
    assert list_messages(tmp_path / "mail")[1] >= found.sent
    assert found.clicks > 0 and found.unsubscribes == 1
    assert Click.objects.count() > 0
    # The demo weekly report is the magazine: 第1号, a preface, a 目次, fields first for Li Wei.
    assert weekly.issue_number == 1 and weekly.intro and weekly.grouping == "tag"
    caught = {}
    for message in list_messages(tmp_path / "mail", limit=500)[0]:
        parsed = message_from_bytes(
            raw_message(tmp_path / "mail", message.key), policy=policy.default
        )
        if parsed["Subject"] == weekly.subject:
            caught[parsed["To"]] = parsed.get_body(("plain",)).get_content()
    text = caught["sato.haruka@example.jp"]
    assert "第1号" in text and "■ 目次" in text and weekly.intro[:20] in text
    assert "関心分野" not in text  # chose none: the editor's order
    english = caught["li.wei@example.com"]  # in English, with 電池 first
    assert "no. 1" in english and "■ Contents" in english
    assert "Articles in your research fields (電池) come first." in english
    # The readers joined over two months, and each topic's chart agrees with everyone's.
    everyone = figures.reader_series()
    weekly_series = figures.topic_series("weekly")
    assert weekly_series[0].readers == everyone[0].readers == 0  # 90 days ago: nobody yet
    assert sum(day.joined for day in weekly_series) == weekly_readers
    assert len({day.day for day in weekly_series if day.joined}) > 1  # not all on one day
    assert weekly_series[-1].readers == weekly_readers - 1  # one left through the link

    again = io.StringIO()
    call_command("setup", stdout=again)
    assert "password" not in again.getvalue()
    assert get_user_model().objects.count() == 1
    assert Subscriber.objects.count() == len(READERS)
    assert Article.objects.count() == len(ARTICLES)


@pytest.mark.django_db(transaction=True)
def test_a_taken_catcher_port_leaves_the_demo_mailings_queued_and_says_so(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MAILCATCHER_DIR = tmp_path / "mail"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings.MAILCATCHER_PORT = taken.getsockname()[1]
        out = io.StringIO()
        call_command("setup", stdout=out)
    assert "demo mailings not sent at set-up: the mail catcher's port" in out.getvalue()
    assert Article.objects.published().count() == len(ARTICLES)  # the rest is set up
    assert Mailing.objects.filter(status="sending").exists()  # waiting for the worker
