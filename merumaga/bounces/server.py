"""The built-in bounce receiver: an SMTP or LMTP server (aiosmtpd) for the bounce domain.

The operator's MTA forwards the bounce domain here (docs/operations.md has a Postfix transport
example). Each message is kept (GroupCommit: the messages arriving meanwhile in one INSERT)
before the reply, so a 250 means it is stored; if storing fails the reply is 451 and the MTA
tries again later: nothing is lost. Reading and acting on what was kept is the readers' work
(read_until_stopped, in processes of their own beside the server): the sending server waits
only for the INSERT, and reading uses the other cores.

Memory stays bounded whatever arrives: a message (up to 200 MB) is spooled as it comes in (to a
temporary file beyond SPOOL_IN_MEMORY), only its first services.READ_BYTES are kept (every
report part of a DSN or an ARF comes before the original it returns; the full size is
recorded), and at most
BOUNCE_RECEIVER_MAX_CONNECTIONS sessions run at once: one more is answered 421, a spool that
cannot be written 452, both "try again later". Eight parallel 46 MB bounces took the receiver to
1.5 GB when it held each message whole (bench/bounce_receiver_memory.py).
"""

import asyncio
import logging
import queue
import re
import tempfile
import threading
import time
from concurrent.futures import Future, InvalidStateError
from typing import TYPE_CHECKING, TypeAlias

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session
from django.conf import settings
from django.db import connections

from merumaga.bounces import services
from merumaga.bounces.models import Source
from merumaga.bounces.receivers import is_inbound_address
from merumaga.delivery.catcher import start_controller

if TYPE_CHECKING:
    import multiprocessing.synchronize

logger = logging.getLogger(__name__)

# The readers' wake-up: a thread's event, or a process's (the bounce-receiver command).
_Event: TypeAlias = "threading.Event | multiprocessing.synchronize.Event"


class GroupCommit:
    """The one thread that stores what the sessions received: each time, every message waiting
    (up to `batch`) in one transaction (services.keep), then each session gets its reply, and
    the readers are woken. Under load a transaction carries many messages, so the
    per-transaction costs (the commit, the statement) are shared; idle, a message is stored
    alone at once. A batch that fails is stored again one message at a time, so one bad
    message gets its 451 and the others their 250."""

    STOP = object()

    def __init__(self, batch: int = 200, kept: "_Event | None" = None) -> None:
        self.batch = batch
        self.kept = kept  # set after each batch stored: the readers have work
        self.waiting: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="bounce-writer", daemon=True)
        self.thread.start()

    def submit(self, inbound: services.Inbound) -> Future:
        future: Future = Future()
        self.waiting.put((inbound, future))
        return future

    def close(self) -> None:
        self.waiting.put(self.STOP)
        self.thread.join(timeout=30)

    def _run(self) -> None:
        try:
            while True:
                first = self.waiting.get()
                if first is self.STOP:
                    return
                batch = [first]
                while len(batch) < self.batch:
                    try:
                        item = self.waiting.get_nowait()
                    except queue.Empty:
                        break
                    if item is self.STOP:
                        self.waiting.put(item)  # after this batch
                        break
                    batch.append(item)
                try:
                    self._store(batch)
                except Exception:  # a bug here must not stop every session's reply for good
                    logger.exception("bounce receiver: storing a batch failed")
                    for _, future in batch:
                        _answer(future, error=StoreFailed())
                if self.kept is not None:
                    self.kept.set()
        finally:
            connections.close_all()  # this thread's connection

    def _store(self, batch) -> None:
        # The connection is kept from batch to batch (opening one costs more than a small
        # batch); one that failed is closed, and the next batch opens a new one.
        try:
            messages = services.keep([inbound for inbound, _ in batch])
        except Exception:
            connections.close_all()
            if len(batch) == 1:
                logger.exception("could not store an inbound message; asked the sender to retry")
                _answer(batch[0][1], error=StoreFailed())
                return
            for item in batch:
                self._store([item])
            return
        for (_, future), message in zip(batch, messages, strict=True):
            _answer(future, message)


