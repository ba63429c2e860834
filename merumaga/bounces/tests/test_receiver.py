"""The built-in bounce receiver over real SMTP and LMTP, and the mail catcher's bounce loop.

Transactional: the servers use the database from their own threads.
"""

import smtplib
import socket
import threading
from concurrent.futures import Future

import pytest
from django.db import OperationalError

from merumaga.bounces import services
from merumaga.bounces.models import InboundMessage
from merumaga.bounces.server import GroupCommit, StoreFailed, read_until_stopped
from merumaga.delivery.catcher import list_messages, unknown_user_dsn
from merumaga.subscribers.models import Suppression, address_hash
from merumaga.subscribers.tokens import address_token
from merumaga.testing import free_port, make_subscriber

pytestmark = pytest.mark.django_db(transaction=True)


def verp(subscriber_id: int, mailing_id: int = 0, domain: str = "bounces.example.jp") -> str:
    return f"bounce+{address_token('bounce', mailing_id, subscriber_id)}@{domain}"


def test_a_dsn_over_smtp_is_stored_before_the_reply_and_suppresses_the_reader(receiver_port):
    reader = make_subscriber("gone@example.jp")
    dsn = unknown_user_dsn(verp(reader.pk), [reader.email], b"Subject: x")
    with smtplib.SMTP("127.0.0.1", receiver_port) as client:
        client.ehlo()
        client.mail("<>")
        client.rcpt(verp(reader.pk))
        code, reply = client.data(dsn)

    # Kept before the reply, read after it (the readers' work).
    kept = InboundMessage.objects.get()
    assert code == 250 and reply == f"2.0.0 Kept as {kept.pk}".encode()
    assert kept.kind == "received" and bytes(kept.raw) == dsn
    assert services.read_waiting() == 1
    message = InboundMessage.objects.get()
    assert message.kind == "hard" and message.source == "smtp" and message.subscriber == reader
    assert Suppression.objects.filter(address_hash=address_hash("gone@example.jp")).exists()


def test_mail_for_other_addresses_is_refused_at_rcpt(receiver_port):
    with smtplib.SMTP("127.0.0.1", receiver_port) as client:
        client.ehlo()
        client.mail("someone@example.com")
        code, _ = client.rcpt("reader@example.jp")
        assert code == 550
        code, _ = client.rcpt("bounce+1-2-abc@elsewhere.example")
        assert code == 550


def test_garbage_is_accepted_and_kept_for_a_person(receiver_port):
    with smtplib.SMTP("127.0.0.1", receiver_port) as client:
        refused = client.sendmail("", ["bounce@bounces.example.jp"], b"\x00\xff not mail at all")
    assert refused == {}
    services.read_waiting()
    message = InboundMessage.objects.get()
    assert message.kind in ("unrecognised", "quarantined")
    assert bytes(message.raw) == b"\x00\xff not mail at all\r\n"


