"""RSVP mails, built and sent in the background once the answer has committed.

One mail = three templates (subject, text, HTML) under templates/publishing/mail/, like the
subscriber mails. Attending and promoted mails carry the event as an .ics attachment.

Who gets what: a confirmed reader gets their language, charset and the usual preferences and
one-click unsubscribe links (the List-Unsubscribe headers too), plus a link to change the answer
without typing anything. Someone who answered on the public form and is not a reader has no
preferences to link to and nothing to unsubscribe from: this one mail is the answer to what they
asked for. Their mail carries the sender's identity all the same, and points to the event page
to change the answer.
"""

import logging
from email.mime.text import MIMEText
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation
from huey.contrib.djhuey import db_task

from merumaga.institute.services import sender_identity
from merumaga.publishing import ics, rsvp_links
from merumaga.publishing.models import Event, Rsvp
from merumaga.subscribers.mail import apply_charset, reader_links
from merumaga.subscribers.models import Subscriber
from merumaga.subscribers.services import default_charset

logger = logging.getLogger(__name__)

WITH_CALENDAR = {"attending", "promoted"}

# The mails an answer can send; each is sent only if the RSVP is still in this state by then.
MAIL_STATES = {
    "attending": Rsvp.Answer.ATTENDING,
    "waitlisted": Rsvp.Answer.WAITLISTED,
    "promoted": Rsvp.Answer.ATTENDING,
    "declined": Rsvp.Answer.DECLINED,
}


@db_task(retries=3, retry_delay=60)
def send_rsvp_mail(rsvp_id: int, kind: str, language: str | None = None) -> None:
    """Send the mail for one answer, unless a later answer changed it meanwhile (that answer
    sends its own mail)."""
    reply = Rsvp.objects.select_related("event", "subscriber").filter(pk=rsvp_id).first()
    if reply is None or reply.answer != MAIL_STATES[kind]:
        return
    build_rsvp_mail(reply, kind, language).send()


def _reader(reply: Rsvp) -> Subscriber | None:
    # A reader who has erased their data since answering gets a mail without reader links.
    subscriber = reply.subscriber
    if subscriber is None or not subscriber.email:
        return None
    return subscriber


def build_rsvp_mail(reply: Rsvp, kind: str, language: str | None = None) -> EmailMultiAlternatives:
    """The mail of `kind` ("attending", "waitlisted", "promoted", "declined") for one answer."""
    event = reply.event
    subscriber = _reader(reply)
    context = {
        "rsvp": reply,
        "event": event,
        "event_url": ics.event_url(event),
        "change_url": rsvp_links.answer_link_url(reply),
    }
    headers = {}
    if subscriber is not None:
        links = reader_links(subscriber)
        context.update(links, change_url=rsvp_links.rsvp_link_url(subscriber, event))
        headers["List-Unsubscribe"] = f"<{links['unsubscribe_url']}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        language = subscriber.language
    message = _message(f"rsvp_{kind}", context, reply.email, headers, language)
    if kind in WITH_CALENDAR:
        message.attach(calendar_attachment(event, reply.email))
    preferred = subscriber.charset if subscriber else default_charset(reply.email)
    apply_charset(message, preferred)
    return message


@db_task(retries=3, retry_delay=60)
def send_rsvp_request_mail(event_id: int, email: str, url: str, language: str) -> None:
    """The link that confirms an answer from the public form, to the address typed there. No
    text typed on the form goes into it: only the event, our identity and the link."""
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return
    # No online meeting address either: that is for those who have a seat.
    context = {
        "event": event,
        "event_url": ics.event_url(event),
        "confirm_url": url,
        "unconfirmed": True,
    }
    message = _message("rsvp_request", context, email, {}, language)
    apply_charset(message, default_charset(email))
    message.send()


def _message(name: str, context: dict, to: str, headers: dict, language) -> EmailMultiAlternatives:
    """Subject, text and HTML from the three templates `name`, in `language` (or the site's)."""
    identity = sender_identity()
    language = language if language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE
    context = {**context, "institute": identity, "language": language}
    with translation.override(language):
        subject = render_to_string(f"publishing/mail/{name}_subject.txt", context)
        text = render_to_string(f"publishing/mail/{name}_body.txt", context)
        html = render_to_string(f"publishing/mail/{name}_body.html", context)
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=text,
        from_email=identity.from_header,
        to=[to],
        headers={
            "Message-ID": make_msgid(domain=identity.from_email.rsplit("@", 1)[-1]),
            **headers,
        },
    )
    message.attach_alternative(html, "text/html")
    return message


def calendar_attachment(event: Event, email: str) -> MIMEText:
    """The attendee's copy of the event, always UTF-8 whatever the mail's own charset: calendar
    apps read iCalendar as UTF-8 (RFC 5545), and base64 keeps carrier mail 7-bit clean."""
    part = MIMEText(ics.event_calendar(event, email).decode("utf-8"), "calendar", "utf-8")
    part.set_param("method", "REQUEST")
    part.add_header("Content-Disposition", "attachment", filename="event.ics")
    return part
