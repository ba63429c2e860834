"""An event as an iCalendar file (RFC 5545): the "add to calendar" link and the mail attachment."""

import html
import re
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar
from django.conf import settings
from django.utils import timezone
from django.utils.html import strip_tags

from merumaga.institute.services import sender_identity
from merumaga.publishing.models import Event

TOKYO = ZoneInfo("Asia/Tokyo")
PRODID = "-//merumaga//events//JA"
# Calendars show the description in a small box; the full text is one tap away (URL).
DESCRIPTION_MAX_CHARS = 1000
_BLANK_LINES = re.compile(r"\n\s*\n+")
_BLOCK_END = re.compile(r"</(p|h[1-6]|blockquote|pre|table|ul|ol)>")


def event_uid(event: Event) -> str:
    """The same for every copy of the event, so that a later copy updates the first one."""
    return f"event-{event.pk}@{urlsplit(settings.SITE_URL).hostname}"


def event_url(event: Event) -> str:
    return f"{settings.SITE_URL}{event.get_absolute_url()}"


def plain_description(event: Event, max_chars: int = DESCRIPTION_MAX_CHARS) -> str:
    """The description as plain text: rendered from the Markdown, tags dropped, cut at a
    sentence or line end where one is near the limit."""
    # Paragraphs and headings stay apart by a blank line, list items start with a bullet.
    marked = _BLOCK_END.sub(lambda m: m.group(0) + "\n\n", event.description_html or "")
    marked = marked.replace("<li>", "<li>・").replace("<br />", "\n").replace("<br>", "\n")
    text = html.unescape(strip_tags(marked))
    text = _BLANK_LINES.sub("\n\n", text).strip()
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    # Japanese has no spaces between words: a line end or 。 is the natural place to stop.
    boundary = max(cut.rfind("\n"), cut.rfind("。"), cut.rfind(". "))
    if boundary >= max_chars * 0.6:
        cut = cut[: boundary + 1]
    return cut.rstrip() + "…"


def _sequence(event: Event) -> int:
    # Calendars keep the copy with the highest SEQUENCE. Seconds since creation grow with every
    # edit and stay well inside iCalendar's 32-bit INTEGER (a Unix time would not after 2038).
    return max(0, int((event.updated_at - event.created_at).total_seconds()))


def event_calendar(event: Event, attendee_email: str | None = None) -> bytes:
    """A VCALENDAR with this one event, in Japan time, with its VTIMEZONE.

    Without an attendee it is a published calendar entry (METHOD:PUBLISH), for the page link.
    With one it is that person's copy (METHOD:REQUEST, with ORGANIZER and ATTENDEE as RFC 5546
    requires), which mail clients offer to add to the calendar.
    """
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST" if attendee_email else "PUBLISH")

    url = event_url(event)
    description = plain_description(event)
    vevent = icalendar.Event.new(
        uid=event_uid(event),
        stamp=timezone.now(),
        sequence=_sequence(event),
        start=event.starts_at.astimezone(TOKYO),
        end=event.ends_at.astimezone(TOKYO),
        summary=event.title,
        description=f"{description}\n\n{url}" if description else url,
        # A hybrid event has both: people at the venue and online both find their way in.
        location=" / ".join(filter(None, [event.venue, event.online_url])) or None,
        url=url,
        status=(
            icalendar.STATUS.CANCELLED
            if event.status == Event.EventStatus.CANCELLED
            else icalendar.STATUS.CONFIRMED
        ),
    )
    if attendee_email:
        identity = sender_identity()
        vevent.add(
            "organizer",
            icalendar.vCalAddress(f"mailto:{identity.from_email}"),
            parameters={"CN": identity.organisation_name},
        )
        # RSVP=FALSE: the answer was already given on our site; no reply mail is expected.
        vevent.add(
            "attendee",
            icalendar.vCalAddress(f"mailto:{attendee_email}"),
            parameters={"PARTSTAT": "ACCEPTED", "RSVP": "FALSE"},
        )
    calendar.add_component(vevent)
    calendar.add_missing_timezones()
    return calendar.to_ical()
