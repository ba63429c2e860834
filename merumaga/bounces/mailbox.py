"""Polling a mailbox the bounces land in, over POP3 or IMAP (TLS), for operators whose MTA cannot
hand the bounce domain to the built-in receiver.

Nothing is lost: a message is removed from the server only after services.receive has stored it.
POP3 deletions take effect at QUIT only, so a poll cut short (process killed, connection lost)
deletes nothing: the next poll fetches the same messages again and the ones already stored count
as duplicates (receive dedupes by Message-ID, never acts twice). IMAP messages are flagged
\\Deleted one by one once stored and removed by EXPUNGE at the end; flagged ones left by a poll
cut short are skipped by the next (UNDELETED) and expunged with it.

A poll does a bounded amount of work (MAX_MESSAGES, MAX_SECONDS); the next one takes the rest.
"""

import base64
import imaplib
import logging
import poplib
import re
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, cast
from urllib.parse import quote, unquote, urlsplit

from django.conf import settings

from merumaga.bounces import services
from merumaga.bounces.models import Source

logger = logging.getLogger(__name__)

TIMEOUT = 30  # seconds, for each network operation
MAX_MESSAGES = 1000
MAX_SECONDS = 10 * 60  # no new message is started after this; the next poll takes the rest
# Larger messages are fetched only as far as receive keeps them (BOUNCE_KEEP_KB), so a huge one
# costs neither the memory nor, over IMAP, the transfer; it is still stored, never skipped.
MAX_FETCH_BYTES = 50 * 1024 * 1024
# The database is probably down: the rest waits on the server instead of failing one by one.
MAX_CONSECUTIVE_FAILURES = 5
DEFAULT_PORTS = {"pop3s": 995, "imaps": 993, "pop3": 110, "imap": 143}
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
_READ_CHUNK = 64 * 1024


