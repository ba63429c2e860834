"""What the event admin shows and exports about answers; read-only, no state changes here."""

import io
from zoneinfo import ZoneInfo

from django.db.models import Count
from django.http import HttpResponse

from merumaga.publishing import rsvp
from merumaga.publishing.models import Event, Rsvp
from merumaga.subscribers.csv_io import write_csv

TOKYO = ZoneInfo("Asia/Tokyo")
ATTENDEE_CSV_HEADER = ["name", "organisation", "email", "answer", "requested_at"]


def rsvp_counts(event: Event) -> dict:
    """{"attending": n, "waitlisted": n, "declined": n, "seats_left": n, or None if no limit}."""
    rows = event.rsvps.order_by().values("answer").annotate(count=Count("id"))
    counts = {row["answer"]: row["count"] for row in rows}
    return {
        "attending": counts.get(Rsvp.Answer.ATTENDING, 0),
        "waitlisted": counts.get(Rsvp.Answer.WAITLISTED, 0),
        "declined": counts.get(Rsvp.Answer.DECLINED, 0),
        "seats_left": rsvp.seats_left(event),
    }


def attendee_rows(event: Event):
    """Attending first, then the waitlist in the order it is served, then those who declined."""
    order: dict[str, int] = {
        Rsvp.Answer.ATTENDING: 0,
        Rsvp.Answer.WAITLISTED: 1,
        Rsvp.Answer.DECLINED: 2,
    }
    answers = sorted(event.rsvps.order_by("requested_at", "id"), key=lambda r: order[r.answer])
    for answer in answers:
        yield [
            answer.name,
            answer.organisation,
            answer.email,
            answer.answer,
            answer.requested_at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M:%S"),
        ]


def attendee_csv_response(event: Event) -> HttpResponse:
    """The answers as a CSV download that Excel opens as Japanese text; a cell such as
    "=cmd|…" stays text (write_csv neutralises formulas: names are typed by the public)."""
    out = io.StringIO()
    write_csv(out, ATTENDEE_CSV_HEADER, attendee_rows(event))
    response = HttpResponse(out.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="event-{event.pk}-attendees.csv"'
    return response
