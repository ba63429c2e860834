"""The simple sending path, through real SMTP into the mail catcher."""

from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from django.utils import timezone

from merumaga.delivery.catcher import list_messages, raw_message
from merumaga.mailings import sending, services
from merumaga.mailings.models import Mailing, SentMessage
from merumaga.publishing.models import ArchivedMailing
from merumaga.publishing.tests.factories import make_article
from merumaga.subscribers.models import Suppression, address_hash
from merumaga.subscribers.tests.factories import make_subscriber

pytestmark = pytest.mark.django_db


def caught(maildir) -> dict[str, object]:
    messages, _ = list_messages(maildir, limit=1000)
    return {
        m.to[0]: message_from_bytes(raw_message(maildir, m.key), policy=policy.default)
        for m in messages
    }


@pytest.fixture
def weekly():
    make_article("今週の記事", published_at=timezone.now() - timedelta(days=1))
    return services.compose_weekly()


def test_the_weekly_reaches_every_subscribed_reader_and_no_one_else(
    mail_catcher, weekly, django_capture_on_commit_callbacks
):
    make_subscriber("all@example.jp")
    make_subscriber("no-weekly@example.jp", topics=["articles", "reports", "events"])
    make_subscriber("pending@example.jp", status="pending")
    make_subscriber("left@example.jp", status="unsubscribed")
    make_subscriber("bounced@example.jp")
    Suppression.objects.create(
        address_hash=address_hash("bounced@example.jp"), reason="hard_bounce"
    )
    make_subscriber("jis@example.ne.jp", charset="iso-2022-jp")

    with django_capture_on_commit_callbacks(execute=True):
        services.start(weekly)

    received = caught(mail_catcher)
    assert set(received) == {"all@example.jp", "jis@example.ne.jp"}
    assert received["all@example.jp"]["Return-Path"].startswith("<bounce+")
    assert (
        'charset="iso-2022-jp"'
        in received["jis@example.ne.jp"].get_body(("plain",))["Content-Type"]
    )
    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.SENT and weekly.finished_at
    assert (weekly.sent, weekly.failed, weekly.recipients) == (2, 0, 3)
    skipped = SentMessage.objects.get(subscriber__email="bounced@example.jp")
    assert not skipped.accepted and skipped.reply == "suppressed"
    archived = ArchivedMailing.objects.get()
    assert archived.title == weekly.subject and "今週の記事" in archived.html
    assert "all@example.jp" not in archived.html


def test_running_again_sends_nothing_twice(
    mail_catcher, weekly, django_capture_on_commit_callbacks
):
    for n in range(3):
        make_subscriber(f"r{n}@example.jp")
    with django_capture_on_commit_callbacks(execute=True):
        services.start(weekly)
    Mailing.objects.filter(pk=weekly.pk).update(status=Mailing.Status.SENDING)  # as after a crash
    sending.send_mailing(weekly.pk)
    assert list_messages(mail_catcher)[1] == 3


def test_a_paused_mailing_sends_nothing_until_resumed(
    mail_catcher, weekly, django_capture_on_commit_callbacks
):
    make_subscriber("wait@example.jp")
    services.start(weekly)  # the task is queued on commit, which has not come
    services.pause(weekly)
    sending.send_mailing(weekly.pk)
    assert list_messages(mail_catcher)[1] == 0
    with django_capture_on_commit_callbacks(execute=True):
        services.resume(weekly)
    assert list_messages(mail_catcher)[1] == 1


def test_an_opt_out_before_the_batch_wins(mail_catcher, weekly, django_capture_on_commit_callbacks):
    from merumaga.subscribers import services as subscriber_services

    stays = make_subscriber("stays@example.jp")
    leaves = make_subscriber("leaves@example.jp")
    services.start(weekly)
    subscriber_services.unsubscribe(leaves, "weekly", subscriber_services.Evidence(source="form"))
    sending.send_mailing(weekly.pk)
    assert set(caught(mail_catcher)) == {stays.email}


def test_two_editors_starting_at_once_send_once(mail_catcher, weekly):
    make_subscriber()
    services.start(weekly)
    with pytest.raises(services.MailingError):
        services.start(weekly)
    assert weekly.status_changes.filter(to_status="sending").count() == 1
