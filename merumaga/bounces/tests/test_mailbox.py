"""Polling a bounce mailbox: POP3 through real poplib against a small server, IMAP with a fake."""

import imaplib
import itertools
import logging
import re
import ssl
from collections import defaultdict
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest
from huey.contrib.djhuey import HUEY

from merumaga.bounces import mailbox, services, tasks
from merumaga.bounces.mailbox import MailboxError, parse_mailbox_url, poll_mailbox
from merumaga.bounces.models import BounceEvent, InboundMessage, Source
from merumaga.subscribers.models import Suppression
from merumaga.testing import PASSWORD, dsn, make_subscriber

pytestmark = pytest.mark.django_db

AUTO_REPLY = (
    b"From: Mika Tanaka <m.tanaka@example.com>\r\n"
    b"To: bounce@example.jp\r\n"
    b"Subject: Out of Office: Weekly News\r\n"
    b"Message-ID: <oof-1@example.com>\r\n"
    b"Auto-Submitted: auto-replied\r\n"
    b"\r\n"
    b"I am away until Monday.\r\n"
    b".\r\n"  # a lone dot inside the message: dot-stuffed on the wire, kept as is
    b"..and a line that starts with two dots\r\n"
)
# Binary junk, then a report cut off in mid-structure.
GARBAGE = b"\x00\xff\xfeContent-Type: multipart/report; boundary=\r\n\r\n--cut off in the mid\r\n"


def message(n: int) -> bytes:
    return f"From: x@example.com\r\nMessage-ID: <m{n}@example.com>\r\n\r\nbody {n}\r\n".encode()


def test_pop3_poll_stores_acts_on_and_deletes_each_message(pop3):
    reader = make_subscriber("gone@example.jp")
    pop3.maildrop.messages = [dsn("gone@example.jp", reader=reader), GARBAGE, AUTO_REPLY]
    calls = []

    report = poll_mailbox(pop3.url, progress=lambda done, total: calls.append((done, total)))

    assert (report.found, report.stored, report.duplicates, report.failed) == (3, 3, 0, 0)
    assert report.deferred == 0 and calls == [(1, 3), (2, 3), (3, 3)]
    assert pop3.maildrop.messages == []
    assert pop3.maildrop.commands[-1] == "QUIT" and pop3.maildrop.commands.count("DELE") == 3
    messages = {m.kind: m for m in InboundMessage.objects.filter(source=Source.POP3)}
    assert len(messages) == 3
    assert messages["hard"].subscriber == reader
    assert Suppression.objects.filter(address_hash=reader.address_hash).exists()
    assert bytes(messages["auto_reply"].raw) == AUTO_REPLY  # dot-stuffing undone
    garbage = next(m for kind, m in messages.items() if kind in ("unrecognised", "quarantined"))
    assert bytes(garbage.raw) == GARBAGE
    assert report.kinds == {"hard": 1, "auto_reply": 1, garbage.kind: 1}
    assert "3 stored" in str(report) and PASSWORD not in str(report)


def test_a_message_that_cannot_be_stored_stays_on_the_server(pop3, monkeypatch, caplog):
    pop3.maildrop.messages = [message(1), message(2), message(3)]
    real_receive = services.receive

    def database_down_for_the_second(raw, source, **kwargs):
        if b"<m2@" in raw:
            raise ConnectionError("could not connect to server: Connection refused")
        return real_receive(raw, source, **kwargs)

    monkeypatch.setattr(services, "receive", database_down_for_the_second)
    with caplog.at_level(logging.ERROR, logger="merumaga.bounces.mailbox"):
        report = poll_mailbox(pop3.url)

    assert (report.stored, report.failed) == (2, 1)
    assert pop3.maildrop.messages == [message(2)]
    assert InboundMessage.objects.count() == 2
    assert "left on the server" in caplog.text and PASSWORD not in caplog.text

    monkeypatch.setattr(services, "receive", real_receive)
    again = poll_mailbox(pop3.url)
    assert (again.found, again.stored, again.failed) == (1, 1, 0)
    assert pop3.maildrop.messages == []


