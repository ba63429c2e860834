"""The sending side of the delivery engine: a pool of persistent SMTP connections to the relays.

    async with Pool(configured_relays("bulk")) as pool:
        result = await pool.send("bounce+x@example.jp", "reader@example.jp", message_bytes)

`send` never raises for a mail problem: every outcome is a SendResult, and the caller records it.

    sent      2xx at the end of DATA; `reply` keeps the relay's text (its queue id)
    deferred  4xx, or no answer: refused, dropped mid-transaction, timed out, relay backing off
    failed    5xx to RCPT or DATA: this recipient or this message will never be taken

A 5xx to MAIL FROM is *deferred*, not failed: it speaks of our sender or our account at the relay
(530 authentication required, 550 sender not allowed), not of the reader, who must not be marked
as a hard bounce because of our own configuration.

How the waiting works, without ever polling: a recipient domain that is paced (a limit in
DOMAIN_LIMITS, or a rate learned from its throttling answers: pacing.AdaptivePace) waits for its
turn first, holding nothing; then a relay is chosen by weight among those not backing off; then
the message waits for a free connection to that relay (an asyncio.Queue of connections), and,
holding it, for the relay's own rate limits. Turns are reserved in advance (see pacing.Pacer),
so each waiter sleeps exactly once, for exactly as long as needed.

aiosmtplib opens the connections (TLS, STARTTLS, AUTH, EHLO) and reads every reply; the pool
sends MAIL, RCPT and DATA itself through SMTP.execute_command, which spares the address parsing
and message rewriting that aiosmtplib's mail()/rcpt()/data() do on every call (see _data).
aiosmtplib 5.1 does not implement PIPELINING (RFC 2920), and its protocol cannot be driven that
way: it parses one reply per read and ignores data that arrives while no reply is awaited, so
pipelined replies coming in one segment would be lost. So each message costs four round trips
(MAIL, RCPT, DATA, the content); on loopback or a LAN relay that is well under a millisecond,
and several connections per relay make up for it.

A pool belongs to the event loop that first uses it.
"""

import asyncio
import contextlib
import logging
import math
import re
import socket
import time
from collections import Counter
from dataclasses import dataclass
from typing import Literal, overload

import aiosmtplib
from aiosmtplib import SMTPNotSupported, SMTPServerDisconnected
from django.conf import settings

from merumaga import reasons
from merumaga.delivery.pacing import AdaptivePace, Pacer, PaceState
from merumaga.relays import Relay

logger = logging.getLogger(__name__)

Status = Literal["sent", "deferred", "failed"]
NO_REPLY = 0  # SendResult.code when the server gave none (refused, dropped, timed out)

# A relay whose connections fail this many times in a row backs off for BACKOFF seconds, then
# twice as long after each further failure, up to MAX_BACKOFF; one success ends it.
FAILURES_BEFORE_BACKOFF = 2
MAX_BACKOFF = 60.0
QUIT_TIMEOUT = 5.0


@dataclass(frozen=True)
class SendResult:
    status: Status
    code: int  # the SMTP reply code; NO_REPLY (0) when there was none
    reply: str  # the server's text (multi-line replies joined by "\n"), or what went wrong
    relay: str = ""  # the relay's name ("" when none could be tried)
    stage: str = ""  # where it ended: "connect", "MAIL", "RCPT", "DATA" ("DATA" when sent)


def classify(code: int, reply: str, relay: str = "", stage: str = "") -> SendResult:
    """The outcome of an SMTP reply code: 2xx sent, 5xx failed, anything else deferred."""
    if 200 <= code < 300:
        status: Status = "sent"
    elif 500 <= code < 600 and stage in ("RCPT", "DATA"):
        status = "failed"
    else:
        status = "deferred"
    return SendResult(status, code, reply, relay, stage)


