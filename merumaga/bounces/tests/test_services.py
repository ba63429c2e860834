"""Acting on what came back: scores, suppression, complaints, mailed unsubscribes, lifting."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from merumaga.bounces import services
from merumaga.bounces.models import BounceEvent, BounceScore, InboundMessage, SuppressionChange
from merumaga.delivery.catcher import unknown_user_dsn
from merumaga.delivery.signals import DeliveryFailure
from merumaga.subscribers import services as subscriber_services
from merumaga.subscribers.models import ConsentRecord, Subscriber, Suppression, Topic, address_hash
from merumaga.subscribers.tokens import address_token
from merumaga.testing import make_subscriber, subscribed_keys

pytestmark = pytest.mark.django_db
Outcome = BounceEvent.Outcome


def verp(mailing_id: int, subscriber_id: int) -> str:
    return f"bounce+{address_token('bounce', mailing_id, subscriber_id)}@example.jp"


def dsn_for(subscriber: Subscriber, status: str = "5.1.1", mailing_id: int = 0) -> bytes:
    raw = unknown_user_dsn(verp(mailing_id, subscriber.pk), [subscriber.email], b"Subject: x")
    return raw.replace(b"Status: 5.1.1", f"Status: {status}".encode())


def is_suppressed(email: str) -> bool:
    return Suppression.objects.filter(address_hash=address_hash(email)).exists()


def receive_dsn(subscriber, status="5.1.1") -> InboundMessage:
    return services.receive(
        dsn_for(subscriber, status), "smtp", envelope_to=[verp(0, subscriber.pk)]
    )


def test_a_hard_bounce_suppresses_the_reader_and_says_why():
    reader = make_subscriber("gone@example.jp")
    message = receive_dsn(reader)

    assert message.kind == "hard" and message.subscriber == reader
    event = message.events.get()
    assert event.outcome == Outcome.SUPPRESSED and event.status == "5.1.1"
    assert event.rule == "dsn" and event.domain == "example.jp"
    suppression = Suppression.objects.get(address_hash=address_hash("gone@example.jp"))
    assert suppression.reason == Suppression.Reason.HARD_BOUNCE
    change = SuppressionChange.objects.get()
    assert change.event == event and change.user is None and "5.1.1" in change.reason


def dsn_saying(subscriber: Subscriber, status: str, diagnostic: str, action: str = "failed"):
    """A report about `subscriber` with the given Status, Diagnostic-Code and Action."""
    raw = (
        f"From: MAILER-DAEMON@mx.example.net\r\nMessage-ID: <{uuid.uuid4()}@mx.example.net>\r\n"
        "Subject: Delivery Status Notification\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
        'boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n'
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        f"Final-Recipient: rfc822; {subscriber.email}\r\nAction: {action}\r\n"
        f"Status: {status}\r\nDiagnostic-Code: smtp; {diagnostic}\r\n--b--\r\n"
    )
    return services.receive(raw.encode(), "smtp", envelope_to=[verp(0, subscriber.pk)])


@pytest.mark.parametrize(
    ("status", "diagnostic", "reason", "kind", "outcome"),
    [
        # The reader is gone: suppressed at once.
        ("5.1.1", "550 5.1.1 User unknown", "user_unknown", "hard", "suppressed"),
        ("5.1.2", "550 5.1.2 Host unknown", "host_unknown", "hard", "suppressed"),
        ("5.1.6", "550 5.1.6 Recipient has moved", "has_moved", "hard", "suppressed"),
        ("5.4.4", "Host or domain name not found", "host_unknown", "hard", "suppressed"),
        # Temporarily unable: scored, whatever the first digit says.
        ("5.2.2", "552 5.2.2 Mailbox full", "mailbox_full", "soft", "scored"),
        ("5.2.1", "550 5.2.1 Account disabled", "suspended", "soft", "scored"),
        ("4.4.7", "Retry timeout exceeded", "expired", "soft", "scored"),
        ("5.4.1", "No answer from host", "network_error", "soft", "scored"),
        ("4.7.0", "421 Too many concurrent connections", "too_many_connections", "soft", "scored"),
        ("5.3.0", "Local configuration error", "system_error", "soft", "scored"),
        ("5.0.0", "Delivery failed", "undefined", "soft", "scored"),
        # Ours: on record, never against the reader.
        ("5.7.1", "554 5.7.1 Client host blocked using zen.spamhaus.org", "blocked", "sender",
         "not_counted"),
        ("5.7.1", "550 5.7.1 Message rejected as spam", "spam_detected", "sender", "not_counted"),
        ("5.7.1", "550 5.7.1 Rejected by the recipient's filter", "filtered", "sender",
         "not_counted"),
        ("5.7.1", "550 5.7.1 Relaying denied", "policy_violation", "sender", "not_counted"),
        ("5.7.26", "550 5.7.26 DMARC policy of the sender domain", "auth_failure", "sender",
         "not_counted"),
        ("5.1.8", "553 5.1.8 Sender address rejected: Domain not found", "rejected", "sender",
         "not_counted"),
        ("5.6.0", "554 5.6.0 Malformed MIME header", "content_error", "sender", "not_counted"),
    ],
)  # fmt: skip
def test_the_reason_decides_what_happens_to_the_reader(status, diagnostic, reason, kind, outcome):
    reader = make_subscriber("reader@example.jp")
    message = dsn_saying(reader, status, diagnostic)
    event = message.events.get()
    assert (message.reason, event.reason, event.kind, event.outcome) == (
        reason,
        reason,
        kind,
        outcome,
    )
    assert is_suppressed(reader.email) == (outcome == "suppressed")


@pytest.mark.parametrize(("action", "reason"), [("delayed", "delayed"), ("delivered", "delivered")])
def test_delay_and_delivery_notices_are_recorded_and_never_a_bounce(action, reason):
    reader = make_subscriber("reader@example.jp")
    message = dsn_saying(reader, "4.4.1", "No answer yet", action=action)
    assert (message.kind, message.reason, message.subscriber) == ("notice", reason, reader)
    assert not message.events.exists() and not BounceScore.objects.exists()


def test_a_suspended_mailbox_is_gone_once_it_stays_suspended_past_the_grace(settings, time_machine):
    settings.BOUNCE_SUSPENDED_GRACE_DAYS = 14
    reader = make_subscriber("dormant@example.jp")
    time_machine.move_to(timezone.now(), tick=False)
    # A weekly magazine hears of it once a week or so: further apart than the stale days (7).
    events = []
    for days in (0, 8, 5):
        time_machine.shift(timedelta(days=days))
        events.append(dsn_saying(reader, "5.2.1", "550 5.2.1 Account disabled").events.get())
    assert [(e.kind, e.outcome) for e in events] == [("soft", "scored")] * 3  # day 13
    assert not is_suppressed(reader.email)

    time_machine.shift(timedelta(days=1))
    last = dsn_saying(reader, "5.2.1", "550 5.2.1 Account disabled").events.get()
    assert (last.kind, last.reason, last.outcome) == ("hard", "suspended", "suppressed")
    assert "宛先のアカウントが停止中" in SuppressionChange.objects.get(subscriber=reader).reason


def test_a_suspension_heard_of_again_after_the_grace_starts_over(settings, time_machine):
    settings.BOUNCE_SUSPENDED_GRACE_DAYS = 14
    reader = make_subscriber("back-and-away@example.jp")
    time_machine.move_to(timezone.now(), tick=False)
    dsn_saying(reader, "5.2.1", "550 5.2.1 Account disabled")
    time_machine.shift(timedelta(days=15))  # it came back in between, then went away again
    event = dsn_saying(reader, "5.2.1", "550 5.2.1 Account disabled").events.get()
    assert (event.kind, event.outcome) == ("soft", "scored")


def test_the_hard_limit_is_configurable(settings):
    settings.BOUNCE_HARD_LIMIT = 2
    reader = make_subscriber("twice@example.jp")
    first = services.record_event(
        kind="hard", source="smtp", address=reader.email, subscriber=reader
    )
    assert first.outcome == Outcome.SCORED and not is_suppressed(reader.email)
    second = services.record_event(
        kind="hard", source="smtp", address=reader.email, subscriber=reader
    )
    assert second.outcome == Outcome.SUPPRESSED and is_suppressed(reader.email)


def test_soft_bounces_add_half_a_point_once_a_day_until_the_limit(settings, monkeypatch):
    settings.BOUNCE_SCORE_LIMIT = 1.5
    reader = make_subscriber("full@example.jp")
    day = timezone.now()
    outcomes = []
    for offset, repeats in ((0, 3), (1, 1), (2, 1)):
        monkeypatch.setattr(timezone, "now", lambda offset=offset: day + timedelta(days=offset))
        for _ in range(repeats):
            event = services.record_event(
                kind="soft", source="smtp", address=reader.email, subscriber=reader
            )
            outcomes.append((event.outcome, event.score))

    # Day 0: three bounces, one counted; days 1 and 2 reach 1.5.
    assert outcomes == [
        ("scored", 0.5),
        ("scored", 0.5),
        ("scored", 0.5),
        ("scored", 1.0),
        ("suppressed", 1.5),
    ]
    assert Suppression.objects.get(address_hash=reader.address_hash).reason == "soft_bounce"


def test_a_score_left_alone_for_the_stale_period_starts_again(settings, monkeypatch):
    settings.BOUNCE_STALE_DAYS = 7
    reader = make_subscriber("flaky@example.jp")
    start = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: start)
    services.record_event(kind="soft", source="smtp", address=reader.email, subscriber=reader)
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(days=8))
    event = services.record_event(
        kind="soft", source="smtp", address=reader.email, subscriber=reader
    )
    assert event.score == 0.5


def test_a_complaint_unsubscribes_from_everything_and_suppresses_at_once():
    reader = make_subscriber("angry@example.jp")
    event = services.record_event(
        kind="complaint", source="smtp", address=reader.email, subscriber=reader, rule="arf:abuse"
    )
    assert event.outcome == Outcome.SUPPRESSED
    assert subscribed_keys(reader) == set()
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED
    assert Suppression.objects.get(address_hash=reader.address_hash).reason == "complaint"
    assert ConsentRecord.objects.filter(
        subscriber=reader, action="unsubscribe", source="complaint"
    ).exists()


def test_a_mailed_unsubscribe_stops_that_topic_only():
    reader = make_subscriber("tidy@example.jp")
    weekly = Topic.objects.get(key="weekly")
    token = address_token("unsubscribe", reader.pk, weekly.pk)
    raw = b"From: tidy@example.jp\r\nSubject: unsubscribe\r\n\r\n"
    message = services.receive(raw, "smtp", envelope_to=[f"unsubscribe+{token}@example.jp"])

    assert message.kind == "unsubscribe"
    assert message.events.get().outcome == Outcome.UNSUBSCRIBED
    assert subscribed_keys(reader) == {"articles", "reports", "events"}
    assert not is_suppressed(reader.email)
    assert ConsentRecord.objects.filter(subscriber=reader, source="mail").exists()


def test_the_same_bounce_twice_is_acted_on_once():
    reader = make_subscriber("twice@example.jp")
    raw = dsn_for(reader)
    first = services.receive(raw, "smtp", envelope_to=[verp(0, reader.pk)])
    again = services.receive(raw, "pop3", envelope_to=[verp(0, reader.pk)])

    assert again.pk == first.pk
    again.refresh_from_db()
    assert again.times_received == 2
    assert BounceEvent.objects.count() == 1
    assert BounceScore.objects.get(subscriber=reader).hard_bounces == 1


def test_a_forged_token_is_kept_and_acts_on_nobody():
    reader = make_subscriber("victim@example.jp")
    token = address_token("bounce", 0, reader.pk)
    forged = f"bounce+{token[:-1]}{'0' if token[-1] != '0' else '1'}@example.jp"
    message = services.receive(dsn_for(reader), "smtp", envelope_to=[forged])

    assert message.kind == "quarantined" and message.rule == "verp:forged-token"
    assert bytes(message.raw).startswith(b"From:")
    assert not BounceEvent.objects.exists() and not is_suppressed(reader.email)


def test_a_bounce_for_an_erased_reader_is_recorded_without_keeping_their_address():
    reader = make_subscriber("forgotten@example.jp")
    raw = dsn_for(reader)
    subscriber_services.erase(reader, subscriber_services.Evidence(source="form"))
    message = services.receive(raw, "smtp", envelope_to=[verp(0, reader.pk)])

    assert message.kind == "hard"
    assert message.events.get().outcome == Outcome.ERASED
    message.refresh_from_db()
    assert bytes(message.raw) == b"" and message.addresses == []
    assert b"forgotten" not in bytes(message.raw)
    assert message.note  # says why the copy is gone


@pytest.mark.parametrize("kind", ["hard", "complaint"])
def test_a_mail_without_our_token_is_only_recorded(kind):
    # Anyone who knows an address can write a DSN or an ARF to bounce@ or fbl@.
    reader = make_subscriber("victim@example.jp")
    raw = unknown_user_dsn("bounce@example.jp", ["victim@example.jp"], b"")
    if kind == "complaint":
        raw = (
            b"From: feedback@provider.example\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r\n\r\n'
            b"--b\r\nContent-Type: message/feedback-report\r\n\r\n"
            b"Feedback-Type: abuse\r\nOriginal-Rcpt-To: victim@example.jp\r\n\r\n--b--\r\n"
        )
    message = services.receive(raw, "smtp", envelope_to=["fbl@example.jp"])

    assert message.kind == kind
    assert message.events.get().outcome == Outcome.UNVERIFIED
    assert not is_suppressed("victim@example.jp") and subscribed_keys(reader)


def test_a_complaint_without_token_naming_many_readers_acts_on_none():
    readers = [make_subscriber(f"r{n}@example.jp") for n in range(3)]
    listing = "".join(f"Original-Rcpt-To: {r.email}\r\n" for r in readers)
    arf = (
        "From: feedback@provider.example\r\nTo: fbl@example.jp\r\nSubject: complaint\r\n"
        "Message-ID: <arf-1@provider.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n"
        "--b\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: x/1\r\nVersion: 1\r\n{listing}\r\n--b--\r\n"
    ).encode()
    message = services.receive(arf, "smtp", envelope_to=["fbl@example.jp"])

    assert message.kind == "complaint"
    assert set(message.events.values_list("outcome", flat=True)) == {Outcome.UNVERIFIED}
    assert not Suppression.objects.exists()
    assert all(subscribed_keys(r) for r in readers)


def test_unknown_addresses_are_recorded_and_not_suppressed():
    raw = unknown_user_dsn("bounce@example.jp", ["stranger@example.jp"], b"")
    message = services.receive(raw, "pop3")
    assert message.events.get().outcome == Outcome.UNKNOWN_RECIPIENT
    assert not is_suppressed("stranger@example.jp")


def test_a_bounce_naming_an_erased_address_keeps_no_copy():
    reader = make_subscriber("gone-for-good@example.jp")
    subscriber_services.erase(reader, subscriber_services.Evidence(source="form"))
    raw = unknown_user_dsn("bounce@example.jp", ["gone-for-good@example.jp"], b"")
    message = services.receive(raw, "pop3")
    message.refresh_from_db()

    assert message.events.get().outcome == Outcome.ERASED
    assert b"gone-for-good" not in bytes(message.raw) and message.addresses == []


def test_erasing_a_reader_forgets_what_came_back_for_them():
    reader = make_subscriber("later-erased@example.jp")
    message = receive_dsn(reader)
    subscriber_services.erase(reader, subscriber_services.Evidence(source="form"))
    message.refresh_from_db()

    assert bytes(message.raw) == b"" and message.addresses == [] and message.subject == ""
    assert message.events.get().diagnostic == ""
    assert message.kind == "hard"  # how it was read stays


def test_a_different_message_with_a_known_message_id_is_kept_but_not_acted_on():
    first_reader, second_reader = make_subscriber("a@example.jp"), make_subscriber("b@example.jp")
    first = receive_dsn(first_reader)
    raw = dsn_for(second_reader)
    original_id = raw.split(b"Message-ID: ")[1].split(b"\r\n")[0]
    first_id = bytes(first.raw).split(b"Message-ID: ")[1].split(b"\r\n")[0]
    forged = raw.replace(original_id, first_id)
    other = services.receive(forged, "smtp", envelope_to=[verp(0, second_reader.pk)])

    assert other.pk != first.pk and other.kind == "duplicate"
    assert not other.events.exists() and not is_suppressed("b@example.jp")
    assert "same Message-ID" in other.note


def test_a_mail_cannot_take_a_webhook_events_id():
    from merumaga.bounces.classify import Recipient, Verdict

    reader = make_subscriber("hooked@example.jp")
    services.receive(b"Message-ID: webhook:evt-1\r\nSubject: x\r\n\r\n", "smtp")
    verdict = Verdict(
        kind="hard",
        rule="webhook:hard",
        recipients=(Recipient("hooked@example.jp", "hard", "5.1.1"),),
        message_id="webhook:evt-1",
    )
    message = services.receive_verdict(b'{"id": "evt-1"}', "webhook", verdict)

    assert message.kind == "hard" and message.events.get().outcome == Outcome.SUPPRESSED
    assert is_suppressed(reader.email)


def test_a_huge_message_is_kept_up_to_the_limit(settings):
    settings.BOUNCE_KEEP_KB = 16
    reader = make_subscriber("big@example.jp")
    raw = dsn_for(reader) + b"x" * 200_000
    message = services.receive(raw, "smtp", envelope_to=[verp(0, reader.pk)])
    message.refresh_from_db()
    assert message.kind == "hard" and message.size == len(raw)
    assert len(bytes(message.raw)) == 16 * 1024 and message.truncated


def test_relay_refusals_of_a_recipient_become_bounces():
    hard = make_subscriber("refused@example.jp")
    full = make_subscriber("full@example.jp")
    busy = make_subscriber("busy@example.jp")
    events = services.record_delivery_failures(
        [
            DeliveryFailure(0, hard.pk, "550 5.1.1 No such user here", "RCPT"),
            DeliveryFailure(0, full.pk, "552 5.2.2 Mailbox full", "RCPT"),
            DeliveryFailure(0, busy.pk, "450 4.2.1 Mailbox busy", "DATA"),
        ]
    )
    assert [(e.subscriber, e.kind, e.status, e.outcome) for e in events] == [
        (hard, "hard", "5.1.1", Outcome.SUPPRESSED),
        (full, "soft", "5.2.2", Outcome.SCORED),
        (busy, "soft", "4.2.1", Outcome.SCORED),
    ]
    assert all(e.source == "smtp_reply" for e in events)
    assert events[0].rule == "smtp-reply:RCPT"


@pytest.mark.parametrize(
    "reply, stage, kind",
    [
        (
            "550 5.1.1 The email account that you tried to reach does not exist.\n"
            "5.1.1 Please try double-checking the recipient's email address",  # Gmail
            "RCPT",
            "hard",
        ),
        ("550 5.5.0 Requested action not taken: mailbox unavailable", "RCPT", "hard"),
        ("550 5.4.1 Recipient address rejected: Access denied.", "RCPT", "hard"),  # M365
        ("554 delivery error: dd This user doesn't have a yahoo.com account", "DATA", "hard"),
        ("550 Unknown user", "RCPT", "hard"),  # docomo
        ("550 Unknown user", "DATA", "hard"),
        ("452 4.2.2 Over quota", "RCPT", "soft"),
    ],
)
def test_real_refusals_of_a_mailbox_are_read_as_such(reply, stage, kind):
    reader = make_subscriber("someone@example.jp")
    (event,) = services.record_delivery_failures([DeliveryFailure(0, reader.pk, reply, stage)])
    assert event.kind == kind


@pytest.mark.parametrize(
    ("address", "reply", "stage", "kind", "reason"),
    [
        ("a@docomo.ne.jp", "550 Unknown user a@docomo.ne.jp", "RCPT", "hard", "user_unknown"),
        # docomo says the same after DATA when the reader's reception filter refuses us.
        ("a@docomo.ne.jp", "550 Unknown user a@docomo.ne.jp", "DATA", "sender", "filtered"),
        ("a@ezweb.ne.jp", "550 <a@ezweb.ne.jp>: User unknown", "RCPT", "hard", "user_unknown"),
        ("a@ezweb.ne.jp", "550 : User unknown", "DATA", "sender", "filtered"),  # au's filter
    ],
)
def test_a_japanese_carriers_filter_is_not_an_unknown_user(address, reply, stage, kind, reason):
    reader = make_subscriber(address)
    [event] = services.record_delivery_failures([DeliveryFailure(0, reader.pk, reply, stage)])
    assert (event.kind, event.reason) == (kind, reason)
    assert is_suppressed(address) == (kind == "hard")


@pytest.mark.parametrize(
    "reply, stage, reason",
    [
        ("553 5.1.8 <bounce+1@x.jp>: Sender address rejected: Domain not found", "RCPT",
         "rejected"),
        ("550 5.7.1 Your IP doesn't have a valid PTR record", "RCPT", "blocked"),
        ("554 5.7.1 Service unavailable: sender doesn't have a good reputation", "RCPT",
         "blocked"),
        ("550 5.7.1 The sender domain does not exist", "RCPT", "rejected"),
        ("550 Sender domain does not exist", "RCPT", "rejected"),
        ("552 5.2.3 Message size exceeds fixed maximum message size", "DATA",
         "policy_violation"),
        ("550 5.1.0 <bounce+1@x.jp>: Sender rejected", "RCPT", "rejected"),
        ("550 Client host 5.1.2.9 blocked using a blocklist", "RCPT", "blocked"),
        ("550 Blocked by policy", "RCPT", "policy_violation"),
        ("554 5.7.1 Client host blocked using a blocklist", "RCPT", "blocked"),
        ("554 5.7.1 Message content rejected", "DATA", "spam_detected"),
        ("552 5.3.4 Message too big", "DATA", "policy_violation"),
        ("550 5.7.26 Unauthenticated email from example.jp is not accepted due to domain's "
         "DMARC policy", "DATA", "auth_failure"),
        ("421 4.7.0 [TSS04] Messages temporarily deferred due to unexpected volume or user "
         "complaints", "RCPT", "blocked"),
    ],
)  # fmt: skip
def test_refusals_that_are_ours_are_recorded_and_never_count_against_the_reader(
    reply, stage, reason
):
    reader = make_subscriber("fine@example.jp")
    [event] = services.record_delivery_failures(
        [DeliveryFailure(0, reader.pk, reply, stage, relay="relay-a")]
    )
    assert (event.kind, event.reason, event.outcome) == ("sender", reason, Outcome.NOT_COUNTED)
    assert (event.domain, event.relay, event.subscriber) == ("example.jp", "relay-a", reader)
    assert not is_suppressed(reader.email)
    assert not BounceScore.objects.filter(subscriber=reader, score__gt=0).exists()


@pytest.mark.parametrize(
    "reply, stage",
    [
        ("550 5.7.1 Sender address rejected", "MAIL"),  # our return path: the relay's problem
        ("421 4.3.2 Service shutting down", "connect"),
        ("could not encode the subject", ""),  # never left: not a refusal
        ("421 4.7.0 Try again later", "RCPT"),  # a deferral, tried again: not yet anything
        ("452 4.2.2 Over quota", "RCPT"),  # the same, about the reader: counted if it stays
    ],
)
def test_refusals_that_say_nothing_about_the_reader_yet_are_not_bounces(reply, stage):
    reader = make_subscriber("fine@example.jp")
    failure = DeliveryFailure(0, reader.pk, reply, stage, final=False)
    assert services.record_delivery_failures([failure]) == []
    assert not BounceEvent.objects.exists() and not is_suppressed(reader.email)


def test_an_admin_lifts_a_suppression_with_a_reason_and_it_is_on_record():
    reader = make_subscriber("back@example.jp")
    receive_dsn(reader)
    admin_user = get_user_model().objects.create_user("editor")

    with pytest.raises(services.CannotLift):
        services.lift_suppression(reader.address_hash, "  ", admin_user)
    change = services.lift_suppression(reader.address_hash, "読者から連絡あり", admin_user)

    assert not is_suppressed(reader.email)
    assert change.action == "lifted" and change.user == admin_user
    assert change.reason == "読者から連絡あり" and change.subscriber == reader
    assert BounceScore.objects.get(subscriber=reader).hard_bounces == 0
    assert list(SuppressionChange.objects.values_list("action", flat=True)) == [
        "lifted",
        "suppressed",
    ]
    with pytest.raises(services.CannotLift):
        services.lift_suppression(reader.address_hash, "again", admin_user)


def test_a_suppression_made_by_hand_is_recorded_and_lifted_with_a_reason(admin_user):
    made = services.suppress_by_hand("X@example.jp ", "電話で停止の依頼", admin_user)
    hashed = address_hash("x@example.jp")
    assert Suppression.objects.get(address_hash=hashed).reason == "admin"
    assert (made.action, made.user, made.reason) == ("suppressed", admin_user, "電話で停止の依頼")
    with pytest.raises(services.CannotSuppress):
        services.suppress_by_hand("x@example.jp", "again", admin_user)
    with pytest.raises(services.CannotSuppress):
        services.suppress_by_hand("y@example.jp", "  ", admin_user)  # a reason is required

    lifted = services.lift_suppression(hashed, "依頼の取り消し", admin_user)
    assert lifted.action == "lifted" and not Suppression.objects.exists()


def test_an_erasure_suppression_cannot_be_lifted():
    reader = make_subscriber("erased@example.jp")
    hashed = reader.address_hash
    subscriber_services.erase(reader, subscriber_services.Evidence(source="form"))
    with pytest.raises(services.CannotLift):
        services.lift_suppression(hashed, "mistake", None)
    assert Suppression.objects.filter(address_hash=hashed).exists()


def test_the_audit_trail_is_append_only():
    reader = make_subscriber("a@example.jp")
    receive_dsn(reader)
    change = SuppressionChange.objects.get()
    change.reason = "rewritten"
    with pytest.raises(ValueError):
        change.save()


def test_erasing_a_reader_who_complained_makes_the_suppression_an_erasure():
    reader = make_subscriber("complained@example.jp")
    services.record_event(kind="complaint", source="smtp", address=reader.email, subscriber=reader)
    hashed = reader.address_hash
    subscriber_services.erase(reader, subscriber_services.Evidence(source="form"))

    assert Suppression.objects.get(address_hash=hashed).reason == "erased"
    with pytest.raises(services.CannotLift):
        services.lift_suppression(hashed, "mistake", None)


def test_an_auto_reply_from_an_erased_reader_keeps_no_copy():
    reader = make_subscriber("away@example.jp")
    subscriber_services.erase(reader, subscriber_services.Evidence(source="form"))
    raw = (
        b"From: away@example.jp\r\nSubject: Out of Office\r\nAuto-Submitted: auto-replied\r\n"
        b"\r\nI am away.\r\n"
    )
    message = services.receive(
        raw, "smtp", envelope_from="away@example.jp", envelope_to=[verp(0, reader.pk)]
    )
    assert message.kind == "auto_reply" and message.subscriber == reader
    assert bytes(message.raw) == b"" and message.envelope_from == "" and message.subject == ""


def test_a_nul_in_a_header_does_not_stop_the_message_being_stored():
    raw = b"From: x@example.com\r\nSubject: =?utf-8?q?a=00b?=\r\n\r\nhello\r\n"
    message = services.receive(raw, "smtp")
    message.refresh_from_db()
    assert "\x00" not in message.subject and bytes(message.raw) == raw


def test_a_nul_in_an_address_does_not_stop_the_message_being_stored():
    # Without a token the address found is recorded as it is: PostgreSQL refuses a NUL in text.
    raw = unknown_user_dsn("bounce@example.jp", ["nul@exa\x00mple.jp"], b"")
    message = services.receive(raw, "smtp")
    event = message.events.get()
    assert message.kind == "hard" and event.domain == "example.jp"


def test_a_quarantined_message_with_our_token_is_forgotten_with_its_reader():
    reader = make_subscriber("odd@example.jp")
    raw = b"To: someone\r\nSubject: odd\r\n\r\nno From header, so a detector raises"
    message = services.receive(raw, "smtp", envelope_to=[verp(0, reader.pk)])
    assert message.kind == "quarantined" and message.subscriber == reader
    subscriber_services.erase(reader, subscriber_services.Evidence(source="form"))
    message.refresh_from_db()
    assert bytes(message.raw) == b""


def test_erasing_a_reader_named_second_forgets_the_message_too():
    first, second = make_subscriber("one@example.jp"), make_subscriber("two@example.jp")
    raw = unknown_user_dsn("bounce@example.jp", [first.email, second.email], b"")
    message = services.receive(raw, "pop3")
    assert message.subscriber == first and message.events.count() == 2
    subscriber_services.erase(second, subscriber_services.Evidence(source="form"))
    message.refresh_from_db()
    assert b"two@example.jp" not in bytes(message.raw) and message.addresses == []
