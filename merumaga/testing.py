"""Helpers the tests share: factories of readers and content, a free port, waiting for mail in
the catcher, the phone-width check, the admin log-in, a DSN and a small POP3 server for the
bounce mailbox. Fixtures live in the conftest.py files.
"""

import ipaddress
import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from urllib.parse import quote
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.utils import timezone

from merumaga.delivery.catcher import list_messages, read_message
from merumaga.mailings import services as mailing_services
from merumaga.mailings.models import Mailing
from merumaga.publishing import services as publishing_services
from merumaga.publishing.models import Article, Event, Report, Status
from merumaga.subscribers.models import ConsentRecord, Subscriber, Subscription, Topic
from merumaga.subscribers.tokens import address_token

ALL_TOPICS = ["weekly", "articles", "reports", "events"]
TOKYO = ZoneInfo("Asia/Tokyo")


def make_subscriber(
    email="reader@example.jp", status=Subscriber.Status.CONFIRMED, topics=ALL_TOPICS, **fields
) -> Subscriber:
    subscriber = Subscriber.objects.create(email=email, status=status, **fields)
    for topic in Topic.objects.filter(key__in=topics):
        Subscription.objects.create(subscriber=subscriber, topic=topic)
    ConsentRecord.objects.create(
        subscriber=subscriber, email=email, action="subscribe", source="admin", topics=list(topics)
    )
    return subscriber


def subscribed_keys(subscriber: Subscriber) -> set[str]:
    return set(
        Subscription.objects.filter(subscriber=subscriber, subscribed=True).values_list(
            "topic__key", flat=True
        )
    )


def make_article(title="記事", published=True, **fields) -> Article:
    article = Article(
        title=title,
        digest=fields.pop("digest", "要約の文章。"),
        body=fields.pop("body", "本文。"),
        status=Status.PUBLISHED if published else Status.DRAFT,
        published_at=fields.pop("published_at", timezone.now() if published else None),
        **fields,
    )
    publishing_services.prepare_article(article)
    article.save()
    return article


def make_report(title="レポート", published=True, **fields) -> Report:
    report = Report(
        title=title,
        summary=fields.pop("summary", "概要。"),
        pdf=fields.pop("pdf", "reports/demo.pdf"),
        status=Status.PUBLISHED if published else Status.DRAFT,
        published_at=timezone.now() if published else None,
        **fields,
    )
    publishing_services.prepare_report(report)
    report.save()
    return report


def make_event(**fields) -> Event:
    """A published event a week from now, 14:00–16:00 Japan time, unless told otherwise."""
    day = (timezone.now() + timedelta(days=7)).astimezone(TOKYO).date()
    starts_at = datetime(day.year, day.month, day.day, 14, 0, tzinfo=TOKYO)
    defaults = {
        "title": "政策セミナー",
        "description": "## 概要\n\n最新の**研究成果**を紹介します。",
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(hours=2),
        "venue": "東京都千代田区 会議室A",
        "capacity": 5,
        "status": Event.EventStatus.PUBLISHED,
        "published_at": timezone.now(),
    }
    event = publishing_services.prepare_event(Event(**{**defaults, **fields}))
    event.save()
    return event


def make_seminar(**fields) -> Event:
    """A published event ten days from now, made directly (slug "seminar", or "seminar-N" when
    a test makes several): the mail tests' event."""
    starts = timezone.now() + timedelta(days=10)
    taken = Event.objects.filter(slug__startswith="seminar").count()
    return Event.objects.create(
        title="公開セミナー",
        slug=f"seminar-{taken + 1}" if taken else "seminar",
        starts_at=starts,
        ends_at=starts + timedelta(hours=2),
        venue="東京",
        status="published",
        published_at=timezone.now(),
        description="**説明**",
        **fields,
    )


KINDS = ["weekly", "article", "report", "event_invitation", "event_reminder", "custom"]