def test_a_poll_cut_short_before_quit_deletes_nothing_and_the_next_acts_once(pop3):
    reader = make_subscriber("gone@example.jp")
    pop3.maildrop.messages = [dsn("gone@example.jp", reader=reader), AUTO_REPLY]

    def connection_lost_at_quit(parts):
        client = mailbox.open_connection(parts)

        def quit():
            client.sock.close()
            raise ConnectionResetError("connection reset by peer")

        client.quit = quit
        return client

    with pytest.raises(MailboxError, match="QUIT") as caught:
        poll_mailbox(pop3.url, connect=connection_lost_at_quit)
    assert caught.value.report.stored == 2
    assert len(pop3.maildrop.messages) == 2  # the server deleted nothing

    report = poll_mailbox(pop3.url)

    assert (report.found, report.stored, report.duplicates) == (2, 0, 2)
    assert pop3.maildrop.messages == []
    assert InboundMessage.objects.count() == 2
    assert InboundMessage.objects.get(kind="hard").times_received == 2
    assert BounceEvent.objects.filter(subscriber=reader).count() == 1


def test_a_wrong_password_is_a_mailbox_error_without_the_password(pop3):
    pop3.maildrop.messages = [message(1)]
    pop3.maildrop.password = "another"

    with pytest.raises(MailboxError) as caught:
        poll_mailbox(pop3.url)

    text = str(caught.value)
    assert "login refused" in text and "invalid user name or password" in text
    assert PASSWORD not in text and quote(PASSWORD, safe="") not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert pop3.maildrop.messages == [message(1)]


def test_a_mailbox_that_cannot_be_reached_is_a_mailbox_error(pop3):
    url = pop3.url
    pop3.shutdown()
    pop3.server_close()

    with pytest.raises(MailboxError, match=r"connecting") as caught:
        poll_mailbox(url)
    assert PASSWORD not in str(caught.value) and "bounces%40example.jp@127.0.0.1" in str(
        caught.value
    )


def test_pop3s_checks_the_certificate_then_polls_over_tls(pop3s):
    pop3s.maildrop.messages = [message(1)]

    with pytest.raises(MailboxError, match="certificate verify failed") as caught:
        poll_mailbox(pop3s.url)
    assert PASSWORD not in str(caught.value) and pop3s.maildrop.messages == [message(1)]

    def trusting_the_test_certificate(parts):
        context = ssl.create_default_context(cafile=pop3s.cert_file)
        return mailbox.LimitedPOP3_SSL(parts.host, parts.port, timeout=5, context=context)

    report = poll_mailbox(pop3s.url, connect=trusting_the_test_certificate)
    assert report.stored == 1 and pop3s.maildrop.messages == []


def test_a_poll_takes_at_most_its_limit_and_leaves_the_rest(pop3):
    pop3.maildrop.messages = [message(n) for n in range(5)]

    report = poll_mailbox(pop3.url, limit=3)

    assert (report.found, report.stored, report.deferred) == (5, 3, 2)
    assert pop3.maildrop.messages == [message(3), message(4)]


def test_a_huge_message_is_stored_from_its_beginning_not_skipped(pop3, monkeypatch, settings):
    monkeypatch.setattr(mailbox, "MAX_FETCH_BYTES", 50_000)
    settings.BOUNCE_KEEP_KB = 16
    long_line = b"x" * 5000  # over poplib's 2,048-byte line limit
    huge = dsn("gone@example.jp") + b"\r\n".join([long_line] * 30) + b"\r\n"
    pop3.maildrop.messages = [huge, message(1)]

    report = poll_mailbox(pop3.url)

    assert (report.stored, report.truncated, report.failed) == (2, 1, 0)
    assert pop3.maildrop.messages == []
    kept = InboundMessage.objects.get(kind="hard")
    assert len(kept.raw) == 16 * 1024 and kept.size == len(huge) and kept.truncated
    assert kept.note == "kept the first 16 KB"


