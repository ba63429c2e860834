"""An SMTP server that misbehaves on request: for the tests of the sending pool, and as a sink.

Rules map a recipient to a behaviour. A key with "@" matches that address (case-insensitive); a
key without one matches every local part starting with it ("bounce" matches bounce-7@x.jp):

    "accept"    take the message (the default)
    "NNN"       answer RCPT with that code: 421, 450, 451, 452, 550, 552 or 554
    "blocked"   answer RCPT as a server that has our IP on a blocklist (554 5.7.1 … spamhaus)
    "rate:N"    take at most N messages in any second for the recipients this rule matches, and
                answer RCPT with 421 4.7.0 "too many messages" beyond (a provider's throttling)
    "data:NNN"  accept RCPT, then answer the end of DATA with that code (or "data:blocked")
    "drop"      receive the whole message, then close the connection without a reply: the worst
                case for a client, which cannot know whether the mail was taken
    "slow"      answer DATA after `delay` seconds, then accept the message (if the client is still
                there: one that gave up has closed the connection, and nothing is counted)

A 421 closes the connection after the reply, as a real server does.

Accepting is cheap, so that the benchmark can use the server as a sink: nothing is parsed, the
handler counts messages and bytes and keeps the last `keep` messages.

Run it alone (a sink in a process of its own; prints its counts when stopped):

    python -m merumaga.delivery.faultserver --port 2525
"""

import argparse
import asyncio
import logging
import signal
import ssl
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from merumaga.delivery.catcher import start_controller

Rules = dict[str, str] | Callable[[str], str | None]

CODES = ("421", "450", "451", "452", "550", "552", "554", "blocked")
BEHAVIOURS = ("accept", "drop", "slow", *CODES, *(f"data:{code}" for code in CODES))
THROTTLED = "421 4.7.0 Too many messages, slow down (fault server)"
REPLIES = {
    "421": "421 4.3.2 Service shutting down (fault server)",
    "450": "450 4.2.1 Mailbox busy, try again later (fault server)",
    "451": "451 4.3.0 Local error in processing (fault server)",
    "452": "452 4.3.1 Insufficient system storage (fault server)",
    "550": "550 5.1.1 No such user here (fault server)",
    "552": "552 5.2.2 Mailbox full (fault server)",
    "554": "554 5.7.1 Message rejected (fault server)",
    "blocked": "554 5.7.1 Service unavailable; client host [192.0.2.25] blocked using "
    "zen.spamhaus.org (fault server)",
}


class FaultHandler:
    """aiosmtpd handler applying the rules; its attributes are what the tests read."""

    def __init__(self, rules: Rules | None = None, delay: float = 0, keep: int = 10_000) -> None:
        self.rules = rules or {}
        if isinstance(self.rules, dict):
            self.rules = {key.lower(): value for key, value in self.rules.items()}
            for behaviour in self.rules.values():
                _check_behaviour(behaviour)
        self.delay = delay
        self.connections = 0  # SMTP sessions opened (the controller's own start-up probe aside)
        self.quits = 0  # sessions the client ended with QUIT
        self.delayed = 0  # "slow" messages whose reply has started to wait
        self.count = 0  # messages accepted
        self.bytes = 0  # their total size
        # (mail_from, rcpt, content) for each recipient of the last `keep` messages accepted.
        self.accepted: deque[tuple[str, str, bytes]] = deque(maxlen=keep)
        self.per_recipient: Counter[str] = Counter()  # how often each address was accepted
        self.throttled = 0  # RCPTs answered 421 by a "rate:N" rule
        self._rate_windows: dict[str, deque[float]] = {}  # rule → times of its last N RCPTs
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def behaviour(self, recipient: str) -> str:
        if callable(self.rules):
            behaviour = self.rules(recipient) or "accept"
            _check_behaviour(behaviour)
            return behaviour
        address = recipient.lower()
        if address in self.rules:
            return self.rules[address]
        local_part = address.rpartition("@")[0]
        for key, behaviour in self.rules.items():
            if "@" not in key and local_part.startswith(key):
                return behaviour
        return "accept"

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses
    ) -> list[str]:
        self._count_connection(server)
        session.host_name = hostname
        return responses

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        self._count_connection(server)
        session.host_name = hostname
        return f"250 {server.hostname}"

    def _count_connection(self, server: SMTP) -> None:
        # One SMTP instance per TCP connection, kept across STARTTLS (which repeats EHLO); the
        # controller's start-up probe says no EHLO, so it is not counted.
        if server not in self._sessions:
            self._sessions.add(server)
            self.connections += 1

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.quits += 1
        return "221 Bye"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options
    ) -> str:
        behaviour = self.behaviour(address)
        if behaviour in CODES:
            return _reply(server, behaviour)
        if behaviour.startswith("rate:") and not self._take_turn(behaviour):
            self.throttled += 1
            _close_soon(server)  # as a 421 does
            return THROTTLED
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        behaviours = {self.behaviour(rcpt) for rcpt in envelope.rcpt_tos}
        if "drop" in behaviours:
            if server.transport is not None:  # None once the client has gone already
                server.transport.close()
            # Wait for the end: closing the transport cancels this handler (no reply is sent).
            await asyncio.Event().wait()
        for code in CODES:
            if f"data:{code}" in behaviours:
                return _reply(server, code)
        if "slow" in behaviours:
            self.delayed += 1
            await asyncio.sleep(self.delay)
        return self._accept(envelope)

    def _take_turn(self, behaviour: str) -> bool:
        """Whether a "rate:N" rule still has room in the last second (and take it)."""
        limit = int(behaviour.removeprefix("rate:"))
        window = self._rate_windows.setdefault(behaviour, deque(maxlen=limit))
        now = time.monotonic()
        if len(window) == limit and now - window[0] < 1.0:
            return False
        window.append(now)
        return True

    def _accept(self, envelope: Envelope) -> str:
        # Both are set by the time of DATA; the fallbacks only satisfy the types.
        mail_from = envelope.mail_from or ""
        content = envelope.original_content or b""
        self.count += 1
        self.bytes += len(content)
        for rcpt in envelope.rcpt_tos:
            self.per_recipient[rcpt] += 1
            if self.accepted.maxlen:
                self.accepted.append((mail_from, rcpt, content))
        return f"250 2.0.0 Ok: queued as FS{self.count:08d}"


