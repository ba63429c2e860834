"""The delivery engine end to end: snapshot, claim, render, send to an SMTP server, record.

Transactional: the worker uses the database from its own thread, which sees committed data only.
"""

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from merumaga.delivery import queue
from merumaga.delivery.faultserver import start_fault_server
from merumaga.delivery.models import Delivery
from merumaga.delivery.worker import Options, Worker, run_until_idle
from merumaga.mailings import services
from merumaga.mailings.models import Mailing
from merumaga.publishing.models import ArchivedMailing
from merumaga.publishing.tests.factories import make_article
from merumaga.subscribers import services as subscriber_services
from merumaga.subscribers.models import Suppression, address_hash
from merumaga.subscribers.tests.factories import make_subscriber

pytestmark = pytest.mark.django_db(transaction=True)
Status = Delivery.Status


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def relay(settings):
    """A fault server as the only relay; rules are set per test on `relay.handler.rules`."""
    port = free_port()
    controller = start_fault_server(port)
    settings.SMTP_RELAYS = f"smtp://127.0.0.1:{port}?connections=4"
    yield controller
    controller.stop()


@pytest.fixture
def weekly():
    make_article("今週の記事", published_at=timezone.now() - timedelta(days=1))
    return services.compose_weekly().mailing


def fast_options(**overrides):
    return {"batch_size": 50, "first_retry": timedelta(seconds=0), **overrides}


def test_every_subscribed_reader_gets_it_once_and_the_counts_add_up(relay, weekly):
    for n in range(120):
        make_subscriber(f"reader{n}@example.jp", charset="iso-2022-jp" if n % 4 else "utf-8")
    make_subscriber("no-weekly@example.jp", topics=["articles"])
    make_subscriber("pending@example.jp", status="pending")
    make_subscriber("bounced@example.jp")
    Suppression.objects.create(
        address_hash=address_hash("bounced@example.jp"), reason="hard_bounce"
    )
    services.start(weekly)

    worker = run_until_idle(**fast_options())

    handler = relay.handler
    assert handler.count == 120 == worker.sent
    assert set(handler.per_recipient.values()) == {1}  # nobody twice
    assert "no-weekly@example.jp" not in handler.per_recipient
    assert "bounced@example.jp" not in handler.per_recipient
    counts = queue.counts(weekly.pk)
    assert counts["total"] == counts[Status.SENT] == 120
    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.SENT and weekly.recipients == 120
    assert weekly.sent == 120 and weekly.audience_frozen_at
    assert ArchivedMailing.objects.filter(title=weekly.subject).exists()
    mail_from, _recipient, data = handler.accepted[0]
    assert mail_from.startswith("bounce+") and b"List-Unsubscribe-Post" in data


def test_an_opt_out_or_suppression_after_the_snapshot_wins(relay, weekly):
    stays = make_subscriber("stays@example.jp")
    leaves = make_subscriber("leaves@example.jp")
    bounced = make_subscriber("bounced@example.jp")
    services.start(weekly)
    assert queue.freeze_audience(weekly) and queue.counts(weekly.pk)["total"] == 3
    subscriber_services.unsubscribe(leaves, "weekly", subscriber_services.Evidence(source="form"))
    Suppression.objects.create(address_hash=bounced.address_hash, reason="hard_bounce")

    run_until_idle(**fast_options())

    assert set(relay.handler.per_recipient) == {stays.email}
    counts = queue.counts(weekly.pk)
    assert (counts[Status.SENT], counts[Status.SKIPPED], counts["total"]) == (1, 2, 3)


def test_smtp_answers_are_recorded_as_sent_deferred_or_failed(relay, weekly):
    relay.handler.rules = {"unknown@example.jp": "550", "busy@example.jp": "450"}
    for email in ("ok@example.jp", "unknown@example.jp", "busy@example.jp"):
        make_subscriber(email)
    services.start(weekly)

    run_until_idle(**fast_options(first_retry=timedelta(hours=1)))

    rows = {d.subscriber.email: d for d in Delivery.objects.select_related("subscriber")}
    assert rows["ok@example.jp"].status == Status.SENT
    assert rows["unknown@example.jp"].status == Status.FAILED
    assert rows["unknown@example.jp"].reply.startswith("550")
    assert rows["busy@example.jp"].status == Status.DEFERRED
    assert rows["busy@example.jp"].available_at > timezone.now() + timedelta(minutes=50)
    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.SENDING  # not done while a retry is pending