def mailing_of(kind: str) -> Mailing:
    if kind == "weekly":
        make_article(
            "週報の記事",
            published_at=timezone.now() - timedelta(days=1),
            source_name="架空新聞",
            source_detail="12月号",
        )
        weekly = mailing_services.compose_weekly().mailing
        if weekly is None:  # the article just published is new to every report
            raise RuntimeError("compose_weekly found nothing to send")
        return weekly
    if kind == "article":
        return mailing_services.compose_for_article(
            make_article("通知する記事", source_name="架空新聞")
        )
    if kind == "report":
        return mailing_services.compose_for_report(make_report("コンパクト版レポート"))
    if kind == "event_invitation":
        return mailing_services.compose_event_invitation(make_seminar())
    if kind == "event_reminder":
        return mailing_services.compose_event_reminder(make_seminar())
    return Mailing.objects.create(
        kind="custom",
        topic=Topic.objects.get(key="articles"),
        subject="お知らせ",
        intro="年末年始の休業について",
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_mail(directory, count: int = 1, timeout: float = 30.0) -> EmailMessage:
    """The newest mail in the catcher's Maildir once it holds `count`; fails after `timeout`.
    For a mail a server sends from another thread or process (the browser tests)."""
    deadline = time.monotonic() + timeout
    total = 0
    while time.monotonic() < deadline:
        messages, total = list_messages(directory)
        if total >= count:
            return read_message(directory, messages[0].key)  # newest first
        time.sleep(0.1)
    raise AssertionError(f"expected {count} mails in the catcher, found {total}")


def assert_fits_the_phone(page) -> None:
    """No sideways scrolling on a 375 px wide screen."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def log_in(page, live_server, username: str, password: str) -> None:
    """Log in to the admin in the browser test's page."""
    from playwright.sync_api import expect  # only the browser tests have a browser

    page.goto(f"{live_server.url}/admin/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.locator("#id_password").press("Enter")
    expect(page.locator("#nav-sidebar-inner")).to_contain_text(username)


# Bounce mailboxes.

PASSWORD = "p@ss/w:rd"  # what operators' passwords look like: percent-encoded in the URL


def dsn(recipient: str, message_id: str = "<dsn-1@mx.example.net>", reader=None) -> bytes:
    """A DSN for `recipient`; with `reader`, delivered to our VERP address for them (the
    Delivered-To header a mailbox keeps), which is what makes it credible."""
    to = (
        f"bounce+{address_token('bounce', 0, reader.pk)}@example.jp"
        if reader
        else "bounce@example.jp"
    )
    return (
        f"Delivered-To: {to}\r\n"
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {message_id}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "Your message could not be delivered.\r\n"
        "\r\n"
        "--b1\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: User unknown\r\n"
        "\r\n"
        "--b1--\r\n"
    ).encode()


# A POP3 server (RFC 1939) just big enough for poplib: deletions take effect at QUIT only.


class Maildrop:
    def __init__(
        self,
        messages: Iterable[bytes] = (),
        user: str = "bounces@example.jp",
        password: str = PASSWORD,
    ) -> None:
        self.messages = list(messages)
        self.user, self.password = user, password
        self.lock = threading.Lock()
        self.commands: list[str] = []


class POP3Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        if not isinstance(self.server, POP3Server):
            raise TypeError("POP3Handler serves a POP3Server (its maildrop)")
        drop = self.server.maildrop
        self.send("+OK test POP3 server ready")
        user, session, deleted = None, None, set()
        while line := self.rfile.readline():
            command, _, argument = line.decode().rstrip("\r\n").partition(" ")
            command = command.upper()
            drop.commands.append(command)
            if command == "QUIT":
                if session is not None:
                    with drop.lock:
                        drop.messages = [m for m in drop.messages if id(m) not in deleted]
                self.send("+OK bye")
                return
            if command == "USER":
                user = argument
                self.send("+OK")
            elif command == "PASS":
                if (user, argument) != (drop.user, drop.password):
                    self.send("-ERR [AUTH] invalid user name or password")
                    continue
                with drop.lock:
                    session = list(drop.messages)  # numbers stay fixed for the session
                self.send("+OK logged in")
            elif session is None:
                self.send("-ERR log in first")
            elif command == "STAT":
                live = [m for m in session if id(m) not in deleted]
                self.send(f"+OK {len(live)} {sum(map(len, live))}")
            elif command == "LIST":
                self.send("+OK")
                for number, raw in enumerate(session, 1):
                    if id(raw) not in deleted:
                        self.send(f"{number} {len(raw)}")
                self.send(".")
            elif command in ("RETR", "DELE"):
                number = int(argument) if argument.isdigit() else 0
                if not 0 < number <= len(session) or id(session[number - 1]) in deleted:
                    self.send("-ERR no such message")
                elif command == "DELE":
                    deleted.add(id(session[number - 1]))
                    self.send("+OK marked for deletion")
                else:
                    self.send(f"+OK {len(session[number - 1])} octets")
                    lines = session[number - 1].split(b"\r\n")
                    for body_line in lines[:-1] if lines[-1] == b"" else lines:
                        stuffed = b"." + body_line if body_line.startswith(b".") else body_line
                        self.wfile.write(stuffed + b"\r\n")
                    self.send(".")
            else:
                self.send("-ERR unknown command")
        # The client went away without QUIT: nothing is deleted.

    def send(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")


class POP3Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Set by start_pop3.
    maildrop: Maildrop
    url: str


class POP3TLSServer(POP3Server):
    """pop3s: TLS from the first byte, with a certificate for 127.0.0.1 signed by nobody."""

    def get_request(self):
        sock, address = super().get_request()
        return self.tls.wrap_socket(sock, server_side=True), address


def self_signed_certificate(directory) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def start_pop3(server_class, scheme: str):
    server = server_class(("127.0.0.1", 0), POP3Handler)
    server.maildrop = Maildrop()
    server.url = (
        f"{scheme}://{quote(server.maildrop.user, safe='')}:{quote(PASSWORD, safe='')}"
        f"@127.0.0.1:{server.server_address[1]}"
    )
    return server


class ApiClient:
    """Django's test client speaking JSON to /api/v1/ with a token of an account holding
    `role` (the role groups must exist: the `roles` fixture)."""

    def __init__(self, scopes: Iterable[str] | None = None, role: str = "管理者") -> None:
        from django.contrib.auth.models import Group, User
        from django.test import Client

        from merumaga.api import services as api_services

        user = User.objects.create_user(f"api-{role}-{User.objects.count()}", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        wanted = list(scopes) if scopes is not None else list(api_services.SCOPES)
        self.user = user
        self.token, self.raw = api_services.create_token(user, wanted)
        self.client = Client()

    def call(self, method: str, path: str, body: object = None, **extra):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.raw}", **extra}
        send = getattr(self.client, method)
        if body is None:
            return send(f"/api/v1{path}", **headers)
        return send(f"/api/v1{path}", json.dumps(body), content_type="application/json", **headers)

    def get(self, path: str, **extra):
        return self.call("get", path, **extra)

    def post(self, path: str, body: object = None, **extra):
        return self.call("post", path, {} if body is None else body, **extra)

    def put(self, path: str, body: object, **extra):
        return self.call("put", path, body, **extra)

    def patch(self, path: str, body: object, **extra):
        return self.call("patch", path, body, **extra)

    def delete(self, path: str, **extra):
        return self.call("delete", path, **extra)