def _answer(future: Future, message=None, error: Exception | None = None) -> None:
    """Give a session its outcome. A session whose client went away meanwhile was cancelled
    (aiosmtpd cancels it on a lost connection): its message is kept all the same, and the
    sending server, having no reply, offers it again (a copy, counted on the first)."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(message)
    except InvalidStateError:
        pass


class StoreFailed(Exception):
    pass


def read_until_stopped(
    kept,
    stopping,
    *,
    share: tuple[int, int] = (0, 1),
    batch: int = 1000,
    gather_seconds: float = 1.0,
) -> None:
    """A reader's loop: read its `share` of what was kept (services.read_waiting, `batch` at a
    time). After a batch that was not full, wait `gather_seconds` so that the next one is
    bigger (a batch's fixed costs, and SQLite's write lock, are shared by more messages); with
    none read, sleep until the server keeps more (`kept`) or a second has passed (another
    receiver's messages, on a shared database). Ends when `stopping` is set, after the batch in
    hand. `kept` and `stopping` are threading or multiprocessing events."""
    try:
        while not stopping.is_set():
            kept.clear()  # before reading: a message kept meanwhile sets it again
            try:
                read = services.read_waiting(batch, share=share)
            except Exception:  # the database is away: what is waiting stays waiting
                logger.exception("bounce reader: could not read the waiting messages")
                connections.close_all()
                read = 0
            if not read:
                kept.wait(1.0)
            elif read < batch:
                time.sleep(gather_seconds)
    finally:
        connections.close_all()


class BounceHandler:
    """aiosmtpd handler: accepts our inbound addresses only, has each message stored by the
    group commit, then replies."""

    def __init__(self, lmtp: bool = False, kept: "_Event | None" = None) -> None:
        self.lmtp = lmtp
        self.sessions = 0  # open now; over the limit, a new one is answered 421
        self.source = Source.LMTP if lmtp else Source.SMTP
        self.writer = GroupCommit(kept=kept)
        self.received = 0

    def close(self) -> None:
        self.writer.close()

    async def handle_RCPT(self, server, session, envelope: Envelope, address: str, options):
        if not is_inbound_address(address):
            return "550 5.1.1 Not a bounce address of this server"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if envelope.original_content is None:  # the server's smtp_DATA sets it before this hook
            raise RuntimeError("DATA hook called without the message content")
        inbound = services.Inbound(
            envelope.original_content,
            self.source,
            envelope.mail_from or "",
            tuple(envelope.rcpt_tos),
            getattr(envelope, "full_size", None),
        )
        try:
            message = await asyncio.wrap_future(self.writer.submit(inbound))
        except StoreFailed:
            reply = "451 4.3.0 Could not store the message; try again later"
        else:
            self.received += 1
            reply = f"250 2.0.0 Kept as {message.pk}"
        # LMTP answers once per recipient; the message was stored once for all of them.
        return "\r\n".join([reply] * len(envelope.rcpt_tos)) if self.lmtp else reply


# A message beyond this is spooled to a temporary file as it arrives, not kept in memory.
SPOOL_IN_MEMORY = 1024 * 1024
# Spooled, a large bounce costs disk, not memory: refusing it (552) would lose it for good.
MAX_MESSAGE_SIZE = 200 * 1024 * 1024


class _SizedEnvelope(Envelope):
    """An envelope that also records the size of the whole message, of which only the first
    services.READ_BYTES are kept."""

    full_size: int | None = None


class _Bounded(SMTP):
    """What aiosmtpd's SMTP and LMTP need to keep memory bounded: a cap on sessions, and DATA
    spooled instead of held as a list of lines (aiosmtpd 1.4.6's smtp_DATA, which this follows
    line for line but for where the lines go; pinned in pyproject.toml)."""

    async def _handle_client(self) -> None:
        handler = self.event_handler
        if handler.sessions >= settings.BOUNCE_RECEIVER_MAX_CONNECTIONS:
            logger.warning("bounce receiver: %d sessions open, one more refused", handler.sessions)
            await self.push("421 4.3.2 Too many connections; try again later")
            if self.transport is not None:  # None once the client has gone
                self.transport.close()
            return
        handler.sessions += 1
        try:
            await super()._handle_client()
        finally:
            handler.sessions -= 1

    def _create_envelope(self) -> _SizedEnvelope:
        return _SizedEnvelope()

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        # Set at connection (_create_envelope); aiosmtpd's own smtp_DATA asserts it is there.
        if not isinstance(self.envelope, _SizedEnvelope):
            raise RuntimeError("DATA without the envelope _create_envelope makes")
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            problem = await self._spool_data(spool)
            if problem:
                recipients = len(self.envelope.rcpt_tos) if isinstance(self, LMTP) else 1
                self._set_post_data_state()
                await self.push("\r\n".join([problem] * recipients))  # LMTP: one per recipient
                return
            self.envelope.full_size = spool.tell()
            spool.seek(0)
            content = spool.read(services.READ_BYTES)
        self.envelope.original_content = content
        self.envelope.content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _spool_data(self, spool) -> str:
        """Read DATA to its lone dot, writing each line to `spool` without its transparency dot
        (RFC 5321 4.5.2); the reply to give instead of accepting it, or ""."""
        size, limit, problem = 0, self.data_size_limit, ""
        fragments: list[bytes] = []
        while self.transport is not None:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as error:  # a line longer than the stream limit
                problem = problem or "500 Line too long (see RFC5321 4.5.3.1.6)"
                line = await self._reader.read(error.consumed)
            if not fragments and line == b".\r\n":
                break
            size += len(line)
            if limit and size > limit:
                problem = problem or "552 Error: Too much mail data"
            fragments.append(line)
            if not line.endswith(b"\r\n"):
                continue
            whole = b"".join(fragments)
            fragments.clear()
            if problem:
                continue  # drained, not kept: the reply says why
            if len(whole) > self.line_length_limit:
                problem = "500 Line too long (see RFC5321 4.5.3.1.6)"
                continue
            try:
                spool.write(whole[1:] if whole.startswith(b".") else whole)
            except OSError as error:  # the disk is full: the sending MTA keeps it and retries
                logger.error("bounce receiver: cannot spool a message: %s", error)
                problem = "452 4.3.1 Insufficient system storage; try again later"
        return problem


# A plain path, <dot-atom@domain>, which is what MTAs send (a bounce's RCPT TO is our VERP
# address): read without the email package's header parser.
_PLAIN_PATH = re.compile(
    r"[ \t]*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>"
    # then nothing, or ESMTP parameters (KEYWORD[=value]): anything else is left to aiosmtpd
    r"((?:[ \t]+[A-Za-z0-9][A-Za-z0-9-]*(?:=[!-<>-~]+)?)*[ \t]*)"
)


class _FastPaths(SMTP):
    """aiosmtpd 1.4.6 reads each MAIL and RCPT path with the email package's header parser (and
    defines a typing Protocol class at every call): a sixth of the receiver's time with four
    busy connections (py-spy, bench/bounce_receiver.py). A plain path is read by _PLAIN_PATH,
    with the same result (test_receiver checks them side by side); anything else as before."""

    def _getaddr(self, arg: str):
        if arg.startswith("<>"):  # a bounce's null sender, kept with the rest as it came
            return "<>", arg[2:]
        plain = _PLAIN_PATH.fullmatch(arg)
        if plain is None:
            return super()._getaddr(arg)
        address, rest = plain.groups()
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest.lstrip(" \t")


class _SMTP(_Bounded, _FastPaths):
    pass


class _LMTP(_Bounded, _FastPaths, LMTP):
    pass


class _BoundedController(Controller):
    def factory(self):
        return _SMTP(self.handler, **self.SMTP_kwargs)


class _LMTPController(Controller):
    def factory(self):
        return _LMTP(self.handler, **self.SMTP_kwargs)


def stop_receiver(controller: Controller) -> None:
    controller.stop()
    controller.handler.close()


def start_receiver(
    host: str, port: int, *, lmtp: bool = False, kept: "_Event | None" = None
) -> Controller:
    """Start the receiver in a background thread; stop_receiver(result) stops it. `kept` is set
    each time messages were stored (the readers' wake-up)."""
    controller_class = _LMTPController if lmtp else _BoundedController
    controller = controller_class(
        BounceHandler(lmtp=lmtp, kept=kept),
        hostname=host,
        port=port,
        server_hostname="localhost",  # not socket.getfqdn(), which can stall on DNS
        data_size_limit=MAX_MESSAGE_SIZE,
        decode_data=False,
        enable_SMTPUTF8=True,
    )
    return start_controller(controller)
