"""Mail to one reader about their subscription: confirmation, welcome, "already subscribed",
the link to stop, and the two mails of an address change.

One mail = three templates (subject, text, HTML) under templates/subscribers/mail/, built and
sent by merumaga.outgoing like every other mail. A mail to the reader's own address carries
their links to change or stop what they receive, in the footer and as the RFC 8058 one-click
unsubscribe headers.
"""

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from merumaga import outgoing
from merumaga.institute.mail import templated_mail
from merumaga.subscribers import tokens
from merumaga.subscribers.models import Subscriber

# Why the mail came, at the foot of each mail (特定電子メール法); a template may say otherwise.
REASON = _(
    "このメールは、当研究所のメールマガジン登録フォームにこのアドレスが入力されたため"
    "お送りしています。"
)


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
) -> outgoing.Mail:
    """The reader mail of `kind`, to the reader's address or to `to` (a new or former address
    of theirs)."""
    # The reader's own links only go to the reader's own address: mail to a new address not yet
    # confirmed, or to a former one, must not let whoever reads it act for the reader.
    own_address = to is None or to == subscriber.email
    links = reader_links(subscriber) if own_address else {}
    return templated_mail(
        f"subscribers/mail/{kind}",
        {"reason": REASON, **(context or {}), **links, "subscriber": subscriber},
        to=to or subscriber.email or "",
        language=subscriber.language,
        preferred_charset=subscriber.charset,
        headers=outgoing.list_unsubscribe(links["unsubscribe_url"]) if links else (),
        about=f"reader {subscriber.pk}",
    )


def send_reader_mail(
    subscriber: Subscriber, kind: str, context: dict | None = None, to: str | None = None
) -> None:
    outgoing.send(build_reader_mail(subscriber, kind, context, to))
