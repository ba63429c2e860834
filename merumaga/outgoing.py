"""Every mail the platform sends, built one way and sent one way.

A mail is described by `Mail`: sender, recipient, subject, text and HTML, extra headers,
attachments, and the charset the recipient prefers. `build` applies the platform's one charset
rule (charset.choose: ISO-2022-JP where it carries everything, with faithful replacements such as
① → (1); UTF-8 otherwise, and the reason is logged) and writes the bytes with mime.build_message.
Mailings are built by the same function, once per reader (mailings.rendering.build); the delivery
worker's fast path (delivery.fastrender) is checked byte for byte against it.

Mail written from templates (`render`) uses three of them, `<name>_subject.txt`, `_body.txt` and
`_body.html`, which extend mail/_layout.html and end with the shared footer (mail/_footer.*):
the sender's identity required by 特定電子メール法, why the mail was sent, and, for a reader,
the links to change or stop what they receive. `list_unsubscribe` gives the RFC 8058 headers.

`send` and `send_built` hand the bytes to Django's mail backend: in production
merumaga.delivery.transactional.RelayBackend, which sends through the delivery engine's SMTP pool
over the relays of the transactional lane (relays.py); in tests Django's in-memory backend,
which keeps them in django.core.mail.outbox.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.utils import timezone, translation

from merumaga import charset, mime

logger = logging.getLogger(__name__)

# Huey priority of the tasks that send a mail someone is waiting for (a confirmation, an RSVP
# answer): they go before background work queued earlier, such as a mailing being prepared.
TASK_PRIORITY = 100


class NotSent(Exception):
    """The relay did not take the mail. `temporary` when trying again later may work."""

    def __init__(self, reason: str, *, temporary: bool) -> None:
        super().__init__(reason)
        self.temporary = temporary


@dataclass(frozen=True)
class Mail:
    """One mail to one recipient, before the charset is chosen."""

    kind: str  # what it is, for logs: "confirm", "rsvp_attending", "test", "domain_hold" …
    sender_name: str
    sender_address: str
    to: str
    subject: str
    text: str
    html: str
    preferred_charset: str = charset.UTF8
    headers: Sequence[tuple[str, str]] = ()  # extra ASCII headers, in this order
    attachments: Sequence[mime.Attachment] = ()
    envelope_from: str = ""  # the SMTP return path; the sender's address when empty
    about: str = ""  # whom it concerns, for logs, never by address: "reader 12", "RSVP 3"


@dataclass(frozen=True)
class Built:
    kind: str
    envelope_from: str
    to: str
    charset: str
    data: bytes  # the whole message, CRLF line endings, ready for SMTP DATA
    uncarried: tuple[str, ...]  # characters that made an ISO-2022-JP reader get UTF-8


def build(mail: Mail, *, date: datetime | None = None, message_id: str | None = None) -> Built:
    """The bytes of `mail`. ValueError if an address or header cannot be written as it is."""
    chosen, (subject, text, html, sender_name), uncarried = charset.choose(
        [mail.subject, mail.text, mail.html, mail.sender_name], mail.preferred_charset
    )
    data = mime.build_message(
        charset=chosen,
        from_name=sender_name,
        from_address=mail.sender_address,
        to_address=mail.to,
        subject=subject,
        text=text,
        html=html,
        headers=mail.headers,
        date=date or timezone.localtime(timezone.now()),
        message_id=message_id or make_msgid(domain=mail.sender_address.rsplit("@", 1)[-1]),
        attachments=mail.attachments,
    )
    return Built(
        kind=mail.kind,
        envelope_from=mail.envelope_from or mail.sender_address,
        to=mail.to,
        charset=chosen,
        data=data,
        uncarried=tuple(uncarried),
    )


def render(template: str, context: Mapping[str, object], language: str) -> tuple[str, str, str]:
    """(subject, text, HTML) from the three templates `template`_subject.txt, _body.txt and
    _body.html, in `language` (the site's when it is not one of ours)."""
    if language not in dict(settings.LANGUAGES):
        language = settings.LANGUAGE_CODE
    context = {**context, "language": language}
    with translation.override(language):
        subject = render_to_string(f"{template}_subject.txt", context)
        text = render_to_string(f"{template}_body.txt", context)
        html = render_to_string(f"{template}_body.html", context)
    return " ".join(subject.split()), text, html


def list_unsubscribe(url: str, mailto: str = "") -> list[tuple[str, str]]:
    """The RFC 8058 one-click unsubscribe headers for a mail to a reader (RFC 2369 with a
    mailto: alternative when given)."""
    value = f"<{url}>, <mailto:{mailto}>" if mailto else f"<{url}>"
    return [("List-Unsubscribe", value), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]


def send(mail: Mail) -> Built | None:
    """Build and send `mail`. A mail that cannot be built (a stored address our headers cannot
    carry) or that the relay refuses for good is set aside: logged with its reason, None returned.
    A temporary refusal raises NotSent, so that the task sending it tries again."""
    try:
        built = build(mail)
    except ValueError as error:
        logger.error(
            "%s mail%s not sent: %s", mail.kind, _to(mail), _without_address(str(error), mail.to)
        )
        return None
    if built.uncarried:
        logger.info(
            "%s mail%s prefers ISO-2022-JP but %s cannot be carried: sent as UTF-8",
            mail.kind,
            _to(mail),
            "".join(built.uncarried),
        )
    try:
        send_built(built)
    except NotSent as error:
        if error.temporary:
            raise
        logger.error("%s mail%s refused by the relay: %s", mail.kind, _to(mail), error)
        return None
    return built


def send_built(built: Built) -> None:
    """Send bytes already built; NotSent if the relay does not take them."""
    get_connection().send_messages([BuiltMessage(built)])


class BuiltMessage(EmailMultiAlternatives):
    """A built mail in the shape Django's mail backends take. Subject, text and HTML are read
    back from the bytes, so that what a test reads in mail.outbox is what a reader would get."""

    def __init__(self, built: Built) -> None:
        self.built = built
        parsed = message_from_bytes(built.data)
        text, html = _bodies(parsed)
        super().__init__(
            subject=_decoded_header(parsed["Subject"]),
            body=text,
            from_email=_decoded_header(parsed["From"]),
            to=[built.to],
        )
        self.attach_alternative(html, "text/html")
        self.encoding = built.charset

    # Django's returns its SafeMIME classes, built from the attributes; ours is the bytes as sent.
    def message(self) -> Message:  # type: ignore[override]
        return message_from_bytes(self.built.data)


def _bodies(parsed: Message) -> tuple[str, str]:
    text = html = ""
    for part in parsed.walk():
        if part.get_content_maintype() != "text" or part.get_filename():
            continue
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        content = payload.decode(part.get_content_charset() or "ascii")
        if part.get_content_subtype() == "plain" and not text:
            text = content
        elif part.get_content_subtype() == "html" and not html:
            html = content
    return text, html


def _decoded_header(value: str) -> str:
    return str(make_header(decode_header(value)))


def _to(mail: Mail) -> str:
    return f" to {mail.about}" if mail.about else ""


def _without_address(text: str, address: str) -> str:
    # Logs name readers by id, never by address.
    return text.replace(repr(address), "(the recipient)").replace(address, "(the recipient)")