def _is_throttling(result: SendResult) -> bool:
    """A receiving domain asking us to slow down: a 4xx to RCPT or DATA that says "too many"
    (or a bare 421), or that it is deferring us for volume. Not a reader's full mailbox: that is
    about one reader, not about our pace."""
    if result.status != "deferred" or result.stage not in ("RCPT", "DATA"):
        return False
    if not 400 <= result.code < 500:
        return False
    reason = reasons.reason(reply=f"{result.code} {result.reply}")
    return reason in ("too_many_connections", "blocked") or (
        result.code == 421 and reason in ("system_error", "undefined")
    )


class _Connection:
    """One persistent SMTP connection to a relay, opened on first use and after a loss."""

    def __init__(self, relay: Relay, timeout: float, helo_name: str) -> None:
        self.relay = relay
        self.timeout = timeout
        self.helo_name = helo_name
        self.smtp: aiosmtplib.SMTP | None = None
        self.stage = ""  # the command of the transaction under way, for the SendResult

    @property
    def is_open(self) -> bool:
        return self.smtp is not None and self.smtp.is_connected

    async def open(self) -> None:
        relay = self.relay
        smtp = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            timeout=self.timeout,
            local_hostname=self.helo_name,
            use_tls=relay.security == "tls",
            # True: STARTTLS or fail, never a silent fallback to plain text. False for "none",
            # which also keeps aiosmtplib from trying STARTTLS on its own.
            start_tls=relay.security == "starttls",
            username=relay.username or None,
            password=relay.password or None,
        )
        await smtp.connect()
        self.smtp = smtp
        if smtp.is_ehlo_or_helo_needed:
            # Now, not lazily inside MAIL: the MAIL options depend on the extensions EHLO lists.
            try:
                await smtp.ehlo()
            except aiosmtplib.SMTPHeloError:
                await smtp.helo()

    def discard(self) -> None:
        """Drop the connection without a word: its state is unknown (error, cancellation)."""
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

    async def quit(self) -> None:
        smtp = self.smtp
        if smtp is not None and smtp.is_connected:  # is_open, spelled for the type checker
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):  # closing anyway
                await smtp.quit(timeout=min(self.timeout, QUIT_TIMEOUT))
        self.discard()

    async def transaction(self, sender: str, recipient: str, data: bytes) -> SendResult:
        """MAIL, RCPT, DATA: the result of the first refusal, or "sent". Connection trouble and
        timeouts raise (aiosmtplib's exceptions, TimeoutError); `self.stage` tells where."""
        smtp = self.smtp
        if smtp is None:  # only after discard(): a lost connection, as aiosmtplib reports one
            raise SMTPServerDisconnected("Not connected to SMTP server")
        utf8 = not (sender.isascii() and recipient.isascii())
        encoding = "utf-8" if utf8 else "ascii"
        # The addresses were checked by _refuse_address, so they go as they are: aiosmtplib's
        # mail() and rcpt() would run each through email.utils.parseaddr (25 µs apiece).
        commands = (
            (
                "MAIL",
                [b"FROM:<" + sender.encode(encoding) + b">", *_mail_options(smtp, data, utf8)],
            ),
            ("RCPT", [b"TO:<" + recipient.encode(encoding) + b">"]),
        )
        # One deadline for the whole transaction rather than aiosmtplib's timer per command:
        # the same protection, a quarter of the timers.
        async with asyncio.timeout(self.timeout):
            for stage, arguments in commands:
                self.stage = stage
                reply = await smtp.execute_command(stage.encode(), *arguments, timeout=None)
                if reply.code not in (250, 251):
                    return classify(reply.code, reply.message, self.relay.name, stage)
            self.stage = "DATA"
            reply = await _data(smtp, data)
        return classify(reply.code, reply.message, self.relay.name, "DATA")

    async def reset(self) -> None:
        """RSET after a refusal, so the next message starts clean; on any trouble, discard."""
        smtp = self.smtp
        if smtp is None or not smtp.is_connected:  # not is_open, spelled for the type checker
            return
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self.discard()


