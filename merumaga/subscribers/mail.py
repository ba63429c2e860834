"""Mail to one reader about their subscription: confirmation, welcome, "already subscribed".

One mail = three templates (subject, text, HTML) under templates/subscribers/mail/. Every mail
carries the RFC 8058 one-click unsubscribe headers and the sender's identity in its footer.
"""

import logging
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from merumaga.charset import choose
from merumaga.institute.services import sender_identity
from merumaga.subscribers import tokens
from merumaga.subscribers.models import Subscriber

logger = logging.getLogger(__name__)


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def reader_links(subscriber: Subscriber, topic_key: str = tokens.ALL_TOPICS) -> dict[str, str]:
    return {
        "preferences_url": absolute_url(
            reverse("preferences", args=[tokens.make_token(subscriber, tokens.PREFERENCES)])
        ),
        "unsubscribe_url": absolute_url(
            reverse(
                "unsubscribe", args=[tokens.make_token(subscriber, tokens.UNSUBSCRIBE, topic_key)]
            )
        ),
    }


def build_reader_mail(
    subscriber: Subscriber, kind: str, context: dict | None = None, to: str | None = None
) -> EmailMultiAlternatives:
    """The reader mail of `kind`, to the reader's address or to `to` (a new or former address
    of theirs)."""
    identity = sender_identity()
    # The reader's own links only go to the reader's own address: mail to a new address not yet
    # confirmed, or to a former one, must not let whoever reads it act for the reader.
    own_address = to is None or to == subscriber.email
    links = reader_links(subscriber) if own_address else {}
    full_context = {**(context or {}), **links, "subscriber": subscriber, "institute": identity}
    with translation.override(subscriber.language):
        subject = render_to_string(f"subscribers/mail/{kind}_subject.txt", full_context)
        text = render_to_string(f"subscribers/mail/{kind}_body.txt", full_context)
        html = render_to_string(f"subscribers/mail/{kind}_body.html", full_context)
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=text,
        from_email=identity.from_header,
        to=[to or subscriber.email],
        headers={
            "Message-ID": make_msgid(domain=identity.from_email.rsplit("@", 1)[-1]),
            **(
                {
                    "List-Unsubscribe": f"<{links['unsubscribe_url']}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                }
                if links
                else {}
            ),
        },
    )
    message.attach_alternative(html, "text/html")
    apply_charset(message, subscriber.charset)
    return message


def apply_charset(message: EmailMultiAlternatives, preferred: str) -> None:
    """Encode `message` by the platform's one charset rule (merumaga.charset.choose, as for
    mailings): ISO-2022-JP for a reader who prefers it, with the characters it lacks replaced
    where the replacement means the same (① → (1)); UTF-8 when something would still be lost
    (髙, …), and the log says why."""
    html = [content for content, _ in message.alternatives]
    charset, parts, uncarried = choose([message.subject, message.body, *html], preferred)
    if uncarried:
        logger.info(
            "mail to %s prefers ISO-2022-JP but %s cannot be carried: sent as UTF-8",
            ", ".join(message.to),
            "".join(uncarried),
        )
    message.subject, message.body = parts[0], parts[1]
    mimetypes = [mimetype for _, mimetype in message.alternatives]
    message.alternatives = []
    for content, mimetype in zip(parts[2:], mimetypes, strict=True):
        message.attach_alternative(content, mimetype)
    message.encoding = charset


def send_reader_mail(
    subscriber: Subscriber, kind: str, context: dict | None = None, to: str | None = None
) -> None:
    if not (to or subscriber.email).isascii():
        # Stored before such addresses were refused at the door: our headers and envelope are
        # ASCII, so the mail would go out with an encoded word inside the address.
        logger.error("%s mail to reader %s not sent: non-ASCII address", kind, subscriber.pk)
        return
    build_reader_mail(subscriber, kind, context, to).send()