class MailboxError(Exception):
    """The mailbox could not be polled (or the poll was cut short); the message names the mailbox
    without its password. `report` holds what a poll cut short had done by then."""

    def __init__(self, message: str, report: "PollReport | None" = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class PollReport:
    mailbox: str = ""  # the URL without its password
    found: int = 0  # messages waiting on the server when the poll began
    stored: int = 0  # kept and acted on for the first time, then removed from the server
    duplicates: int = 0  # kept before (an earlier removal did not take), removed again
    failed: int = 0  # could not be stored: left on the server for the next poll
    deferred: int = 0  # not looked at (over this poll's limits): left for the next poll
    truncated: int = 0  # over MAX_FETCH_BYTES: only the part receive keeps was fetched
    kinds: Counter = field(default_factory=Counter)  # InboundMessage.kind of the ones stored

    def __str__(self) -> str:
        text = (
            f"{self.mailbox}: {self.found} found, {self.stored} stored, "
            f"{self.duplicates} duplicates, {self.failed} failed, {self.deferred} deferred"
        )
        if self.truncated:
            text += f", {self.truncated} truncated"
        if self.kinds:
            text += " (" + ", ".join(f"{k} {n}" for k, n in sorted(self.kinds.items())) + ")"
        return text


@dataclass(frozen=True)
class MailboxURL:
    scheme: str
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    folder: str = "INBOX"  # IMAP only

    @property
    def protocol(self) -> str:
        return "pop3" if self.scheme.startswith("pop3") else "imap"

    @property
    def redacted(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        text = f"{self.scheme}://{quote(self.user, safe='')}@{host}:{self.port}"
        return text + (f"/{self.folder}" if self.protocol == "imap" else "")


class POP3Client(Protocol):
    """What a POP3 poll uses; `connect` may return any object with these methods."""

    def user(self, user: str) -> bytes: ...
    def pass_(self, pswd: str) -> bytes: ...
    def list(self) -> tuple[bytes, list[bytes], int]: ...
    def retr_limited(self, which: int, limit: int) -> tuple[bytes, int]: ...
    def dele(self, which: int) -> bytes: ...
    def quit(self) -> bytes: ...


class IMAPClient(Protocol):
    """What an IMAP poll uses (imaplib.IMAP4's own methods and return shapes)."""

    def login(self, user: str, password: str) -> tuple[str, list]: ...
    def select(self, mailbox: str = "INBOX", readonly: bool = False) -> tuple[str, list]: ...
    def uid(self, command: str, *args: str) -> tuple[str, list]: ...
    def expunge(self) -> tuple[str, list]: ...
    def logout(self) -> tuple[str, list]: ...


Connect = Callable[[MailboxURL], POP3Client | IMAPClient]


def redact_url(url: str) -> str:
    """The URL with its password replaced by ***, whatever it contains (even an unencoded / or @,
    which would mislead a URL parser)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, host_and_path = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host_and_path}"


def parse_mailbox_url(url: str) -> MailboxURL:
    """pop3s://user:password@host[:995] or imaps://user:password@host[:993][/FOLDER]."""
    shown = redact_url(url)
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise MailboxError(f"{shown}: expected a URL starting with pop3s:// or imaps://.")
    if "@" in parts.path + parts.query + parts.fragment:
        raise MailboxError(
            f"{shown}: the user name or password seems to contain '/', '?' or '#'; "
            "percent-encode them (%2F, %3F, %23; '@' is %40)."
        )
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise MailboxError(f"{shown}: the port must be a number from 1 to 65535.") from None
    host = parts.hostname or ""
    if not host or parts.username is None or parts.password is None:
        raise MailboxError(f"{shown}: expected {parts.scheme}://USER:PASSWORD@HOST.")
    if parts.scheme in ("pop3", "imap") and host not in LOOPBACK_HOSTS:
        raise MailboxError(
            f"{shown}: {parts.scheme}:// would send the password unencrypted; use "
            f"{parts.scheme}s:// (plain {parts.scheme}:// is for tests on loopback only)."
        )
    folder = unquote(parts.path.strip("/"))
    if parts.scheme.startswith("pop3") and folder:
        raise MailboxError(f"{shown}: POP3 has no folders; use imaps:// to read /{folder}.")
    return MailboxURL(
        scheme=parts.scheme,
        host=host,
        port=port,
        user=unquote(parts.username),
        password=unquote(parts.password),
        folder=folder or "INBOX",
    )


def poll_mailbox(
    url: str | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    connect: Connect | None = None,
    limit: int = MAX_MESSAGES,
) -> PollReport:
    """Fetch the waiting messages (at most `limit`), store each with services.receive, and remove
    from the server those stored. Raises MailboxError for connection and login trouble.

    `progress(done, total)` is called after each message; `connect(parts)` returns a connected
    client (POP3Client or IMAPClient), by default open_connection.
    """
    url = settings.BOUNCE_MAILBOX_URL if url is None else url
    if not url:
        raise MailboxError("No mailbox to poll: set MERUMAGA_BOUNCE_MAILBOX_URL.")
    parts = parse_mailbox_url(url)
    report = PollReport(mailbox=parts.redacted)
    with _talking(parts, "connecting"):
        client = (connect or open_connection)(parts)
    # `connect` returns the client for the URL's protocol: a contract its type cannot state.
    box = (
        _Pop3Box(cast(POP3Client, client), parts)
        if parts.protocol == "pop3"
        else _ImapBox(cast(IMAPClient, client), parts)
    )
    try:
        _poll(box, report, progress, limit)
    except MailboxError as error:
        error.report = report
        box.abandon()
        raise
    except BaseException:
        box.abandon()
        raise
    return report


def open_connection(parts: MailboxURL) -> POP3Client | IMAPClient:
    """A connected client (certificates verified), not yet logged in."""
    context = ssl.create_default_context()
    if parts.scheme == "pop3s":
        return LimitedPOP3_SSL(parts.host, parts.port, timeout=TIMEOUT, context=context)
    if parts.scheme == "pop3":
        return LimitedPOP3(parts.host, parts.port, timeout=TIMEOUT)
    if parts.scheme == "imaps":
        return imaplib.IMAP4_SSL(parts.host, parts.port, ssl_context=context, timeout=TIMEOUT)
    return imaplib.IMAP4(parts.host, parts.port, timeout=TIMEOUT)


if TYPE_CHECKING:

    class _POP3Internals(poplib.POP3):
        # poplib's private helpers the mixin below uses; typeshed leaves them out.
        def _shortcmd(self, line: str) -> bytes: ...
        def _getline(self) -> tuple[bytes, int]: ...

    _RetrBase = _POP3Internals
else:
    _RetrBase = object  # a plain mixin, placed before poplib.POP3 or POP3_SSL


class _LimitedRetrMixin(_RetrBase):
    """poplib reads a whole message into a list of lines and gives up on lines over 2,048 bytes
    (bounced mail breaks that rule, and the session is then lost); this reads RETR in chunks,
    keeping only the first `limit` bytes."""

    def _getline(self):
        try:
            return super()._getline()
        except poplib.error_proto as error:
            if error.args == ("-ERR EOF",):  # poplib's word for a closed connection
                raise ConnectionError("the server closed the connection") from None
            raise

    def retr_limited(self, which: int, limit: int) -> tuple[bytes, int]:
        """The message's first `limit` bytes (as sent, CRLF line ends) and its full size."""
        self._shortcmd(f"RETR {which}")
        kept = bytearray()
        size = 0
        line_start = True
        while True:
            chunk = self.file.readline(_READ_CHUNK)
            if not chunk:
                raise ConnectionError("the server closed the connection during RETR")
            if line_start:
                if chunk in (b".\r\n", b".\n"):
                    break
                if chunk.startswith(b".."):  # dot-stuffing (RFC 1939)
                    chunk = chunk[1:]
            line_start = chunk.endswith(b"\n")
            size += len(chunk)
            if len(kept) < limit:
                kept += chunk[: limit - len(kept)]
        return bytes(kept), size


class LimitedPOP3(_LimitedRetrMixin, poplib.POP3):
    pass


class LimitedPOP3_SSL(_LimitedRetrMixin, poplib.POP3_SSL):
    pass


@contextmanager
def _talking(parts: MailboxURL, doing: str) -> Iterator[None]:
    """Protocol and network errors as a MailboxError naming the mailbox, never its password."""
    try:
        yield
    except (OSError, EOFError, poplib.error_proto, imaplib.IMAP4.error) as error:
        # `from None`: the original's text is shown only redacted, here.
        raise MailboxError(f"{parts.redacted}: {doing}: {_describe(error, parts)}") from None


@contextmanager
def _refused(parts: MailboxURL, answer: type[Exception]) -> Iterator[None]:
    """The server's answer to the login, as opposed to a connection lost during it."""
    try:
        yield
    except imaplib.IMAP4.abort:
        raise
    except answer as error:
        raise MailboxError(f"{parts.redacted}: login refused: {_describe(error, parts)}") from None


def _describe(error: BaseException, parts: MailboxURL) -> str:
    if isinstance(error, TimeoutError):
        text = f"no answer within {TIMEOUT} s"
    elif error.args and isinstance(error.args[0], bytes):
        text = error.args[0].decode("utf-8", "replace")
    else:
        text = str(error) or type(error).__name__
    if parts.password:
        for form in {parts.password, quote(parts.password, safe=""), quote(parts.password)}:
            text = text.replace(form, "***")
    return text


def _poll(box: "_Pop3Box | _ImapBox", report: PollReport, progress, limit: int) -> None:
    report.found, batch = box.open(max(limit, 0))
    deadline = time.monotonic() + MAX_SECONDS
    done = consecutive_failures = 0
    for key, size in batch:
        if time.monotonic() > deadline:
            logger.warning("%s: poll out of time; the rest waits for the next", report.mailbox)
            break
        if consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
            logger.error(
                "%s: %d messages in a row could not be stored; the rest waits for the next poll",
                report.mailbox,
                consecutive_failures,
            )
            break
        fetched = box.fetch(key, size)
        if fetched is None:
            report.failed += 1
            consecutive_failures += 1
        elif _store(*fetched, box.source, report, f"{box.name} {key}"):
            box.remove(key)
            consecutive_failures = 0
        else:
            consecutive_failures += 1
        done += 1
        if progress is not None:
            progress(done, len(batch))
    report.deferred = report.found - done
    box.close()


def _fetch_limit(size: int) -> int:
    return settings.BOUNCE_KEEP_KB * 1024 if size > MAX_FETCH_BYTES else MAX_FETCH_BYTES


def _store(raw: bytes, size: int, source: str, report: PollReport, where: str) -> bool:
    """Whether the message is safely stored (and so may be removed from the server)."""
    try:
        message = services.receive(raw, source, size=size)
    except Exception:
        report.failed += 1
        logger.exception("%s: could not be stored; left on the server for the next poll", where)
        return False
    if size > len(raw):
        report.truncated += 1
        logger.warning("%s: %d bytes, over the fetch limit: kept its beginning only", where, size)
    if message.times_received > 1:
        report.duplicates += 1
        return True
    report.stored += 1
    report.kinds[message.kind] += 1
    return True


class _Pop3Box:
    source = Source.POP3

    def __init__(self, client: POP3Client, parts: MailboxURL) -> None:
        self.client, self.parts = client, parts
        self.name = f"{parts.redacted} message"

    def open(self, limit: int) -> tuple[int, list[tuple[int, int]]]:
        """Log in; the number of messages waiting and (number, size) of the first `limit`."""
        with _talking(self.parts, "login"), _refused(self.parts, poplib.error_proto):
            self.client.user(self.parts.user)
            self.client.pass_(self.parts.password)
        with _talking(self.parts, "LIST"):
            _, lines, _ = self.client.list()
        waiting = []
        for line in lines:
            number, size = line.split()[:2]
            waiting.append((int(number), int(size)))
        return len(waiting), waiting[:limit]

    def fetch(self, number: int, size: int) -> tuple[bytes, int] | None:
        """The message (or its beginning, when huge) and its full size; None if refused."""
        with _talking(self.parts, f"RETR {number}"):
            try:
                return self.client.retr_limited(number, _fetch_limit(size))
            except poplib.error_proto as error:  # a -ERR answer; the session goes on
                logger.warning("%s %s: %s", self.name, number, _describe(error, self.parts))
                return None

    def remove(self, number: int) -> None:
        with _talking(self.parts, f"DELE {number}"):
            try:
                self.client.dele(number)
            except poplib.error_proto as error:
                logger.warning(
                    "%s %s: stored but not deleted (%s); it will count as a duplicate",
                    self.name,
                    number,
                    _describe(error, self.parts),
                )

    def close(self) -> None:
        with _talking(self.parts, "QUIT (nothing deleted on the server)"):
            self.client.quit()

    def abandon(self) -> None:
        # QUIT is still right here: only messages already stored were marked for deletion.
        with suppress(Exception):
            self.client.quit()


class _ImapBox:
    source = Source.IMAP

    def __init__(self, client: IMAPClient, parts: MailboxURL) -> None:
        self.client, self.parts = client, parts
        self.name = f"{parts.redacted} UID"

    def open(self, limit: int) -> tuple[int, list[tuple[int, int]]]:
        try:
            with _talking(self.parts, "login"), _refused(self.parts, imaplib.IMAP4.error):
                self.client.login(self.parts.user, self.parts.password)
        except UnicodeEncodeError:
            # Its text would show a character of the password.
            raise MailboxError(
                f"{self.parts.redacted}: IMAP LOGIN takes ASCII passwords only."
            ) from None
        folder = self.parts.folder
        with _talking(self.parts, f'cannot open the folder "{folder}"'):
            typ, data = self.client.select(_imap_folder(folder))
        if typ != "OK":
            raise MailboxError(
                f'{self.parts.redacted}: cannot open the folder "{folder}" '
                f"({_text(data)}); name an existing folder at the end of the URL "
                "(default INBOX)."
            )
        with _talking(self.parts, "UID SEARCH"):
            typ, data = self.client.uid("SEARCH", "UNDELETED")
        if typ != "OK":
            raise MailboxError(f"{self.parts.redacted}: UID SEARCH: {_text(data)}")
        uids = sorted(int(uid) for uid in b" ".join(d for d in data if d).split())
        batch = uids[:limit]
        return len(uids), list(zip(batch, self._sizes(batch), strict=True))

    def _sizes(self, uids: list[int]) -> list[int]:
        if not uids:
            return []
        # One command for the batch, as a UID range: it stays short however long the batch.
        first, last = uids[0], uids[-1]
        with _talking(self.parts, "UID FETCH (RFC822.SIZE)"):
            typ, data = self.client.uid("FETCH", f"{first}:{last}", "(RFC822.SIZE)")
        sizes = {}
        for item in data if typ == "OK" else ():
            text = item[0] if isinstance(item, tuple) else item
            uid = re.search(rb"\bUID (\d+)", text or b"")
            size = re.search(rb"\bRFC822\.SIZE (\d+)", text or b"")
            if uid and size:
                sizes[int(uid.group(1))] = int(size.group(1))
        return [sizes.get(uid, 0) for uid in uids]

    def fetch(self, uid: int, size: int) -> tuple[bytes, int] | None:
        """The message (or its beginning, when huge) and its full size; None if not given."""
        partial = size > MAX_FETCH_BYTES
        item = f"(BODY.PEEK[]<0.{_fetch_limit(size)}>)" if partial else "(BODY.PEEK[])"
        with _talking(self.parts, f"UID FETCH {uid}"):
            typ, data = self.client.uid("FETCH", str(uid), item)
        for part in data if typ == "OK" else ():
            if isinstance(part, tuple) and b"BODY[" in part[0]:
                raw = part[1]
                return raw, max(size, len(raw)) if partial else len(raw)
        logger.warning("%s %s: not fetched (%s)", self.name, uid, _text(data))
        return None

    def remove(self, uid: int) -> None:
        with _talking(self.parts, f"UID STORE {uid}"):
            typ, data = self.client.uid("STORE", str(uid), "+FLAGS", r"(\Seen \Deleted)")
        if typ != "OK":
            logger.warning(
                "%s %s: stored but not flagged (%s); it will count as a duplicate",
                self.name,
                uid,
                _text(data),
            )

    def close(self) -> None:
        with _talking(self.parts, "EXPUNGE"):
            typ, data = self.client.expunge()
        if typ != "OK":
            logger.warning(
                "%s: EXPUNGE: %s; the next poll retries it", self.parts.redacted, _text(data)
            )
        self.abandon()

    def abandon(self) -> None:
        with suppress(Exception):
            self.client.logout()


def _text(data) -> str:
    return " ".join(
        d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d) for d in data or () if d
    )


def _imap_folder(name: str) -> str:
    """A folder name as IMAP wants it: modified UTF-7 (RFC 3501 5.1.3; Japanese folder names are
    common), quoted."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be"))
            out.append("&" + encoded.rstrip(b"=").replace(b"/", b",").decode() + "-")
            pending.clear()

    for char in name:
        if " " <= char <= "~":
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return '"' + "".join(out).replace("\\", "\\\\").replace('"', '\\"') + '"'
