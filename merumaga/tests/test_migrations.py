import io

import pytest
from django.core.management import call_command

from merumaga.subscribers.models import Topic


@pytest.mark.django_db
def test_models_and_migrations_agree():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_the_four_mailings_exist_after_migrating():
    assert list(Topic.objects.values_list("key", flat=True)) == [
        "weekly",
        "articles",
        "reports",
        "events",
    ]


def migrate(targets):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_reports_and_events_waiting_before_the_notify_choice_keep_being_announced():
    from datetime import timedelta

    from django.utils import timezone

    old = migrate([("publishing", "0003_event_reminder_days")])
    Report, Event = old.get_model("publishing", "Report"), old.get_model("publishing", "Event")
    Report.objects.create(title="下書き", slug="draft", summary="s", pdf="a.pdf", status="draft")
    Report.objects.create(
        title="公開済み", slug="out", summary="s", pdf="b.pdf", status="published"
    )
    starts = timezone.now() + timedelta(days=9)
    Event.objects.create(
        title="予定", slug="e", starts_at=starts, ends_at=starts + timedelta(hours=1)
    )
    new = migrate([("publishing", "0005_notify_what_was_waiting")])
    notify = dict(
        new.get_model("publishing", "Report").objects.values_list("slug", "notify_subscribers")
    )
    assert notify == {"draft": True, "out": False}
    assert new.get_model("publishing", "Event").objects.get().notify_subscribers
    migrate(latest())


@pytest.mark.django_db(transaction=True)
def test_weekly_reports_waiting_side_by_side_are_folded_into_the_newest_and_nothing_lost():
    from django.utils import timezone

    old = migrate([("mailings", "0001_initial")])
    Mailing = old.get_model("mailings", "Mailing")
    MailingArticle = old.get_model("mailings", "MailingArticle")
    Article = old.get_model("publishing", "Article")
    Topic = old.get_model("subscribers", "Topic")
    weekly = Topic.objects.get(key="weekly")
    articles = [
        Article.objects.create(
            title=f"記事{n}", slug=f"a{n}", status="published", published_at=timezone.now()
        )
        for n in range(3)
    ]
    older = Mailing.objects.create(kind="weekly", topic=weekly, subject="古い", status="draft")
    newer = Mailing.objects.create(kind="weekly", topic=weekly, subject="新しい", status="draft")
    MailingArticle.objects.create(mailing=older, article=articles[0], position=0)
    MailingArticle.objects.create(mailing=older, article=articles[1], position=1)
    MailingArticle.objects.create(mailing=newer, article=articles[1], position=0)
    MailingArticle.objects.create(mailing=newer, article=articles[2], position=1)

    new = migrate([("mailings", "0002_one_unsent_weekly")])
    Mailing = new.get_model("mailings", "Mailing")
    assert Mailing.objects.get(pk=older.pk).status == "cancelled"
    assert Mailing.objects.get(pk=newer.pk).status == "draft"
    held = new.get_model("mailings", "MailingArticle").objects.filter(mailing_id=newer.pk)
    assert sorted(held.values_list("article__slug", flat=True)) == ["a0", "a1", "a2"]
    note = new.get_model("mailings", "StatusChange").objects.get(mailing_id=older.pk).note
    assert f"merged into weekly report {newer.pk}" in note
    migrate(latest())


def latest():
    """Every app's last migration: where each test leaves the database."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_the_address_hashes_are_filled_in_one_statement_as_the_model_makes_them():
    from merumaga.subscribers.models import address_hash

    old = migrate([("subscribers", "0002_topics")])
    Subscriber = old.get_model("subscribers", "Subscriber")
    Subscriber.objects.create(email="taro.yamada+news@example.co.jp", status="confirmed")
    Subscriber.objects.create(email=None, status="erased")
    new = migrate([("subscribers", "0003_subscriber_address_hash")])
    hashes = dict(
        new.get_model("subscribers", "Subscriber").objects.values_list("email", "address_hash")
    )
    assert hashes == {
        "taro.yamada+news@example.co.jp": address_hash("taro.yamada+news@example.co.jp"),
        None: "",
    }
    migrate(latest())