def close_connections(controller: Controller) -> None:
    """Close every open client connection from the server's side, as a relay does with idle ones.

    Returns once the server's own loop has closed them.
    """
    handler: FaultHandler = controller.handler

    def close_all() -> None:
        for server in list(handler._sessions):
            if server.transport is not None:
                server.transport.close()

    asyncio.run_coroutine_threadsafe(_call(close_all), controller.loop).result(timeout=5)


async def _call(function: Callable[[], None]) -> None:
    function()


def _reply(server: SMTP, code: str) -> str:
    if code == "421":
        _close_soon(server)
    return REPLIES[code]


def _close_soon(server: SMTP) -> None:
    # After the reply has been written: close() still sends what is buffered.
    if server.transport is not None:  # None once the client has gone already
        server.loop.call_soon(server.transport.close)


def _check_behaviour(behaviour: str) -> None:
    if behaviour.startswith("rate:") and behaviour.removeprefix("rate:").isdigit():
        return
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour {behaviour!r}; known: {', '.join(BEHAVIOURS)}")


def _authenticator(username: str, password: str):
    def check(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data == (
            username.encode(),
            password.encode(),
        )
        # handled=False: aiosmtpd answers 535 itself (True would leave the client waiting).
        return AuthResult(success=ok, handled=False)

    return check


def start_fault_server(
    port: int,
    rules: Rules | None = None,
    delay: float = 0,
    *,
    host: str = "127.0.0.1",
    keep: int = 10_000,
    starttls_context: ssl.SSLContext | None = None,
    tls_context: ssl.SSLContext | None = None,
    credentials: tuple[str, str] | None = None,
) -> Controller:
    """Start the server in a background thread; .stop() the returned controller when done.

    `controller.handler` holds the counts. `starttls_context` offers STARTTLS, `tls_context`
    makes the whole connection TLS (smtps); `credentials` (user, password) requires AUTH.
    """
    # aiosmtpd logs every command at INFO: far too much under a benchmark.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    handler = FaultHandler(rules, delay, keep)
    auth = {}
    if credentials:
        auth = {"auth_required": True, "authenticator": _authenticator(*credentials)}
    controller = Controller(
        handler,
        hostname=host,
        port=port,
        server_hostname="localhost",  # the default, socket.getfqdn(), can stall on DNS
        decode_data=False,
        enable_SMTPUTF8=True,
        data_size_limit=50 * 1024 * 1024,
        tls_context=starttls_context,
        ssl_context=tls_context,
        **auth,
    )
    return start_controller(controller)


def main() -> None:
    parser = argparse.ArgumentParser(description="An accepting SMTP sink (the fault server).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    controller = start_fault_server(args.port, host=args.host, keep=0)
    print(f"listening on {args.host}:{args.port}", flush=True)
    stopped = asyncio.Event()
    loop = asyncio.new_event_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    try:
        loop.run_until_complete(stopped.wait())
    finally:
        controller.stop()
        loop.close()
        handler = controller.handler
        cpu = time.process_time()
        print(
            f"accepted={handler.count} bytes={handler.bytes} connections={handler.connections}"
            f" cpu_s={cpu:.2f}"
        )


if __name__ == "__main__":
    main()
