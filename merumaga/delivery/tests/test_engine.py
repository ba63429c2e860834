"""The delivery engine end to end: snapshot, claim, render, send to an SMTP server, record.

Transactional: the worker uses the database from its own thread, which sees committed data only.
"""

import re
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from django.utils import timezone

from merumaga.delivery import queue
from merumaga.delivery.models import Delivery
from merumaga.delivery.worker import Options, Worker, run_until_idle
from merumaga.mailings import rendering, services
from merumaga.mailings.models import Click, Link, Mailing
from merumaga.publishing import services as publishing_services
from merumaga.publishing.models import ArchivedMailing, Tag
from merumaga.subscribers import services as subscriber_services
from merumaga.subscribers.models import Suppression, address_hash
from merumaga.testing import make_article, make_subscriber

pytestmark = pytest.mark.django_db(transaction=True)
Status = Delivery.Status


@pytest.fixture
def weekly():
    make_article("今週の記事", published_at=timezone.now() - timedelta(days=1))
    return services.compose_weekly().mailing


def fast_options(**overrides):
    return {
        "batch_size": 50,
        "first_retry": timedelta(seconds=0),
        "trouble_delay": 0.0,
        **overrides,
    }


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


# One bad mailing is set aside; everything else goes on.


def custom_mailing(subject: str) -> Mailing:
    from merumaga.subscribers.models import Topic

    return Mailing.objects.create(
        kind=Mailing.Kind.CUSTOM, topic=Topic.objects.get(key="weekly"), subject=subject
    )


def test_a_mailing_whose_template_raises_is_paused_and_the_next_one_still_goes(
    relay, weekly, monkeypatch
):
    from merumaga.mailings import rendering

    for n in range(30):
        make_subscriber(f"reader{n}@example.jp")
    broken = custom_mailing("壊れたテンプレート")
    services.start(broken)  # started first: claimed first
    services.start(weekly)
    compile_mailing = rendering.compile_mailing

    def failing_for_one(mailing, language, **kwargs):
        if mailing.pk == broken.pk:
            raise RuntimeError("TemplateSyntaxError in custom_body.html line 3")
        return compile_mailing(mailing, language, **kwargs)

    monkeypatch.setattr(rendering, "compile_mailing", failing_for_one)

    run_until_idle(**fast_options())

    weekly.refresh_from_db()
    broken.refresh_from_db()
    assert weekly.status == Mailing.Status.SENT and relay.handler.count == 30
    assert broken.status == Mailing.Status.PAUSED
    note = broken.status_changes.last().note
    assert "一時停止しました" in note and "TemplateSyntaxError in custom_body.html" in note
    # Its rows were given back, not left leased: resumed, they go at once.
    rows = Delivery.objects.filter(mailing=broken)
    assert rows.count() == 30 and set(rows.values_list("status", flat=True)) == {Status.QUEUED}
    assert set(rows.values_list("attempts", flat=True)) == {0}

    monkeypatch.setattr(rendering, "compile_mailing", compile_mailing)
    services.resume(broken)
    run_until_idle(**fast_options())
    broken.refresh_from_db()
    assert broken.status == Mailing.Status.SENT and relay.handler.count == 60


def test_addresses_that_cannot_be_built_fail_one_by_one_and_do_not_pause_the_mailing(relay, weekly):
    from merumaga.subscribers.models import Subscriber

    for n in range(250):  # stored before such addresses were refused at the door
        make_subscriber(f"読者{n}@example.jp")
    for n in range(10):
        make_subscriber(f"ok{n}@example.jp")
    services.start(weekly)

    run_until_idle(**fast_options(batch_size=100))

    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.SENT and relay.handler.count == 10
    failed = Delivery.objects.filter(mailing=weekly, status=Status.FAILED)
    assert failed.count() == 250
    assert "non-ASCII" in failed.first().reply
    assert Subscriber.objects.count() == 260


def test_a_failed_record_is_tried_again_and_nothing_is_sent_twice(relay, weekly, monkeypatch):
    from django.db import OperationalError

    for n in range(20):
        make_subscriber(f"reader{n}@example.jp")
    services.start(weekly)
    record = queue.record
    calls = []

    def stumbling(results, worker):
        calls.append(len(results))
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return record(results, worker)

    monkeypatch.setattr(queue, "record", stumbling)

    run_until_idle(**fast_options(idle_sleep=0))

    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.SENT and len(calls) == 2
    assert set(relay.handler.per_recipient.values()) == {1}


def test_the_worker_outlives_a_database_that_fails_for_a_while(relay, weekly, monkeypatch):
    from django.db import OperationalError

    from merumaga.delivery.worker import Worker

    make_subscriber("reader@example.jp")
    services.start(weekly)
    claim_next = Worker._claim_next
    failures = iter([OperationalError("server closed the connection")] * 2)

    def flaky(self):
        error = next(failures, None)
        if error:
            raise error
        return claim_next(self)

    monkeypatch.setattr(Worker, "_claim_next", flaky)

    run_until_idle(**fast_options(idle_sleep=0))

    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.SENT and relay.handler.count == 1