def test_a_deferred_mail_is_retried_then_failed_after_the_last_attempt(relay, weekly):
    relay.handler.rules = {"busy@example.jp": "451"}
    make_subscriber("busy@example.jp")
    services.start(weekly)
    run_until_idle(**fast_options(max_attempts=3))
    row = Delivery.objects.get()
    assert row.status == Status.FAILED and row.attempts == 3
    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.SENT  # every row final: the mailing is done


def test_pause_stops_and_resume_goes_on(relay, weekly):
    for n in range(5):
        make_subscriber(f"r{n}@example.jp")
    services.start(weekly)
    services.pause(weekly)
    run_until_idle(**fast_options())
    assert relay.handler.count == 0
    services.resume(weekly)
    run_until_idle(**fast_options())
    assert relay.handler.count == 5


def test_cancel_marks_the_rest_cancelled(relay, weekly):
    for n in range(5):
        make_subscriber(f"r{n}@example.jp")
    services.start(weekly)
    queue.freeze_audience(weekly)
    services.cancel(weekly)
    queue.cancel_remaining(weekly)
    run_until_idle(**fast_options())
    assert relay.handler.count == 0
    assert queue.counts(weekly.pk)[Status.CANCELLED] == 5


def test_rows_of_a_worker_that_died_are_taken_again_when_the_lease_runs_out(relay, weekly):
    for n in range(4):
        make_subscriber(f"r{n}@example.jp")
    services.start(weekly)
    queue.freeze_audience(weekly)
    dead = queue.claim(weekly.pk, "dead-worker", 10, timedelta(seconds=-1))  # lease already over
    assert len(dead) == 4
    run_until_idle(**fast_options())
    assert relay.handler.count == 4
    assert set(Delivery.objects.values_list("status", flat=True)) == {Status.SENT}


def test_too_many_errors_pause_the_mailing(relay, weekly):
    relay.handler.rules = {f"r{n}@example.jp": "554" for n in range(30)}
    for n in range(30):
        make_subscriber(f"r{n}@example.jp")
    services.start(weekly)
    run_until_idle(Worker(options=Options(**fast_options(error_window=20, error_threshold=0.5))))
    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.PAUSED
    assert "too many errors" in weekly.status_changes.last().note


def test_the_simple_counts_line(relay, weekly):
    from io import StringIO

    from django.core.management import call_command

    make_subscriber()
    services.start(weekly)
    run_until_idle(**fast_options())
    out = StringIO()
    call_command("mailing", "status", str(weekly.pk), stdout=out)
    assert out.getvalue().strip() == (
        "status=sent total=1 queued=0 sending=0 sent=1 deferred=0 failed=0 skipped=0 cancelled=0"
    )


def test_the_admin_shows_progress_and_errors_by_reason(relay, weekly, admin_client):
    relay.handler.rules = {"unknown@example.jp": "550"}
    make_subscriber("ok@example.jp")
    make_subscriber("unknown@example.jp")
    services.start(weekly)
    run_until_idle(**fast_options())
    page = admin_client.get(f"/admin/mail/progress/{weekly.pk}/").content.decode()
    assert "2 / 2" in page and "100%" in page
    assert "550" in page and "No such user" in page
    change = admin_client.get(f"/admin/mailings/mailing/{weekly.pk}/change/").content.decode()
    assert f"/admin/mail/progress/{weekly.pk}/" in change


def test_a_mailing_waiting_for_retries_does_not_hold_back_the_next(relay, weekly):
    relay.handler.rules = {"busy@example.jp": "450"}
    make_subscriber("busy@example.jp")
    services.start(weekly)
    run_until_idle(**fast_options(first_retry=timedelta(hours=1)))  # its one row now waits
    assert queue.counts(weekly.pk)[Status.DEFERRED] == 1

    later = Mailing.objects.create(kind="custom", topic=weekly.topic, subject="お知らせ")
    services.start(later)
    run_until_idle(**fast_options())

    later.refresh_from_db()
    assert later.status == Mailing.Status.SENT
    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.SENDING


def test_iso_2022_jp_readers_who_get_utf8_are_counted_in_the_log(relay, weekly, caplog):
    for n in range(3):
        make_subscriber(f"keitai{n}@docomo.ne.jp", charset="iso-2022-jp", name=f"髙橋{n}")
    make_subscriber("plain@docomo.ne.jp", charset="iso-2022-jp", name="高橋")
    make_subscriber("pc@example.jp", name="﨑山")
    services.start(weekly)

    run_until_idle(**fast_options())

    [line] = [r.getMessage() for r in caplog.records if "got UTF-8" in r.getMessage()]
    assert f"mailing {weekly.pk}: 3 readers who chose ISO-2022-JP got UTF-8, because of 髙" in line
