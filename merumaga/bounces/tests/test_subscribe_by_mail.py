"""空メール登録: an empty mail to subscribe@ or subscribe+TOPIC@ starts the same double opt-in
sign-up as the form, for the address it came from."""

import smtplib

import pytest
from django.core import mail

from merumaga.bounces import services
from merumaga.bounces.classify import classify
from merumaga.bounces.models import InboundMessage
from merumaga.bounces.receivers import is_inbound_address
from merumaga.subscribers.models import ConsentRecord, Subscriber
from merumaga.testing import make_subscriber, subscribed_keys

pytestmark = pytest.mark.django_db
DOMAIN = "bounces.example.jp"
PHONE = "taro.sample@docomo.ne.jp"


@pytest.fixture(autouse=True)
def local_mail(settings):
    settings.BOUNCE_DOMAIN = DOMAIN
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def empty_mail(to: str, sender: str = PHONE, *headers: str) -> bytes:
    lines = [f"From: {sender}", f"To: {to}", "Subject: ", "Message-ID: <1@phone>", *headers, ""]
    return "\r\n".join(lines).encode() + b"\r\n"


@pytest.fixture
def receive(django_capture_on_commit_callbacks):
    """An empty mail received as the bounce receiver would; the mails it causes are sent (the
    transaction's on-commit work runs)."""

    def receive(to: str, sender: str = PHONE, *headers: str, envelope_from: str | None = None):
        raw = empty_mail(to, sender, *headers).replace(b"<1@phone>", f"<{to}.{sender}>".encode())
        with django_capture_on_commit_callbacks(execute=True):
            return services.receive(
                raw,
                "smtp",
                envelope_from=sender if envelope_from is None else envelope_from,
                envelope_to=[to],
            )

    return receive


def test_an_empty_mail_to_subscribe_asks_for_every_open_topic_and_mails_the_confirmation(receive):
    message = receive(f"subscribe@{DOMAIN}")

    assert (message.kind, message.rule) == ("subscribe", "mailto:subscribe")
    reader = Subscriber.objects.get(email=PHONE)
    assert reader.status == Subscriber.Status.PENDING  # nothing arrives before the link is used
    assert subscribed_keys(reader) == {"weekly", "articles", "reports", "events"}
    record = ConsentRecord.objects.get(subscriber=reader)
    assert (record.source, record.action) == ("empty_mail", "subscribe")
    assert record.wording  # the sign-up wording in force, as with the form
    [confirmation] = mail.outbox
    assert confirmation.to == [PHONE] and "/confirm/" in confirmation.body
    assert "confirmation_sent" in message.note


def test_one_address_per_topic(receive):
    receive(f"subscribe+weekly@{DOMAIN}")
    assert subscribed_keys(Subscriber.objects.get(email=PHONE)) == {"weekly"}


def test_an_unknown_topic_asks_for_every_one_and_says_so(receive):
    message = receive(f"subscribe+nosuch@{DOMAIN}")
    assert len(subscribed_keys(Subscriber.objects.get(email=PHONE))) == 4
    assert "no open topic 'nosuch'" in message.note
    assert len(mail.outbox) == 1


def test_a_forged_sender_only_gets_the_mail_and_a_reader_keeps_their_settings(receive):
    reader = make_subscriber("hanako@example.jp", topics=["events"])
    message = receive(f"subscribe+weekly@{DOMAIN}", "hanako@example.jp")
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED
    assert subscribed_keys(reader) == {"events"}  # unchanged: only its owner changes them
    [reminder] = mail.outbox
    assert reminder.to == ["hanako@example.jp"] and "reminder_sent" in message.note


@pytest.mark.parametrize(
    ("headers", "rule"),
    [
        (["Auto-Submitted: auto-replied"], "subscribe:automatic:auto-reply:auto-submitted"),
        (["Precedence: bulk"], "subscribe:automatic:list"),
        (["X-Autoreply: yes"], "subscribe:automatic:auto-reply:x-autoreply"),
    ],
)
def test_mail_no_person_wrote_is_never_answered(receive, headers, rule):
    message = receive(f"subscribe@{DOMAIN}", PHONE, *headers)
    assert (message.kind, message.rule) == ("unrecognised", rule)
    assert not Subscriber.objects.exists() and not mail.outbox


def test_a_mailer_daemon_or_an_empty_envelope_sender_is_never_answered(receive):
    daemon = receive(f"subscribe@{DOMAIN}", "MAILER-DAEMON@mx.example.net")
    assert daemon.rule == "subscribe:automatic:mailer-daemon"
    bounced = receive(f"subscribe@{DOMAIN}", "someone@example.net", envelope_from="")
    assert bounced.kind == "subscribe" and bounced.note == "empty envelope sender: not answered"
    assert not Subscriber.objects.exists() and not mail.outbox


def test_the_forms_limits_apply(receive, settings):
    settings.SIGNUP_LIMIT_PER_ADDRESS = 2
    notes = [receive(f"subscribe+{key}@{DOMAIN}").note for key in ("weekly", "articles", "events")]
    assert "too many requests" in notes[2]
    assert len(mail.outbox) == 1  # and one mail a day at most to the address, as the form


def test_a_bad_address_is_said_and_nothing_else_happens(receive):
    message = receive(f"subscribe@{DOMAIN}", "not an address <@@>")
    assert message.rule == "subscribe:no-sender" and not Subscriber.objects.exists()


def test_the_receiver_takes_the_subscribe_addresses_and_no_others():
    assert is_inbound_address(f"subscribe@{DOMAIN}")
    assert is_inbound_address(f"Subscribe+Weekly@{DOMAIN.upper()}")
    assert not is_inbound_address(f"subscribers@{DOMAIN}")
    assert not is_inbound_address("subscribe@other.example")
    verdict = classify(empty_mail(f"subscribe+reports@{DOMAIN}"), [f"subscribe+reports@{DOMAIN}"])
    assert (verdict.kind, verdict.sender, verdict.topic_key) == ("subscribe", PHONE, "reports")


@pytest.mark.django_db(transaction=True)
def test_through_the_bounce_receiver(receiver_port):
    with smtplib.SMTP("127.0.0.1", receiver_port) as client:
        client.sendmail(
            PHONE, [f"subscribe+events@{DOMAIN}"], empty_mail(f"subscribe+events@{DOMAIN}")
        )
    services.read_waiting()  # the receiver's readers
    message = InboundMessage.objects.get()
    assert (message.kind, message.source) == ("subscribe", "smtp")
    assert subscribed_keys(Subscriber.objects.get(email=PHONE)) == {"events"}
    assert [m.to for m in mail.outbox] == [[PHONE]]
