"""The built-in mail catcher: an SMTP server on loopback that keeps every message in a Maildir.

It stands in for a real relay when SMTP_URL is unset (development, demos, tests), so the platform
needs no mail server. The admin reads the Maildir back through the functions below.
"""

import asyncio
import logging
import mailbox
import os
import re
import signal
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.utils import formatdate, make_msgid
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.db import close_old_connections

from merumaga import mailview
from merumaga.delivery.signals import mail_caught

MAX_MESSAGE_SIZE = 50 * 1024 * 1024
# Mail to an address starting with this is answered with a DSN (user unknown), as a real receiving
# server would: how to see a bounce in development (a demo reader has such an address).
UNKNOWN_USER_PREFIX = "nosuchuser"
# The list only needs the header block; a message without one must not make us read 50 MB.
MAX_HEADER_SIZE = 256 * 1024

logger = logging.getLogger(__name__)


class MessageNotFound(LookupError):
    """No message with this key in the Maildir."""


@dataclass(frozen=True)
class CaughtMessage:
    key: str
    date: datetime  # when the catcher received it
    sender: str  # the From header, else the envelope sender
    to: tuple[str, ...]  # envelope recipients: who the mail was really delivered to
    to_header: str
    subject: str
    size: int


class MaildirHandler:
    """aiosmtpd handler: stores each message, as received, in a Maildir."""

    def __init__(self, directory: Path | str) -> None:
        directory = Path(directory)
        # mailbox.Maildir(create=True) makes only the last level, and nothing at all when the
        # directory exists without tmp/new/cur; make the whole layout ourselves.
        for sub in ("tmp", "new", "cur"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(directory, create=False)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content
        if content is None:  # aiosmtpd sets it before calling this hook
            raise RuntimeError("DATA hook called without the message content")
        await self._keep(envelope.mail_from or "", envelope.rcpt_tos, content)
        # Like a receiving server that does not know the user: accept, then send a DSN back to
        # the envelope sender (our VERP address), so the whole bounce loop runs in development.
        unknown = [r for r in envelope.rcpt_tos if r.lower().startswith(UNKNOWN_USER_PREFIX)]
        if unknown and envelope.mail_from:
            dsn = unknown_user_dsn(envelope.mail_from, unknown, content)
            await self._keep("", [envelope.mail_from], dsn)
        return "250 OK: message caught"

    async def _keep(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> None:
        key = self.maildir.add(_envelope_headers(mail_from, rcpt_tos) + content)
        logger.info("Caught mail %s for %s", key, ", ".join(rcpt_tos))
        # Listeners use the database: off the event loop, in a thread of their own.
        await asyncio.get_running_loop().run_in_executor(
            None, self._announce, mail_from, rcpt_tos, content
        )

    @staticmethod
    def _announce(mail_from: str, rcpt_tos: list[str], content: bytes) -> None:
        try:
            for receiver, error in mail_caught.send_robust(
                MaildirHandler, raw=content, envelope_from=mail_from, envelope_to=list(rcpt_tos)
            ):
                if isinstance(error, Exception):
                    logger.error("%s failed on a caught mail: %r", receiver, error)
        finally:
            close_old_connections()


def unknown_user_dsn(envelope_from: str, recipients: list[str], original: bytes) -> bytes:
    """An RFC 3464 report saying that `recipients` do not exist, as a receiving server writes it."""
    boundary = uuid.uuid4().hex
    listing = "\r\n".join(recipients)
    per_recipient = "".join(
        f"\r\nFinal-Recipient: rfc822; {address}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{address}>: Recipient address rejected: "
        "User unknown\r\n"
        for address in recipients
    )
    original_headers = original.split(b"\r\n\r\n", 1)[0]
    head = (
        "From: Mail Delivery System <MAILER-DAEMON@catcher.invalid>\r\n"
        f"To: {envelope_from}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {formatdate(localtime=True)}\r\n"
        f"Message-ID: {make_msgid(domain='catcher.invalid')}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is the mail catcher of a merumaga development setup. These addresses start with\r\n"
        f"'{UNKNOWN_USER_PREFIX}', so it answers as a server that does not know them:\r\n\r\n"
        f"{listing}\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; catcher.invalid\r\n"
        f"{per_recipient}\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
    )
    return head.encode() + original_headers + f"\r\n\r\n--{boundary}--\r\n".encode()


def _envelope_headers(mail_from: str, rcpt_tos: list[str]) -> bytes:
    # The envelope says where the mail really went (Bcc included); the headers alone do not.
    # Addresses come from SMTP command lines: drop stray line breaks so none can forge a header.
    def clean(address: str) -> str:
        return address.replace("\r", "").replace("\n", "")

    lines = [f"Return-Path: <{clean(mail_from)}>"]
    lines += [f"X-Envelope-To: {clean(rcpt)}" for rcpt in rcpt_tos]
    return "".join(f"{line}\r\n" for line in lines).encode()


def start_catcher(directory: Path | str, *, host: str = "127.0.0.1", port: int) -> Controller:
    """Start the catcher in a background thread, on a concrete port (not 0).

    Raises OSError if the port is taken. Call .stop() on the result to stop it.
    """
    _check_port_free(host, port)
    controller = Controller(
        MaildirHandler(directory),
        hostname=host,
        port=port,
        # Our own name for the greeting: the default, socket.getfqdn(), can stall on DNS.
        server_hostname="localhost",
        data_size_limit=MAX_MESSAGE_SIZE,
        decode_data=False,
        enable_SMTPUTF8=True,
    )
    return start_controller(controller)


def start_controller(controller: Controller) -> Controller:
    """Start an aiosmtpd controller; on failure close what it opened and raise."""
    # aiosmtpd logs every SMTP command at INFO: too much beside the server's own log, unless
    # LOGGING asked for it.
    aiosmtpd_logger = logging.getLogger("mail.log")
    if aiosmtpd_logger.level == logging.NOTSET:
        aiosmtpd_logger.setLevel(logging.WARNING)
    try:
        controller.start()
    except Exception:
        # A failed bind leaves the controller's private event loop open: close it, don't leak it.
        controller.stop(no_assert=True)
        if not controller.loop.is_closed():
            controller.loop.close()
        raise
    return controller


def serve_until_stopped(stop: Callable[[], None]) -> None:
    """Block until Ctrl-C or SIGTERM, then call `stop`: for the commands running a server.

    SIGTERM (a process manager) stops us like Ctrl-C; SIGINT is set too, because a shell starting
    us in the background (as `make run` may) leaves SIGINT ignored.
    """
    stopping_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, signal.default_int_handler) for sig in stopping_signals}
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _check_port_free(host: str, port: int) -> None:
    # Controller.start() notices a failed bind only after its whole ready timeout (5 s): try the
    # bind first, as asyncio will (SO_REUSEADDR), to fail at once in the usual case.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