def test_mailbox_urls_are_percent_decoded_and_never_shown_with_the_password():
    url = (
        f"imaps://{quote('bounce@example.jp', safe='')}:{quote(PASSWORD, safe='')}@mail.example.jp"
    )
    parts = parse_mailbox_url(url)
    assert (parts.user, parts.password, parts.port, parts.folder) == (
        "bounce@example.jp",
        PASSWORD,
        993,
        "INBOX",
    )
    assert parts.redacted == "imaps://bounce%40example.jp@mail.example.jp:993/INBOX"
    assert PASSWORD not in repr(parts)
    assert parse_mailbox_url("pop3s://u:p@mail.example.jp").port == 995
    assert parse_mailbox_url("imaps://u:p@mail.example.jp:1993/Bounces%20Box").folder == (
        "Bounces Box"
    )

    for bad, reason in [
        ("pop3://u:secret@mail.example.jp", "unencrypted"),
        ("pop3s://u:sec/ret@mail.example.jp", "percent-encode"),
        ("pop3s://u:secret@mail.example.jp/INBOX", "POP3 has no folders"),
        ("pop3s://mail.example.jp", "USER:PASSWORD@HOST"),
        ("https://u:secret@mail.example.jp", "pop3s://"),
    ]:
        with pytest.raises(MailboxError, match=reason) as caught:
            parse_mailbox_url(bad)
        assert "secret" not in str(caught.value) and "sec/ret" not in str(caught.value)


def test_an_unset_url_is_an_error_for_a_poll_by_hand(settings):
    settings.BOUNCE_MAILBOX_URL = ""
    with pytest.raises(MailboxError, match="MERUMAGA_BOUNCE_MAILBOX_URL"):
        poll_mailbox()


# IMAP: a fake speaking imaplib's return shapes.


class FakeIMAP:
    def __init__(self, folders: dict[str, dict[int, bytes]], password: str = PASSWORD):
        self.folders, self.password = folders, password
        self.flags: dict[int, set[str]] = defaultdict(set)
        self.calls: list[tuple] = []
        self.box: dict[int, bytes] = {}

    def login(self, user, password):
        self.calls.append(("LOGIN", user))
        if password != self.password:
            raise imaplib.IMAP4.error("b'[AUTHENTICATIONFAILED] Authentication failed.'")
        return "OK", [b"Logged in"]

    def select(self, mailbox="INBOX", readonly=False):
        self.calls.append(("SELECT", mailbox))
        name = mailbox.strip('"')
        if name not in self.folders:
            return "NO", [f"[NONEXISTENT] Mailbox doesn't exist: {name}".encode()]
        self.box = self.folders[name]
        return "OK", [str(len(self.box)).encode()]

    def uid(self, command, *args):
        self.calls.append((command, *args))
        if command == "SEARCH":
            assert args == ("UNDELETED",)
            live = [uid for uid in sorted(self.box) if "\\Deleted" not in self.flags[uid]]
            return "OK", [" ".join(map(str, live)).encode()]
        if command == "FETCH":
            uids, items = args
            if items == "(RFC822.SIZE)":
                first, _, last = uids.partition(":")
                return "OK", [
                    f"{seq} (UID {uid} RFC822.SIZE {len(raw)})".encode()
                    for seq, (uid, raw) in enumerate(sorted(self.box.items()), 1)
                    if int(first) <= uid <= int(last or first)
                ]
            match = re.fullmatch(r"\(BODY\.PEEK\[\](?:<0\.(\d+)>)?\)", items)
            assert match, items
            raw = self.box[int(uids)]
            if match.group(1):
                raw = raw[: int(match.group(1))]
            section = "BODY[]<0>" if match.group(1) else "BODY[]"
            return "OK", [(f"1 (UID {uids} {section} {{{len(raw)}}}".encode(), raw), b")"]
        if command == "STORE":
            uid, operation, flags = args
            assert operation == "+FLAGS"
            self.flags[int(uid)].update(flags.strip("()").split())
            return "OK", [f"1 (UID {uid} FLAGS {flags})".encode()]
        raise AssertionError(command)

    def expunge(self):
        self.calls.append(("EXPUNGE",))
        for uid in [uid for uid in self.box if "\\Deleted" in self.flags[uid]]:
            del self.box[uid]
        return "OK", [None]

    def logout(self):
        self.calls.append(("LOGOUT",))
        return "BYE", [b"Logging out"]


