"""Answers to events: every change to an RSVP goes through one function here.

Seats are handed out in order of answering, under a lock on the event row, so that the capacity
holds however many people answer at once. Mails are queued once the transaction commits.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.core import signing
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from merumaga.publishing import rsvp_links, tasks_rsvp
from merumaga.publishing.models import Event, Rsvp
from merumaga.subscribers import throttle, tokens
from merumaga.subscribers.mail import absolute_url
from merumaga.subscribers.models import Subscriber, address_hash
from merumaga.subscribers.services import (
    Evidence,
    InvalidInput,
    clean_text,
    field_max_length,
    normalise_email,
    within_daily_mail_budget,
)

logger = logging.getLogger(__name__)

ATTEND = "attend"
DECLINE = "decline"
NAME_MAX_LENGTH = field_max_length(Rsvp, "name")
ORGANISATION_MAX_LENGTH = field_max_length(Rsvp, "organisation")


class RsvpError(ValueError):
    """The event takes no answers now; the message says why, for the person answering."""


def public_events() -> QuerySet[Event]:
    """Shown on the site: published, or cancelled after it was published (shown as 中止)."""
    return Event.objects.filter(
        Q(status=Event.EventStatus.PUBLISHED)
        | Q(status=Event.EventStatus.CANCELLED, published_at__isnull=False)
    )


def closed_reason(event: Event, answer: str = ATTEND) -> str | None:
    """Why the event takes no such answer now, for the page and the error; None while it does.

    New seats are taken until the registration deadline; a seat can be given back until the
    event starts, so that someone on the waitlist can still have it.
    """
    if event.status == Event.EventStatus.CANCELLED:
        return _("このイベントは中止になりました。")
    if event.status != Event.EventStatus.PUBLISHED:
        return _("このイベントは現在、申込を受け付けていません。")
    if answer == DECLINE:
        if timezone.now() >= event.starts_at:
            return _("イベントはすでに始まっています。")
        return None
    if not event.registration_open:
        return _("申込の受付は終了しました。")
    return None


def seats_left(event: Event) -> int | None:
    """Seats not yet taken; None when the event has no capacity limit."""
    if event.capacity is None:
        return None
    attending = event.rsvps.filter(answer=Rsvp.Answer.ATTENDING).count()
    return max(0, event.capacity - attending)


def answer(
    event: Event,
    email: str,
    answer: str,
    *,
    name: str = "",
    organisation: str = "",
    subscriber: Subscriber | None = None,
    evidence: Evidence | None = None,
) -> Rsvp:
    """Record that `email` will attend ("attend") or not ("decline"), and queue its mail.

    Attending takes a seat if one is left, else a place at the end of the waitlist. Repeating
    the same answer (a double click, a second visit) changes nothing and sends no second mail.
    Declining a seat hands it to the first person waiting. Raises InvalidInput for bad input and
    RsvpError when the event does not take answers (draft, cancelled, deadline passed).
    """
    email = normalise_email(email)
    name = clean_text(name, NAME_MAX_LENGTH, _("お名前"))
    organisation = clean_text(organisation, ORGANISATION_MAX_LENGTH, _("所属"))
    if answer not in (ATTEND, DECLINE):
        raise InvalidInput(_("「参加する」か「参加しない」を選んでください。"))
    # Mail for someone who is not a reader goes out in the language of the page they answered on.
    language = get_language()
    with transaction.atomic():
        # The lock comes first: every answer to this event waits here for the one before it, so
        # seat counting and the waitlist order see every committed answer.
        event = Event.objects.select_for_update().get(pk=event.pk)
        reason = closed_reason(event, answer)
        if reason:
            raise RsvpError(reason)
        subscriber = subscriber or _confirmed_reader(email)
        current = Rsvp.objects.filter(event=event, email=email).first()
        person = {"name": name, "organisation": organisation, "subscriber": subscriber}
        if answer == ATTEND:
            rsvp = _attend(event, email, current, person, language)
        else:
            rsvp = _decline(event, email, current, person, language)
    if evidence is not None:
        # Rsvp has no column for the evidence: the log keeps how the answer came (no IP, no UA).
        logger.info(
            "RSVP %s to event %s: %s via %s", rsvp.pk, event.pk, rsvp.answer, evidence.source
        )
    return rsvp


def _confirmed_reader(email: str) -> Subscriber | None:
    # A reader answering on the public form still gets their language, charset and links: the mail
    # goes to their own address, so the links in it reach no one else.
    return Subscriber.objects.filter(email=email, status=Subscriber.Status.CONFIRMED).first()


def _attend(event: Event, email: str, current: Rsvp | None, person: dict, language) -> Rsvp:
    if current and current.answer in (Rsvp.Answer.ATTENDING, Rsvp.Answer.WAITLISTED):
        return current
    # Seats freed by a raised capacity go to those already waiting before anyone new.
    _fill_free_seats(event)
    state = Rsvp.Answer.WAITLISTED if seats_left(event) == 0 else Rsvp.Answer.ATTENDING
    # Asking again after declining puts one at the end of the waitlist, like anyone new.
    rsvp = _save(event, email, current, person, state, requested_at=timezone.now())
    _queue_mail(rsvp, "attending" if state == Rsvp.Answer.ATTENDING else "waitlisted", language)
    return rsvp


def _decline(event: Event, email: str, current: Rsvp | None, person: dict, language) -> Rsvp:
    if current and current.answer == Rsvp.Answer.DECLINED:
        return current
    gave_up_a_seat = current is not None and current.answer == Rsvp.Answer.ATTENDING
    rsvp = _save(event, email, current, person, Rsvp.Answer.DECLINED)
    _queue_mail(rsvp, "declined", language)
    if gave_up_a_seat:
        _fill_free_seats(event)
    return rsvp


def _save(event, email, current, person, state, requested_at=None) -> Rsvp:
    if current is None:
        return Rsvp.objects.create(
            event=event,
            email=email,
            answer=state,
            requested_at=requested_at or timezone.now(),
            **person,
        )
    current.answer = state
    if requested_at:
        current.requested_at = requested_at
    # Keep what we knew when the new answer leaves a field empty (a link from a mail has no name).
    for field, value in person.items():
        if value:
            setattr(current, field, value)
    current.save()
    return current


def fill_free_seats(event: Event) -> list[Rsvp]:
    """Give free seats to the waitlist, first come first served: for the admin right after it
    raises the capacity (the next answer would do it anyway). Returns the RSVPs promoted; each
    gets its mail."""
    with transaction.atomic():
        event = Event.objects.select_for_update().get(pk=event.pk)
        if event.status != Event.EventStatus.PUBLISHED or event.starts_at <= timezone.now():
            return []
        return _fill_free_seats(event)


def _fill_free_seats(event: Event) -> list[Rsvp]:
    # Called with the event row locked.
    waiting = event.rsvps.filter(answer=Rsvp.Answer.WAITLISTED).order_by("requested_at", "id")
    seats = seats_left(event)
    promoted = list(waiting if seats is None else waiting[:seats])
    for rsvp in promoted:
        rsvp.answer = Rsvp.Answer.ATTENDING
        rsvp.save(update_fields=["answer", "updated_at"])
        # Their language is known only if they are a reader; others get the site's language.
        _queue_mail(rsvp, "promoted", None)
    return promoted


def _queue_mail(rsvp: Rsvp, kind: str, language: str | None) -> None:
    rsvp_id = rsvp.pk
    transaction.on_commit(lambda: tasks_rsvp.send_rsvp_mail(rsvp_id, kind, language))


# Answers from the public form, where anyone can type any address, wait for its owner: nothing
# is stored, no seat is taken and no typed text is mailed until they open the link mailed to it.
_REQUEST_SALT = "merumaga.publishing.rsvp-request"
REQUEST_MAX_AGE = timedelta(days=3)
REQUESTS_PER_ADDRESS = 3  # per event and hour: a stranger cannot flood someone's mailbox


@dataclass(frozen=True)
class SeatRequest:
    """An answer from the public form, carried (signed) by the link mailed to its address."""

    event: Event
    email: str
    name: str
    organisation: str
    language: str


def request_seat(
    event: Event, email: str, *, name: str, organisation: str = "", language: str | None = None
) -> str:
    """Mail `email` a link to confirm a seat at `event`; returns the address as normalised.

    The mail carries no text typed on the form (only the event and the link); the link carries
    the answer, signed, so nothing is stored and no seat is taken until the owner confirms.
    """
    email = normalise_email(email)
    name = clean_text(name, NAME_MAX_LENGTH, _("お名前"))
    organisation = clean_text(organisation, ORGANISATION_MAX_LENGTH, _("所属"))
    reason = closed_reason(event, ATTEND)
    if reason:
        raise RsvpError(reason)
    hourly = throttle.allow(f"rsvp-request:{event.pk}:{address_hash(email)}", REQUESTS_PER_ADDRESS)
    if not hourly or not within_daily_mail_budget(email):
        raise RsvpError(
            _("このアドレスには確認メールを続けてお送りしています。届いたメールをご確認ください。")
        )
    language = language or get_language() or "ja"
    token = signing.dumps(
        [event.pk, email, name, organisation, language], salt=_REQUEST_SALT, compress=True
    )
    url = absolute_url(reverse("rsvp_request_link", args=[token]))
    transaction.on_commit(lambda: tasks_rsvp.send_rsvp_request_mail(event.pk, email, url, language))
    return email


def read_seat_request(token: str) -> SeatRequest:
    try:
        event_id, email, name, organisation, language = signing.loads(
            token, salt=_REQUEST_SALT, max_age=REQUEST_MAX_AGE
        )
        event = public_events().get(pk=event_id)
    except (signing.BadSignature, ValueError, TypeError, Event.DoesNotExist):
        raise tokens.InvalidToken from None
    return SeatRequest(event, email, name, organisation, language)


def read_answer_link(token: str) -> Rsvp:
    try:
        rsvp_id, email = signing.loads(token, salt=rsvp_links.ANSWER_LINK_SALT)
        return Rsvp.objects.select_related("event").get(
            pk=rsvp_id, email=email, event__in=public_events()
        )
    except (signing.BadSignature, ValueError, TypeError, Rsvp.DoesNotExist):
        raise tokens.InvalidToken from None


def read_rsvp_link(token: str) -> tuple[Subscriber, Event]:
    """The reader and the public event a link names; InvalidToken for anything else."""
    subscriber, scope = tokens.read_token(token, tokens.RSVP)
    if not scope.isdigit():
        raise tokens.InvalidToken
    event = public_events().filter(pk=int(scope)).first()
    if event is None:
        raise tokens.InvalidToken
    return subscriber, event