async def _data(smtp: aiosmtplib.SMTP, data: bytes) -> aiosmtplib.SMTPResponse:
    """DATA and the content; the reply to whichever was refused, else the final one.

    aiosmtplib rewrites every message with two regular expressions (line ends to CRLF, then
    dot-stuffing): a third of the pool's CPU time for an 8 KB mail. Messages built by the engine
    are CRLF throughout and seldom have a line starting with ".", which a few C-speed counts
    confirm; those go to the wire as they are, through the same protocol object and the same
    reply reading. Any other message takes aiosmtplib's own way.
    """
    if not _ready_to_send(data):
        try:
            return await smtp.data(data, timeout=None)
        except aiosmtplib.SMTPDataError as error:
            return aiosmtplib.SMTPResponse(error.code, error.message)
    start = await smtp.execute_command(b"DATA", timeout=None)
    if start.code != 354:
        return start
    protocol = smtp.protocol
    if protocol is None:  # closed while the 354 came in
        raise SMTPServerDisconnected("Connection lost")
    protocol.write(data + b".\r\n" if data.endswith(b"\r\n") else data + b"\r\n.\r\n")
    return await protocol.read_response(timeout=None)


def _ready_to_send(data: bytes) -> bool:
    """True if the message needs no rewriting: no bare CR or LF, no line starting with "."."""
    crlf = data.count(b"\r\n")
    return (
        data.count(b"\n") == crlf
        and data.count(b"\r") == crlf
        and b"\n." not in data
        and not data.startswith(b".")
    )


def _mail_options(smtp: aiosmtplib.SMTP, data: bytes, utf8: bool) -> list[bytes]:
    options = []
    if smtp.supports_extension("size"):
        # RFC 1870: the size as sent, CRLF line ends included (bare LFs become CRLF).
        size = len(data) + data.count(b"\n") - data.count(b"\r\n")
        options.append(b"SIZE=%d" % size)
    if not data.isascii() and smtp.supports_extension("8bitmime"):
        options.append(b"BODY=8BITMIME")
    if utf8:
        if not smtp.supports_extension("smtputf8"):
            raise SMTPNotSupported("the relay does not take non-ASCII addresses (no SMTPUTF8)")
        options.append(b"SMTPUTF8")
    return options


# Control characters, spaces and angle brackets: aiosmtplib would not send such an address as
# given but parse it (email.utils.parseaddr), and "a@x.jp>\r\nRCPT TO:<b@y.jp" would quietly go
# to a@x.jp. An envelope address is taken exactly as it is, or refused.
_BAD_ADDRESS = re.compile(r"[\x00-\x20\x7f<>]")


def _refuse_address(sender: str, recipient: str) -> SendResult | None:
    for stage, address in (("MAIL", sender), ("RCPT", recipient)):
        if _BAD_ADDRESS.search(address) or (stage == "RCPT" and "@" not in address):
            return SendResult("failed", NO_REPLY, f"invalid address {address!r}", "", stage)
    return None


class _RelayState:
    """A relay's connections, rate limits, back-off and counters."""

    def __init__(self, relay: Relay, timeout: float, helo_name: str) -> None:
        self.relay = relay
        self.connections = [
            _Connection(relay, timeout, helo_name) for _ in range(relay.connections)
        ]
        self.idle: asyncio.Queue[_Connection] = asyncio.Queue()
        for connection in self.connections:
            self.idle.put_nowait(connection)
        self.pacer = Pacer(relay.per_second, relay.per_minute)
        self.counts: Counter[str] = Counter()
        self.failures = 0  # connection failures in a row
        self.backoff_until = -math.inf
        self.current_weight = 0  # smooth weighted round-robin

    def connect_failed(self, base_backoff: float) -> None:
        self.failures += 1
        if self.failures >= FAILURES_BEFORE_BACKOFF:
            delay = min(base_backoff * 2 ** (self.failures - FAILURES_BEFORE_BACKOFF), MAX_BACKOFF)
            self.backoff_until = time.monotonic() + delay
            logger.warning(
                "Relay %s: %d connection failures in a row, not used for %.0f s",
                self.relay.name,
                self.failures,
                delay,
            )

    def connected(self) -> None:
        self.failures = 0
        self.backoff_until = -math.inf
        self.counts["connections"] += 1