IMAP_URL = f"imaps://bounces:{quote(PASSWORD, safe='')}@mail.example.jp/Bounces"


def test_imap_flags_only_stored_messages_then_expunges(monkeypatch):
    reader = make_subscriber("gone@example.jp")
    server = FakeIMAP(
        {"Bounces": {7: dsn("gone@example.jp", reader=reader), 8: message(8), 9: AUTO_REPLY}}
    )
    real_receive = services.receive

    def database_down_for_uid_8(raw, source, **kwargs):
        if b"<m8@" in raw:
            raise ConnectionError("database is down")
        return real_receive(raw, source, **kwargs)

    monkeypatch.setattr(services, "receive", database_down_for_uid_8)
    report = poll_mailbox(IMAP_URL, connect=lambda parts: server)

    assert (report.found, report.stored, report.failed) == (3, 2, 1)
    stores = [call[1] for call in server.calls if call[0] == "STORE"]
    assert stores == ["7", "9"]
    assert ("FETCH", "8", "(BODY.PEEK[])") in server.calls  # PEEK: not marked read for people
    assert server.calls[-2:] == [("EXPUNGE",), ("LOGOUT",)]
    assert list(server.box) == [8] and not server.flags[8]
    assert set(InboundMessage.objects.values_list("source", "kind")) == {
        ("imap", "hard"),
        ("imap", "auto_reply"),
    }

    monkeypatch.setattr(services, "receive", real_receive)
    again = poll_mailbox(IMAP_URL, connect=lambda parts: server)
    assert (again.found, again.stored) == (1, 1) and server.box == {}


def test_imap_a_missing_folder_is_named_in_the_error():
    server = FakeIMAP({"INBOX": {1: message(1)}})

    with pytest.raises(MailboxError, match='"Bounces"') as caught:
        poll_mailbox(IMAP_URL, connect=lambda parts: server)

    assert "NONEXISTENT" in str(caught.value) and PASSWORD not in str(caught.value)
    assert not any(call[0] == "STORE" for call in server.calls)
    assert server.calls[-1] == ("LOGOUT",)


def test_imap_folder_names_are_quoted_and_encoded_as_imap_wants():
    server = FakeIMAP({"&MNAwpjDzMLk-": {}})  # "バウンス" in modified UTF-7
    url = f"imaps://bounces:{quote(PASSWORD, safe='')}@mail.example.jp/{quote('バウンス')}"

    report = poll_mailbox(url, connect=lambda parts: server)

    assert report.found == 0 and ("SELECT", '"&MNAwpjDzMLk-"') in server.calls


def test_imap_a_wrong_password_is_a_mailbox_error_without_the_password():
    server = FakeIMAP({"Bounces": {}}, password="another")

    with pytest.raises(MailboxError, match="AUTHENTICATIONFAILED") as caught:
        poll_mailbox(IMAP_URL, connect=lambda parts: server)
    assert PASSWORD not in str(caught.value)