def test_a_sent_mailing_whose_archive_copy_fails_says_so_and_stays_sent(relay, weekly, monkeypatch):
    from merumaga.delivery import worker

    make_subscriber("reader@example.jp")
    services.start(weekly)

    def broken_archive(mailing):
        raise RuntimeError("no space left on device")

    monkeypatch.setattr(worker, "archive", broken_archive)

    run_until_idle(**fast_options())

    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.SENT
    assert "archive copy failed" in weekly.status_changes.last().note


def test_a_mailing_that_stumbles_once_on_the_database_is_not_paused(relay, weekly, monkeypatch):
    from django.db import OperationalError

    for n in range(10):
        make_subscriber(f"reader{n}@example.jp")
    services.start(weekly)
    claim = queue.claim
    calls = []

    def locked_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return claim(*args, **kwargs)

    monkeypatch.setattr(queue, "claim", locked_once)

    run_until_idle(**fast_options())

    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.SENT and relay.handler.count == 10
    assert not weekly.status_changes.filter(to_status=Mailing.Status.PAUSED).exists()


def test_links_in_the_mail_as_sent_are_counted_when_clicked(relay, weekly, client):
    make_subscriber("reader@example.jp")
    services.start(weekly)
    run_until_idle(**fast_options())

    [(_, _, data)] = relay.handler.accepted
    text = message_from_bytes(data, policy=policy.default).get_body(("plain",)).get_content()
    article = weekly.articles.get()
    [path] = {
        match
        for match in re.findall(r"http://localhost:8000(/c/\S+/)", text)
        if Link.objects.get(pk=int(match.split("/")[2].split("-")[0])).article == article
    }
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"http://localhost:8000{article.get_absolute_url()}"
    assert Click.objects.filter(link__mailing=weekly, subscriber=None).count() == 1


TAGS = (("AI", "ai"), ("電池", "battery"), ("自動運転", "driving"))


def test_the_worker_renders_one_body_per_choice_of_research_fields(relay, monkeypatch):
    compiled = []
    compile_mailing = rendering.compile_mailing

    def counted(mailing, language, **options):
        if options.get("track"):  # as sent to readers (not the checks' or the archive's copy)
            compiled.append((language, options.get("interests")))
        return compile_mailing(mailing, language, **options)

    monkeypatch.setattr(rendering, "compile_mailing", counted)
    tags = {name: Tag.objects.create(name=name, slug=slug) for name, slug in TAGS}
    day = timezone.now() - timedelta(days=1)
    for minutes, title, tag in (
        (1, "電池の新工場が稼働", "電池"),
        (2, "大規模言語モデルの公開が続く", "AI"),
        (3, "無人タクシーが黒字に", "自動運転"),
        (4, "AIチップの輸出規制", "AI"),
    ):
        make_article(title, published_at=day + timedelta(minutes=minutes)).tags.add(tags[tag])
    weekly = services.compose_weekly().mailing
    readers = [make_subscriber(f"r{n}@example.jp") for n in range(6)]
    for reader in readers[:2]:
        publishing_services.set_reader_interests(reader.pk, [tags["自動運転"].pk])
    for reader in readers[2:4]:
        publishing_services.set_reader_interests(reader.pk, [tags["AI"].pk, tags["電池"].pk])
    services.start(weekly)
    run_until_idle(**fast_options())
    ai_battery = frozenset({tags["AI"].pk, tags["電池"].pk})
    driving = frozenset({tags["自動運転"].pk})
    # One body per language and choice, compiled once each: {自動運転}, {AI, 電池}, none.
    assert len(compiled) == 3
    assert set(compiled) == {("ja", driving), ("ja", ai_battery), ("ja", frozenset())}
    firsts, lasts = {}, {}
    for _sender, recipient, data in relay.handler.accepted:
        text = message_from_bytes(data, policy=policy.default).get_body(("plain",)).get_content()
        firsts[recipient] = re.search(r"【1】(\S+)", text)[1]
        lasts[recipient] = re.findall(r"【\d】(\S+)", text)[-1]
    assert firsts["r0@example.jp"] == firsts["r1@example.jp"] == "無人タクシーが黒字に"
    assert firsts["r2@example.jp"] == firsts["r3@example.jp"] == "AIチップの輸出規制"
    assert firsts["r5@example.jp"] == "AIチップの輸出規制"  # no fields: the editor's order
    # AI and 電池 first (AIチップ, 言語モデル, 電池工場), then 無人タクシー.
    assert lasts["r2@example.jp"] == "無人タクシーが黒字に"
