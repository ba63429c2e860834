"""A mailing through the delivery engine to a server that refuses some readers at once (550) and
accepts others only to bounce them later (a DSN to the VERP address, through the bounce
receiver): exactly those readers end suppressed, and the next mailing skips them.

Transactional: the worker and the receiver use the database from their own threads.
"""

import smtplib
from datetime import timedelta

import pytest
from django.utils import timezone

from merumaga.bounces import services as bounce_services
from merumaga.bounces.models import BounceEvent
from merumaga.delivery import queue
from merumaga.delivery.catcher import unknown_user_dsn
from merumaga.delivery.models import Delivery
from merumaga.delivery.worker import run_until_idle
from merumaga.mailings import services
from merumaga.subscribers.models import Suppression
from merumaga.subscribers.tokens import address_token
from merumaga.testing import make_article, make_subscriber

pytestmark = pytest.mark.django_db(transaction=True)


def weekly_with_new_article(title: str):
    make_article(title, published_at=timezone.now() - timedelta(minutes=5))
    return services.compose_weekly().mailing


def test_refused_and_later_bounced_readers_are_suppressed_and_skipped_next_time(
    relay, receiver_port
):
    readers = [make_subscriber(f"reader{n}@example.jp") for n in range(12)]
    refused = {"reader1@example.jp", "reader2@example.jp"}
    bounced_later = {"reader3@example.jp", "reader4@example.jp"}
    content_refused = "reader5@example.jp"  # 554 5.7.1 at DATA: the message, not the reader
    relay.handler.rules = {address: "550" for address in refused} | {content_refused: "data:554"}
    first = weekly_with_new_article("第1週の記事")
    services.start(first)

    run_until_idle(batch_size=5, first_retry=timedelta(0))

    failed = Delivery.objects.filter(mailing=first, status=Delivery.Status.FAILED)
    assert {d.subscriber.email for d in failed} == refused | {content_refused}
    # The content refusal is ours, not the reader's: tried again each time (first_retry 0 here)
    # until the attempts ran out.
    assert Delivery.objects.get(mailing=first, subscriber__email=content_refused).attempts == 8
    # The receiving servers of the "later" readers send their DSNs to the VERP return path.
    with smtplib.SMTP("127.0.0.1", receiver_port) as client:
        for mail_from, recipient, content in relay.handler.accepted:
            if recipient in bounced_later:
                assert mail_from.endswith("@bounces.example.jp")
                client.sendmail("", [mail_from], unknown_user_dsn(mail_from, [recipient], content))
    bounce_services.read_waiting()  # the receiver's readers

    suppressed = set(Suppression.objects.values_list("address_hash", flat=True))
    expected = {r.address_hash for r in readers if r.email in refused | bounced_later}
    assert suppressed == expected
    events = BounceEvent.objects.filter(mailing=first)
    assert sorted(events.values_list("source", "kind", "outcome")) == [
        ("smtp", "hard", "suppressed"),
        ("smtp", "hard", "suppressed"),
        ("smtp_reply", "hard", "suppressed"),
        ("smtp_reply", "hard", "suppressed"),
        # The content refusal is ours: on record for the domain at each attempt, never
        # against the reader.
        *[("smtp_reply", "sender", "not_counted")] * 8,
    ]

    relay.handler.per_recipient.clear()
    second = weekly_with_new_article("第2週の記事")
    services.start(second)
    run_until_idle(batch_size=5)

    received = set(relay.handler.per_recipient)
    assert received == {r.email for r in readers} - refused - bounced_later - {content_refused}
    assert queue.counts(second.pk)["total"] == 8  # reader5 is still a reader, refused again


def test_a_bounce_during_a_mailing_stops_the_rows_not_yet_sent(relay, receiver_port):
    readers = [make_subscriber(f"reader{n}@example.jp") for n in range(10)]
    mailing = weekly_with_new_article("記事")
    services.start(mailing)
    queue.freeze_audience(mailing)  # the audience is fixed; nothing sent yet
    late = readers[7]
    # Its bounce for last week's mailing arrives now, to that mailing's VERP address.
    verp = f"bounce+{address_token('bounce', 1, late.pk)}@bounces.example.jp"
    dsn = unknown_user_dsn(verp, [late.email], b"")
    with smtplib.SMTP("127.0.0.1", receiver_port) as client:
        client.sendmail("", [verp], dsn)
    bounce_services.read_waiting()  # the receiver's readers

    run_until_idle(batch_size=5)

    row = Delivery.objects.get(mailing=mailing, subscriber=late)
    assert row.status == Delivery.Status.SKIPPED
    assert late.email not in relay.handler.per_recipient
    assert len(relay.handler.per_recipient) == 9
