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

from django.utils.translation import gettext_lazy as _
from huey.contrib.djhuey import db_task

from merumaga import mime, outgoing
from merumaga.institute.mail import templated_mail
from merumaga.publishing import ics, rsvp_links
from merumaga.publishing.models import Event, Rsvp
from merumaga.subscribers.mail import reader_links
from merumaga.subscribers.models import Subscriber
from merumaga.subscribers.services import default_charset

WITH_CALENDAR = {"attending", "promoted"}

# The mails an answer can send; each is sent only if the RSVP is still in this state by then.
MAIL_STATES = {
    "attending": Rsvp.Answer.ATTENDING,
    "waitlisted": Rsvp.Answer.WAITLISTED,
    "promoted": Rsvp.Answer.ATTENDING,
    "declined": Rsvp.Answer.DECLINED,
}
# Why the mail came, at its foot (特定電子メール法); a template may say otherwise.
REASON = _("このメールは、イベントへの出欠のご回答を受けてお送りしています。")


@db_task(retries=3, retry_delay=60, priority=outgoing.TASK_PRIORITY)
def send_rsvp_mail(rsvp_id: int, kind: str, language: str | None = None) -> None:
    """Send the mail for one answer, unless a later answer changed it meanwhile (that answer
    sends its own mail)."""
    reply = Rsvp.objects.select_related("event", "subscriber").filter(pk=rsvp_id).first()
    if reply is None or reply.answer != MAIL_STATES[kind]:
        return
    outgoing.send(build_rsvp_mail(reply, kind, language))


def _reader(reply: Rsvp) -> Subscriber | None:
    # A reader who has erased their data since answering gets a mail without reader links.
    subscriber = reply.subscriber
    if subscriber is None or not subscriber.email:
        return None
    return subscriber


def build_rsvp_mail(reply: Rsvp, kind: str, language: str | None = None) -> outgoing.Mail:
    """The mail of `kind` ("attending", "waitlisted", "promoted", "declined") for one answer."""
    event = reply.event
    subscriber = _reader(reply)
    context = {
        "rsvp": reply,
        "event": event,
        "event_url": ics.event_url(event),
        "change_url": rsvp_links.answer_link_url(reply),
    }
    headers: list[tuple[str, str]] = []
    if subscriber is not None:
        links = reader_links(subscriber)
        context.update(links, change_url=rsvp_links.rsvp_link_url(subscriber, event))
        headers = outgoing.list_unsubscribe(links["unsubscribe_url"])
        language = subscriber.language
    preferred = subscriber.charset if subscriber else default_charset(reply.email)
    attachments = [calendar_attachment(event, reply.email)] if kind in WITH_CALENDAR else []
    return templated_mail(
        f"publishing/mail/rsvp_{kind}",
        {"reason": REASON, **context},
        to=reply.email,
        language=language or "",
        preferred_charset=preferred,
        headers=headers,
        attachments=attachments,
        about=f"RSVP {reply.pk}",
    )


@db_task(retries=3, retry_delay=60, priority=outgoing.TASK_PRIORITY)
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
    outgoing.send(
        templated_mail(
            "publishing/mail/rsvp_request",
            {"reason": REASON, **context},
            to=email,
            language=language,
            preferred_charset=default_charset(email),
            about=f"an answer to event {event.pk}",
        )
    )


def calendar_attachment(event: Event, email: str) -> mime.Attachment:
    """The attendee's copy of the event, always UTF-8 whatever the mail's own charset: calendar
    apps read iCalendar as UTF-8 (RFC 5545), and base64 keeps carrier mail 7-bit clean."""
    return mime.Attachment(
        filename="event.ics",
        content_type="text/calendar",
        data=ics.event_calendar(event, email),
        params={"method": "REQUEST", "charset": "utf-8"},
    )