def test_when_storing_fails_the_sender_is_asked_to_retry(receiver_port, monkeypatch):
    def database_down(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(services, "keep", database_down)
    with smtplib.SMTP("127.0.0.1", receiver_port) as client:
        client.ehlo()
        client.mail("<>")
        client.rcpt("bounce@bounces.example.jp")
        code, reply = client.data(b"Subject: x\r\n\r\nbody")
    assert code == 451 and b"try again later" in reply and not InboundMessage.objects.exists()


def test_one_message_that_cannot_be_stored_does_not_fail_the_others_of_its_batch(monkeypatch):
    real_keep = services.keep

    def refuse_the_poisoned(items):
        if any(inbound.raw.startswith(b"poison") for inbound in items):
            raise OperationalError("value too long")
        return real_keep(items)

    monkeypatch.setattr(services, "keep", refuse_the_poisoned)
    raws = (b"Subject: one\r\n\r\nx", b"poison\r\n\r\nx", b"Subject: two\r\n\r\nx")
    batch = [(services.Inbound(raw, "smtp"), Future()) for raw in raws]
    writer = GroupCommit()
    try:
        writer._store(batch)  # as the writer thread does with the three waiting together
        outcomes = []
        for _, future in batch:
            try:
                outcomes.append(bytes(future.result(timeout=30).raw))
            except StoreFailed:
                outcomes.append(b"451")
    finally:
        writer.close()
    assert outcomes == [raws[0], b"451", raws[2]]
    assert InboundMessage.objects.count() == 2


def test_a_session_gone_before_its_reply_does_not_stop_the_others():
    raws = (b"Subject: one\r\n\r\nx", b"Subject: gone\r\n\r\nx", b"Subject: two\r\n\r\nx")
    batch = [(services.Inbound(raw, "smtp"), Future()) for raw in raws]
    batch[1][1].cancel()  # aiosmtpd cancels a session whose client disconnected
    writer = GroupCommit()
    try:
        writer._store(batch)
        assert [bytes(f.result(timeout=30).raw) for _, f in (batch[0], batch[2])] == [
            raws[0],
            raws[2],
        ]
        # The writer goes on serving the next sessions.
        later = writer.submit(services.Inbound(b"Subject: later\r\n\r\nx", "smtp"))
        assert bytes(later.result(timeout=30).raw).startswith(b"Subject: later")
    finally:
        writer.close()
    assert InboundMessage.objects.count() == 4  # the gone one too: its MTA will offer it again


class StopAfterRounds:
    """A stop event that is set after the reader's loop asked it `rounds` times."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds

    def is_set(self) -> bool:
        self.rounds -= 1
        return self.rounds < 0


def test_a_reader_reads_what_was_kept_and_stops_when_told():
    gone, other = make_subscriber("gone@example.jp"), make_subscriber("other@example.jp")
    services.keep(
        [
            services.Inbound(unknown_user_dsn(verp(r.pk), [r.email], b""), "smtp")
            for r in (gone, other)
        ]
    )
    kept = threading.Event()
    kept.set()

    read_until_stopped(kept, StopAfterRounds(1), gather_seconds=0)

    assert not kept.is_set()  # cleared before reading: a message kept meanwhile sets it again
    assert sorted(InboundMessage.objects.values_list("kind", flat=True)) == ["hard", "hard"]
    assert Suppression.objects.count() == 2


def test_lmtp_answers_once_per_recipient(lmtp_port):
    first, second = make_subscriber("a@example.jp"), make_subscriber("b@example.jp")
    dsn = unknown_user_dsn("bounce@bounces.example.jp", [first.email, second.email], b"")
    # smtplib's LMTP reads a single reply to DATA (RFC 2033 sends one per recipient): talk
    # the protocol by hand.
    with socket.create_connection(("127.0.0.1", lmtp_port), timeout=10) as connection:
        replies = connection.makefile("rb")
        replies.readline()  # greeting
        commands = [
            b"LHLO test",
            b"MAIL FROM:<>",
            b"RCPT TO:<bounce@bounces.example.jp>",
            b"RCPT TO:<postmaster@bounces.example.jp>",
            b"DATA",
        ]
        for command in commands:
            connection.sendall(command + b"\r\n")
            line = replies.readline()
            while line[3:4] == b"-":  # multi-line LHLO reply
                line = replies.readline()
        connection.sendall(dsn.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
        data_replies = [replies.readline(), replies.readline()]
        connection.sendall(b"QUIT\r\n")

    assert all(reply.startswith(b"250 ") for reply in data_replies), data_replies
    services.read_waiting()
    message = InboundMessage.objects.get()
    assert message.source == "lmtp" and message.events.count() == 2


def test_the_catcher_bounces_nosuchuser_back_through_the_pipeline(settings, tmp_path):
    from merumaga.delivery.catcher import start_catcher

    settings.BOUNCE_DOMAIN = "example.jp"
    reader = make_subscriber("nosuchuser@example.jp")
    port = free_port()
    controller = start_catcher(tmp_path / "mail", port=port)
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail(
                verp(reader.pk, domain="example.jp"),
                [reader.email],
                b"Subject: hello\r\n\r\nbody\r\n",
            )
    finally:
        controller.stop()

    subjects = [m.subject for m in list_messages(tmp_path / "mail")[0]]
    assert sorted(subjects) == ["Undelivered Mail Returned to Sender", "hello"]
    message = InboundMessage.objects.get()
    assert message.source == "catcher" and message.kind == "hard"
    assert message.subscriber == reader
    assert Suppression.objects.filter(address_hash=reader.address_hash).exists()


# Memory stays bounded whatever arrives.


def big_dsn(reader, original_bytes: int) -> bytes:
    """A DSN returning the whole original, as many servers do, with a big attachment in it."""
    attachment = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n"
    head = (
        "From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
        "--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        f"Final-Recipient: rfc822; {reader.email}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--r\r\nContent-Type: message/rfc822\r\n\r\nSubject: report\r\n\r\n"
        ".a line the sender escaped with a dot\r\n"
    ).encode()
    return head + attachment * (original_bytes // len(attachment)) + b"--r--\r\n"


def test_a_huge_bounce_is_read_from_its_beginning_and_its_full_size_recorded(
    receiver_port, settings
):
    from merumaga.bounces import server

    reader = make_subscriber("gone@example.jp")
    dsn = big_dsn(reader, 3 * server.SPOOL_IN_MEMORY + services.READ_BYTES)
    with smtplib.SMTP("127.0.0.1", receiver_port) as client:
        assert client.sendmail("", [verp(reader.pk)], dsn) == {}
    services.read_waiting()
    message = InboundMessage.objects.get()
    assert message.kind == "hard" and message.subscriber == reader
    assert message.size == len(dsn)
    assert len(bytes(message.raw)) == settings.BOUNCE_KEEP_KB * 1024  # the rest counted
    assert b"\r\n.a line the sender escaped" in bytes(message.raw)  # its dot, not ours
    assert Suppression.objects.filter(address_hash=address_hash("gone@example.jp")).exists()


def test_one_session_over_the_limit_is_told_to_try_again_later(receiver_port, settings):
    settings.BOUNCE_RECEIVER_MAX_CONNECTIONS = 1
    with smtplib.SMTP("127.0.0.1", receiver_port) as first:
        first.ehlo()
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", receiver_port, timeout=10)
        assert refused.value.smtp_code == 421
        assert first.noop()[0] == 250  # the first goes on
    reader = make_subscriber("gone@example.jp")
    dsn = unknown_user_dsn(verp(reader.pk), [reader.email], b"Subject: x")
    with smtplib.SMTP("127.0.0.1", receiver_port, timeout=10) as later:  # its place is free
        assert later.sendmail("", [verp(reader.pk)], dsn) == {}


def test_a_spool_that_cannot_be_written_answers_452_and_keeps_nothing(receiver_port, monkeypatch):
    import errno
    import tempfile

    class FullDisk(tempfile.SpooledTemporaryFile):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("merumaga.bounces.server.tempfile.SpooledTemporaryFile", FullDisk)
    reader = make_subscriber("gone@example.jp")
    dsn = unknown_user_dsn(verp(reader.pk), [reader.email], b"Subject: x")
    with smtplib.SMTP("127.0.0.1", receiver_port) as client:
        client.ehlo()
        client.mail("<>")
        client.rcpt(verp(reader.pk))
        code, reply = client.data(dsn)
    assert code == 452 and b"try again later" in reply
    assert not InboundMessage.objects.exists()


def test_a_message_over_the_size_limit_is_refused_whole(settings, monkeypatch):
    from merumaga.bounces import server

    settings.BOUNCE_DOMAIN = "bounces.example.jp"
    monkeypatch.setattr(server, "MAX_MESSAGE_SIZE", 200_000)
    port = free_port()
    controller = server.start_receiver("127.0.0.1", port)
    try:
        reader = make_subscriber("gone@example.jp")
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.ehlo()
            client.mail("<>")
            client.rcpt(verp(reader.pk))
            code, _reply = client.data(big_dsn(reader, 300_000))
    finally:
        server.stop_receiver(controller)
    assert code == 552 and not InboundMessage.objects.exists()


def test_lmtp_answers_every_recipient_when_it_refuses_a_message(settings, monkeypatch):
    from merumaga.bounces import server

    settings.BOUNCE_DOMAIN = "bounces.example.jp"
    monkeypatch.setattr(server, "MAX_MESSAGE_SIZE", 200_000)
    port = free_port()
    controller = server.start_receiver("127.0.0.1", port, lmtp=True)
    first, second = make_subscriber("a@example.jp"), make_subscriber("b@example.jp")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as lmtp:
            replies = lmtp.makefile("rb")

            def say(line: bytes) -> bytes:
                lmtp.sendall(line + b"\r\n")
                return replies.readline()

            replies.readline()  # greeting
            say(b"LHLO test.example.jp")
            while not replies.readline().startswith(b"250 "):
                pass
            assert say(b"MAIL FROM:<>").startswith(b"250")
            assert say(f"RCPT TO:<{verp(first.pk)}>".encode()).startswith(b"250")
            assert say(f"RCPT TO:<{verp(second.pk)}>".encode()).startswith(b"250")
            assert say(b"DATA").startswith(b"354")
            lmtp.sendall(big_dsn(first, 300_000) + b".\r\n")
            answers = [replies.readline(), replies.readline()]  # one per recipient
    finally:
        server.stop_receiver(controller)
    assert all(answer.startswith(b"552") for answer in answers), answers
    assert not InboundMessage.objects.exists()


@pytest.mark.parametrize(
    "arg",
    [
        "<>",
        "<> SIZE=123",
        "<>SIZE=123",
        " <>",
        "<bounce+1-2-abc@bounces.example.jp>",
        "<a@b> BODY=8BITMIME",
        " <x@y>",
        "<x@y>  SIZE=5",
        "<A.b-c_d@Ex.JP>  ",
        '<"a b"@c>',
        "<@route:a@b>",
        "<a@[192.0.2.1]>",
        "<a..b@c>",
        "<a@b",
        "a@b",
        "<" + "x" * 70 + "@example.jp>",
        "<a@b>\r\nSIZE=1",
        "<a@b.c> (comment)",
        "\xa0<a@b>",
        "\x0b<a@b>",
        "<a@b> SIZE=5 ",
        "<a@b> BODY=8BITMIME SMTPUTF8",
        "<a@b>SIZE=5",
    ],
)
def test_the_fast_path_reader_reads_an_smtp_path_as_aiosmtpd_does(arg):
    from aiosmtpd.smtp import SMTP as AiosmtpdSMTP

    from merumaga.bounces.server import _SMTP

    ours = _SMTP.__new__(_SMTP)
    theirs = AiosmtpdSMTP.__new__(AiosmtpdSMTP)
    ours.local_part_limit = theirs.local_part_limit = 64
    assert ours._getaddr(arg) == theirs._getaddr(arg)