def test_imap_a_huge_message_is_fetched_only_as_far_as_it_is_kept(monkeypatch, settings):
    monkeypatch.setattr(mailbox, "MAX_FETCH_BYTES", 50_000)
    settings.BOUNCE_KEEP_KB = 16
    huge = message(1) + b"y" * 80_000
    server = FakeIMAP({"Bounces": {3: huge}})

    report = poll_mailbox(IMAP_URL, connect=lambda parts: server)

    assert (report.stored, report.truncated) == (1, 1)
    assert ("FETCH", "3", f"(BODY.PEEK[]<0.{16 * 1024}>)") in server.calls
    kept = InboundMessage.objects.get()
    assert kept.size == len(huge) and len(kept.raw) == 16 * 1024


# The periodic task.


@pytest.fixture
def no_poll(monkeypatch):
    calls = []
    monkeypatch.setattr(
        mailbox, "poll_mailbox", lambda *a, **kw: calls.append(1) or mailbox.PollReport()
    )
    return calls


def test_the_task_does_nothing_without_a_mailbox_url(settings, no_poll):
    settings.BOUNCE_MAILBOX_URL = ""
    tasks.poll_bounce_mailbox.call_local()
    assert no_poll == []


def test_the_task_polls_and_logs_when_the_url_is_set(settings, monkeypatch, caplog):
    settings.BOUNCE_MAILBOX_URL = "pop3s://u:secret@mail.example.jp"
    monkeypatch.setattr(
        mailbox, "poll_mailbox", lambda: mailbox.PollReport(mailbox="pop3s://u@mail.example.jp")
    )
    with caplog.at_level(logging.INFO, logger="merumaga.bounces.tasks"):
        tasks.poll_bounce_mailbox.call_local()
    assert "bounce mailbox polled: pop3s://u@mail.example.jp" in caplog.text
    assert not tasks.POLL_LOCK.is_locked()


def test_the_task_logs_a_mailbox_error(settings, monkeypatch, caplog):
    settings.BOUNCE_MAILBOX_URL = "pop3s://u:secret@mail.example.jp"

    def refused():
        raise MailboxError("pop3s://u@mail.example.jp:995: login refused: -ERR nope")

    monkeypatch.setattr(mailbox, "poll_mailbox", refused)
    with caplog.at_level(logging.ERROR, logger="merumaga.bounces.tasks"):
        tasks.poll_bounce_mailbox.call_local()
    assert "login refused" in caplog.text and not tasks.POLL_LOCK.is_locked()


def test_two_polls_never_overlap_but_a_stale_lock_is_taken_over(settings, monkeypatch, no_poll):
    settings.BOUNCE_MAILBOX_URL = "pop3s://u:secret@mail.example.jp"
    tasks.POLL_LOCK.acquire()
    try:
        HUEY.put(tasks.POLL_STARTED_KEY, 1e12)  # a poll running now
        tasks.poll_bounce_mailbox.call_local()
        assert no_poll == []

        HUEY.put(tasks.POLL_STARTED_KEY, 0.0)  # a poll killed long ago
        tasks.poll_bounce_mailbox.call_local()
        assert no_poll == [1]
        assert not tasks.POLL_LOCK.is_locked()
    finally:
        tasks.POLL_LOCK.clear()
        HUEY.delete(tasks.POLL_STARTED_KEY)


def test_the_task_runs_every_poll_minutes(settings):
    settings.BOUNCE_POLL_MINUTES = 5
    # Naive, as Huey passes its clock (UTC).
    assert tasks.poll_due(datetime(2026, 5, 12, 10, 15))  # noqa: DTZ001
    assert not tasks.poll_due(datetime(2026, 5, 12, 10, 16))  # noqa: DTZ001
    settings.BOUNCE_POLL_MINUTES = 7  # no divisor of 60: still every 7 minutes, across midnight
    start = datetime(2026, 5, 12)  # noqa: DTZ001
    due = [m for m in range(2 * 24 * 60) if tasks.poll_due(start + timedelta(minutes=m))]
    assert {later - earlier for earlier, later in itertools.pairwise(due)} == {7}