class Pool:
    """Persistent SMTP connections to weighted relays, with rate limits. Use `async with`."""

    def __init__(
        self,
        relays: list[Relay],
        timeout: float = 30,
        *,
        domain_limits: dict[str, float] | None = None,
        helo_name: str | None = None,
        backoff: float = 5.0,
        pace_recovery: float | None = None,
    ) -> None:
        """`domain_limits` (domain → messages per second) defaults to settings.DOMAIN_LIMITS;
        `helo_name` to settings.SMTP_HELO_NAME, else this machine's host name; `backoff` is the
        first pause, in seconds, of a relay whose connections keep failing; `pace_recovery` (to
        settings.PACE_RECOVERY_SECONDS) how long a throttled domain takes to climb back from
        half its ceiling."""
        if not relays:
            raise ValueError("Pool needs at least one relay")
        if helo_name is None:
            helo_name = getattr(settings, "SMTP_HELO_NAME", "") or socket.gethostname()
        self._relays = [_RelayState(relay, timeout, helo_name) for relay in relays]
        if domain_limits is None:
            domain_limits = getattr(settings, "DOMAIN_LIMITS", {})
        self._domain_limits = {domain.lower(): rate for domain, rate in domain_limits.items()}
        if pace_recovery is None:
            pace_recovery = settings.PACE_RECOVERY_SECONDS
        self._pace_recovery = pace_recovery
        self._paces: dict[str, AdaptivePace] = {}
        self._backoff = backoff
        # Outcomes decided before any relay: bad addresses, every relay backing off.
        self._unrouted: Counter[str] = Counter()

    async def __aenter__(self) -> "Pool":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def send(self, envelope_from: str, recipient: str, data: bytes) -> SendResult:
        """Send one message to one recipient; the outcome, never an exception for mail trouble."""
        if refused := _refuse_address(envelope_from, recipient):
            self._unrouted["failed"] += 1
            return refused
        pace = self._pace(recipient)
        await pace.wait()
        state = self._choose_relay()
        if state is None:
            self._unrouted["deferred"] += 1
            return SendResult("deferred", NO_REPLY, "every relay is backing off", "", "connect")
        connection = await state.idle.get()
        try:
            await state.pacer.wait()
            result = await self._send_on(state, connection, envelope_from, recipient, data)
        except BaseException:
            # Cancelled mid-transaction: the server is somewhere inside it, so start afresh.
            connection.discard()
            raise
        finally:
            state.idle.put_nowait(connection)
        state.counts[result.status] += 1
        if result.status == "sent":
            pace.delivered()
        elif _is_throttling(result):
            pace.throttled()
        return result

    async def close(self) -> None:
        """QUIT every open connection (concurrently, each bounded by a short timeout)."""
        await asyncio.gather(
            *(connection.quit() for state in self._relays for connection in state.connections)
        )

    def stats(self) -> dict[str, dict[str, int]]:
        """Per relay name: messages sent, deferred, failed, and connections opened so far."""
        stats = {
            state.relay.name: {
                key: state.counts[key] for key in ("sent", "deferred", "failed", "connections")
            }
            for state in self._relays
        }
        if self._unrouted:
            stats["(no relay)"] = {key: self._unrouted[key] for key in ("deferred", "failed")}
        return stats

    def paces(self) -> list[PaceState]:
        """The domains being paced (a limit, or a rate learned from throttling), as they are."""
        return [pace.state() for pace in self._paces.values() if pace.rate is not None]

    def _pace(self, recipient: str) -> AdaptivePace:
        # One dict lookup per message; a domain's pace is made on its first message.
        domain = recipient.rpartition("@")[2].lower().rstrip(".")
        pace = self._paces.get(domain)
        if pace is None:
            ceiling = self._domain_limits.get(domain)
            pace = self._paces[domain] = AdaptivePace(domain, ceiling, self._pace_recovery)
        return pace

    def _choose_relay(self) -> _RelayState | None:
        """Smooth weighted round-robin (as nginx does) over the relays not backing off: a 3:1
        split gives A A B A, A A B A…, exact over every cycle, never long runs of one relay."""
        now = time.monotonic()
        ready = [state for state in self._relays if state.backoff_until <= now]
        if len(ready) <= 1:
            return ready[0] if ready else None
        for state in ready:
            state.current_weight += state.relay.weight
        chosen = max(ready, key=lambda state: state.current_weight)
        chosen.current_weight -= sum(state.relay.weight for state in ready)
        return chosen

    async def _send_on(
        self, state: _RelayState, connection: _Connection, sender: str, recipient: str, data: bytes
    ) -> SendResult:
        reused = connection.is_open
        if not reused:
            failure = await self._open(state, connection)
            if failure:
                return failure
        result = await self._attempt(connection, sender, recipient, data, reused)
        if result is None:
            # The relay had closed this idle connection (its own timeout) before our MAIL reached
            # it: nothing of the message was sent, so a fresh connection may try again, once.
            result = await self._open(state, connection) or await self._attempt(
                connection, sender, recipient, data, reused=False
            )
        return result

    async def _open(self, state: _RelayState, connection: _Connection) -> SendResult | None:
        """Connect; None on success, else the deferral to return (and the failure counted)."""
        try:
            await connection.open()
        except (aiosmtplib.SMTPException, OSError) as error:
            connection.discard()
            state.connect_failed(self._backoff)
            code = getattr(error, "code", NO_REPLY)
            logger.info("Relay %s: cannot connect: %s", state.relay.name, error)
            return SendResult("deferred", code, str(error), state.relay.name, "connect")
        state.connected()
        return None

    # Only a reused connection can turn out dead before anything was sent: a fresh one's
    # attempt always has a result.
    @overload
    async def _attempt(
        self,
        connection: _Connection,
        sender: str,
        recipient: str,
        data: bytes,
        reused: Literal[False],
    ) -> SendResult: ...
    @overload
    async def _attempt(
        self, connection: _Connection, sender: str, recipient: str, data: bytes, reused: bool
    ) -> SendResult | None: ...
    async def _attempt(
        self, connection: _Connection, sender: str, recipient: str, data: bytes, reused: bool
    ) -> SendResult | None:
        """One transaction on an open connection; None if a reused connection turned out dead
        before anything was sent (the caller reconnects and tries again)."""
        connection.stage = "MAIL"
        try:
            result = await connection.transaction(sender, recipient, data)
        except (SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as error:
            connection.discard()
            if reused and connection.stage == "MAIL" and isinstance(error, ConnectionError):
                return None
            # Lost mid-transaction, or no answer in time: the message may or may not have been
            # taken, but a retry later is the only safe course (a rare duplicate, never a loss).
            return self._trouble("deferred", connection, f"{type(error).__name__}: {error}")
        except (SMTPNotSupported, ValueError) as error:
            # An address that cannot be sent: non-ASCII to a relay without SMTPUTF8, or not
            # encodable at all (lone surrogates). No retry will change that.
            await connection.reset()
            return self._trouble("failed", connection, str(error))
        except aiosmtplib.SMTPException as error:
            # Anything else aiosmtplib may raise: keep it to this message and this connection.
            connection.discard()
            return self._trouble("deferred", connection, str(error))
        if result.code == 421:
            connection.discard()  # the server is closing it
        elif result.status != "sent":
            await connection.reset()
        return result

    @staticmethod
    def _trouble(status: Status, connection: _Connection, reply: str) -> SendResult:
        return SendResult(status, NO_REPLY, reply, connection.relay.name, connection.stage)