# Reading the Maildir back.


# mailbox.Maildir names a file "<seconds>.M<microseconds>P<pid>Q<counter>.<host>": the time of
# delivery, finer than the file's mtime, and a counter that orders mails of the same microsecond.
_MAILBOX_KEY = re.compile(r"(\d+)\.M(\d+)P\d+Q(\d+)\.")


@dataclass(frozen=True)
class _Entry:
    key: str
    path: str
    received: float  # POSIX timestamp
    counter: int
    size: int


def _scan(directory: Path | str) -> Iterator[_Entry]:
    for sub in ("new", "cur"):
        try:
            with os.scandir(Path(directory) / sub) as listing:
                files = [f for f in listing if f.is_file() and not f.name.startswith(".")]
        except FileNotFoundError:
            continue
        for file in files:
            try:
                stat = file.stat()
            except FileNotFoundError:  # moved from new/ to cur/ by a mail client meanwhile
                continue
            # In cur/ the file name carries flags after the colon; the key is what precedes it.
            key = file.name.split(":", 1)[0]
            if match := _MAILBOX_KEY.match(key):
                seconds, microseconds, counter = map(int, match.groups())
                yield _Entry(key, file.path, seconds + microseconds / 1e6, counter, stat.st_size)
            else:  # delivered by some other program
                yield _Entry(key, file.path, stat.st_mtime, 0, stat.st_size)


def _path(directory: Path | str, key: str) -> str:
    # Keys come from URLs. Only a file found by listing the Maildir is ever opened, so a key like
    # "../settings.py" is simply not found: nothing is built from the key itself.
    for entry in _scan(directory):
        if entry.key == key:
            return entry.path
    raise MessageNotFound(key)


def _header_block(path: str) -> bytes:
    lines, size = [], 0
    with open(path, "rb") as file:
        while size <= MAX_HEADER_SIZE:
            line = file.readline(MAX_HEADER_SIZE)
            if line in (b"", b"\n", b"\r\n"):  # end of file, or the blank line ending the headers
                break
            lines.append(line)
            size += len(line)
    return b"".join(lines)


def _summary(entry: _Entry) -> CaughtMessage | None:
    try:
        block = _header_block(entry.path)
    except FileNotFoundError:  # deleted or moved since the scan
        return None
    items = mailview.header_items(BytesHeaderParser(policy=policy.default).parsebytes(block))

    def first(name: str) -> str:
        return next((value.strip() for key, value in items if key.lower() == name), "")

    return CaughtMessage(
        key=entry.key,
        date=datetime.fromtimestamp(entry.received, tz=UTC),
        sender=first("from") or first("return-path").strip("<>"),
        to=tuple(value.strip(" <>") for key, value in items if key.lower() == "x-envelope-to"),
        to_header=first("to"),
        subject=first("subject"),
        size=entry.size,
    )


def list_messages(
    directory: Path | str, recipient_query: str = "", offset: int = 0, limit: int = 50
) -> tuple[list[CaughtMessage], int]:
    """One page of messages, newest first, and how many there are in all.

    recipient_query keeps the messages whose envelope recipients or To header contain it
    (case-insensitive).
    """
    entries = sorted(_scan(directory), key=lambda e: (e.received, e.counter), reverse=True)
    query = recipient_query.strip().casefold()
    if not query:
        # Only the page shown is opened and parsed: the Maildir may hold thousands of mails.
        page = [_summary(entry) for entry in entries[offset : offset + limit]]
        return [message for message in page if message], len(entries)
    matches = [
        message
        for message in map(_summary, entries)
        if message and query in " ".join((*message.to, message.to_header)).casefold()
    ]
    return matches[offset : offset + limit], len(matches)


def raw_message(directory: Path | str, key: str) -> bytes:
    """The message as stored, envelope headers included; MessageNotFound if there is none."""
    try:
        with open(_path(directory, key), "rb") as file:
            return file.read()
    except FileNotFoundError:
        raise MessageNotFound(key) from None


def read_message(directory: Path | str, key: str) -> EmailMessage:
    """The whole message, parsed; MessageNotFound if there is none."""
    return BytesParser(policy=policy.default).parsebytes(raw_message(directory, key))
