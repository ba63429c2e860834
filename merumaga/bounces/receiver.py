"""The built-in bounce receiver: an SMTP or LMTP server (aiosmtpd) for the bounce domain.

The operator's MTA forwards the bounce domain here (docs/operations.md has a Postfix transport
example). Each message is kept and read by services.receive before the reply, so a 250 means it is
stored; if storing fails the reply is 451 and the MTA tries again later: nothing is lost.
"""

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.db import close_old_connections, connections

from merumaga.bounces import services
from merumaga.bounces.models import Source
from merumaga.bounces.receivers import is_inbound_address
from merumaga.delivery.catcher import MAX_MESSAGE_SIZE, start_controller

logger = logging.getLogger(__name__)


class BounceHandler:
    """aiosmtpd handler: accepts our inbound addresses only, stores each message, then replies."""

    def __init__(self, lmtp: bool = False, threads: int = 4) -> None:
        self.lmtp = lmtp
        self.source = Source.LMTP if lmtp else Source.SMTP
        # Reading and acting use the database: in threads, never on the event loop.
        self.threads = threads
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="bounce-receiver")
        self.received = 0

    def close(self) -> None:
        """Close each thread's database connection (kept open between messages), then the
        threads: one job per thread, held at a barrier so that no thread takes two."""
        barrier = threading.Barrier(self.threads)

        def close_connections() -> None:
            try:
                barrier.wait(timeout=10)
            except threading.BrokenBarrierError:
                pass  # a thread still busy with a message: close the others' anyway
            finally:
                connections.close_all()

        for _ in range(self.threads):
            self.executor.submit(close_connections)
        self.executor.shutdown(wait=True)

    async def handle_RCPT(self, server, session, envelope: Envelope, address: str, options):
        if not is_inbound_address(address):
            return "550 5.1.1 Not a bounce address of this server"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        loop = asyncio.get_running_loop()
        try:
            message = await loop.run_in_executor(self.executor, self._receive, envelope)
        except Exception:
            logger.exception("could not store an inbound message; asked the sender to retry")
            reply = "451 4.3.0 Could not store the message; try again later"
        else:
            self.received += 1
            reply = f"250 2.0.0 Kept as {message.pk} ({message.kind})"
        # LMTP answers once per recipient; the message was stored once for all of them.
        return "\r\n".join([reply] * len(envelope.rcpt_tos)) if self.lmtp else reply

    def _receive(self, envelope: Envelope):
        close_old_connections()
        return services.receive(
            envelope.original_content,
            self.source,
            envelope_from=envelope.mail_from or "",
            envelope_to=envelope.rcpt_tos,
        )


class _LMTPController(Controller):
    def factory(self):
        return LMTP(self.handler, **self.SMTP_kwargs)


def stop_receiver(controller: Controller) -> None:
    controller.stop()
    controller.handler.close()


def start_receiver(host: str, port: int, *, lmtp: bool = False) -> Controller:
    """Start the receiver in a background thread; stop_receiver(result) stops it."""
    controller_class = _LMTPController if lmtp else Controller
    controller = controller_class(
        BounceHandler(lmtp=lmtp),
        hostname=host,
        port=port,
        server_hostname="localhost",  # not socket.getfqdn(), which can stall on DNS
        data_size_limit=MAX_MESSAGE_SIZE,
        decode_data=False,
        enable_SMTPUTF8=True,
    )
    return start_controller(controller)
