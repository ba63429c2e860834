"""Kept first, read after: what the bounce receiver stores is read by its readers (or the
periodic task), in batches, and one message that cannot be acted on does not stop the others."""

import functools

import pytest
from django.db import IntegrityError, OperationalError

from merumaga.bounces import services, tasks
from merumaga.bounces.classify import Recipient, Verdict
from merumaga.bounces.models import InboundMessage
from merumaga.delivery.catcher import unknown_user_dsn
from merumaga.subscribers.models import Suppression
from merumaga.subscribers.tokens import address_token
from merumaga.testing import make_subscriber

pytestmark = pytest.mark.django_db


def kept_bounces(*emails: str) -> list[InboundMessage]:
    inbound = []
    for email in emails:
        reader = make_subscriber(email)
        verp = f"bounce+{address_token('bounce', 0, reader.pk)}@bounces.example.jp"
        inbound.append(services.Inbound(unknown_user_dsn(verp, [email], b""), "smtp", "", (verp,)))
    return services.keep(inbound)


def test_what_was_kept_waits_unread_until_a_reader_reads_it():
    kept_bounces("gone@example.jp")
    assert InboundMessage.objects.get().kind == "received"
    assert not Suppression.objects.exists()  # nothing acted on yet

    assert services.read_waiting() == 1
    assert InboundMessage.objects.get().kind == "hard"
    assert Suppression.objects.count() == 1
    assert services.read_waiting() == 0


def test_the_periodic_task_reads_everything_left_waiting_in_batches(time_machine, monkeypatch):
    time_machine.move_to("2026-12-01 10:00:00+09:00", tick=False)
    kept_bounces(*[f"reader{n}@example.jp" for n in range(205)])
    time_machine.move_to("2026-12-01 10:03:00+09:00", tick=False)  # no reader took them
    monkeypatch.setattr(services, "read_waiting", functools.partial(services.read_waiting, 100))

    tasks.read_waiting_messages.call_local()

    assert not InboundMessage.objects.filter(kind="received").exists()
    assert Suppression.objects.count() == 205


def test_a_message_that_cannot_be_acted_on_is_set_aside_and_the_others_are_read(monkeypatch):
    kept_bounces("first@example.jp", "poison@example.jp", "last@example.jp")
    real_record_events = services.record_events

    def fail_on_poison(specs):
        if any(spec.address == "poison@example.jp" for spec in specs):
            raise RuntimeError("a bug met on one message")
        return real_record_events(specs)

    monkeypatch.setattr(services, "record_events", fail_on_poison)
    assert services.read_waiting() == 3

    kinds = dict(InboundMessage.objects.values_list("subscriber__email", "kind"))
    assert kinds == {
        "first@example.jp": "hard",
        "poison@example.jp": "quarantined",  # still linked to its reader: an erasure finds it
        "last@example.jp": "hard",
    }
    aside = InboundMessage.objects.get(kind="quarantined")
    assert (aside.rule, aside.note) == ("error:act:RuntimeError", "")  # nothing of the failed try
    assert Suppression.objects.count() == 2


def test_an_error_that_would_come_back_at_every_reading_sets_the_message_aside(monkeypatch):
    kept_bounces("gone@example.jp")

    def broken(specs):
        if specs:
            raise IntegrityError("NOT NULL constraint failed")  # not the database being away
        return []

    monkeypatch.setattr(services, "record_events", broken)
    assert services.read_waiting() == 1
    assert InboundMessage.objects.get().kind == "quarantined"
    assert services.read_waiting() == 0


def test_a_database_error_while_reading_leaves_the_message_waiting(monkeypatch):
    kept_bounces("gone@example.jp")

    def database_down(*args):
        raise OperationalError("database is locked")

    monkeypatch.setattr(services, "_read_and_act", database_down)
    assert services.read_waiting() == 0  # none read: the reader waits before trying again
    assert InboundMessage.objects.get().kind == "received"  # kept, to be read again

    monkeypatch.undo()
    assert services.read_waiting() == 1
    assert InboundMessage.objects.get().kind == "hard"


def test_two_copies_kept_apart_are_read_as_one_message_received_twice():
    reader = make_subscriber("gone@example.jp")
    verp = f"bounce+{address_token('bounce', 0, reader.pk)}@bounces.example.jp"
    dsn = unknown_user_dsn(verp, [reader.email], b"")
    services.keep([services.Inbound(dsn, "smtp", "", (verp,))])
    services.keep([services.Inbound(dsn, "smtp", "", (verp,))])  # the MTA retried

    services.read_waiting()

    message = InboundMessage.objects.get()
    assert (message.kind, message.times_received) == ("hard", 2)
    assert message.events.count() == 1


def test_a_reading_takes_no_more_messages_than_fit_in_its_memory_budget():
    kept = kept_bounces("a@example.jp", "b@example.jp", "c@example.jp")
    budget = kept[0].size + kept[1].size  # two fit, the third would not

    assert services.read_waiting(max_bytes=budget) == 2
    assert services.read_waiting(max_bytes=1) == 1  # one at least, however big
    assert not InboundMessage.objects.filter(kind="received").exists()


def test_a_second_copy_of_a_message_reusing_a_message_id_is_counted_on_it(settings):
    reader = make_subscriber("gone@example.jp")
    verp = f"bounce+{address_token('bounce', 0, reader.pk)}@bounces.example.jp"
    first = unknown_user_dsn(verp, [reader.email], b"").replace(
        b"MIME-Version", b"Message-ID: <same@mx.example>\r\nMIME-Version", 1
    )
    other = first.replace(b"MIME-Version", b"X-Other: yes\r\nMIME-Version", 1)
    for raw in (first, other, other):  # the second message, delivered twice
        services.keep([services.Inbound(raw, "smtp", "", (verp,))])
        services.read_waiting()

    rows = sorted(InboundMessage.objects.values_list("kind", "times_received"))
    assert rows == [("duplicate", 2), ("hard", 1)]
    assert services.read_waiting() == 0


def test_readers_read_their_own_share_of_what_waits():
    kept = kept_bounces(*[f"r{n}@example.jp" for n in range(4)])
    even = sorted(m.pk for m in kept if m.pk % 2 == 0)

    assert services.read_waiting(share=(0, 2)) == 2
    read = InboundMessage.objects.exclude(kind="received").values_list("pk", flat=True)
    assert sorted(read) == even


def test_the_periodic_task_leaves_fresh_messages_to_the_receivers_readers(time_machine):
    time_machine.move_to("2026-12-01 10:00:00+09:00", tick=False)
    kept_bounces("old@example.jp")
    time_machine.move_to("2026-12-01 10:05:00+09:00", tick=False)
    kept_bounces("new@example.jp")

    tasks.read_waiting_messages.call_local()

    assert list(InboundMessage.objects.order_by("pk").values_list("kind", flat=True)) == [
        "hard",  # the old one
        "received",  # the new one, for the receiver's readers
    ]


def test_a_verdict_read_elsewhere_is_kept_and_acted_on_together_or_not_at_all(monkeypatch):
    reader = make_subscriber("complainer@example.jp")

    def database_down(*args):
        raise OperationalError("database is locked")

    monkeypatch.setattr(services, "_read_and_act", database_down)
    verdict = Verdict(
        kind="complaint",
        rule="webhook",
        recipients=(Recipient(reader.email, "complaint", "", "", "feedback"),),
        message_id="evt-1",
    )
    with pytest.raises(OperationalError):  # the webhook answers 5xx: its sender retries
        services.receive_verdict(b'{"id": "evt-1"}', "webhook", verdict)
    assert not InboundMessage.objects.exists()
