"""Django's mail backend for mail sent one at a time: through the delivery engine's SMTP pool.

Every mail that is not a mailing (confirmations, RSVP answers, test sends, operator alerts, and
whatever Django itself sends) leaves through here, so that it uses the same relay configuration
(SMTP_RELAYS, the relays of the transactional lane), the same connection code (TLS, AUTH, reply
classification, SMTPUTF8 refusal) and the same DKIM signing as the delivery worker. A relay of its
own for this lane (`?lane=transactional`) keeps a running mailing from ever delaying one.

Each call opens a pool and closes it when done (one connection for one mail): these mails come
one by one, as people act, and a connection held open between them would mostly idle.
"""

from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from merumaga.delivery.dkim import configured_signer
from merumaga.delivery.smtp import Pool, SendResult
from merumaga.delivery.worker import run_in_own_loop
from merumaga.outgoing import BuiltMessage, NotSent
from merumaga.relays import configured_relays

TIMEOUT = 30.0  # seconds for each SMTP step, as Django's own backend with EMAIL_TIMEOUT


class RelayBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """The number of recipients the relay took. Raises NotSent for the first refusal unless
        fail_silently (then the refusal is only left out of the count)."""
        if not email_messages:
            return 0
        return run_in_own_loop(lambda: self._send_all(list(email_messages)))

    async def _send_all(self, email_messages: list[EmailMessage]) -> int:
        signer = configured_signer()
        taken = 0
        # Cost: one connection per call, then one MAIL/RCPT/DATA exchange per recipient.
        async with Pool(configured_relays("transactional"), timeout=TIMEOUT) as pool:
            for message in email_messages:
                envelope_from, data = _envelope_and_data(message)
                if signer is not None:
                    data = signer.sign(data)
                for recipient in message.recipients():
                    result = await pool.send(envelope_from, recipient, data)
                    if result.status == "sent":
                        taken += 1
                    elif not self.fail_silently:
                        raise NotSent(_reason(result), temporary=result.status == "deferred")
        return taken


def _envelope_and_data(message: EmailMessage) -> tuple[str, bytes]:
    if isinstance(message, BuiltMessage):
        return message.built.envelope_from, message.built.data
    # Mail composed by Django itself (an error report, a password reset).
    envelope_from = parseaddr(message.from_email or settings.DEFAULT_FROM_EMAIL)[1]
    # Django's SafeMIME messages take `linesep` (its MIMEMixin.as_bytes); the stubs say Message.
    composed: Any = message.message()
    return envelope_from, composed.as_bytes(linesep="\r\n")


def _reason(result: SendResult) -> str:
    where = f" at {result.stage}" if result.stage else ""
    relay = f" ({result.relay})" if result.relay else ""
    return f"{result.code or 'no reply'}{where}{relay}: {result.reply}"
