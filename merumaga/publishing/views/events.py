"""Event pages and answers. Answering goes through publishing.rsvp; these only read and render.

Not page-cached like the other public pages: they show seats left, which change with every
answer, and carry a CSRF token, which must not be served to someone else.
"""

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from merumaga.publishing import ics, rsvp, rsvp_links
from merumaga.publishing.models import Event, Rsvp
from merumaga.subscribers import throttle, tokens
from merumaga.subscribers.models import ConsentRecord
from merumaga.subscribers.services import InvalidInput
from merumaga.subscribers.views import (
    client_ip,
    evidence,
    invalid_link,
    read_note,
    redirect_with_note,
)

# Past events listed below the upcoming ones; older ones stay reachable by their own URL.
PAST_EVENTS_SHOWN = 30


class RsvpForm(forms.Form):
    """Asks for a seat. Only presence and length here: rsvp.answer checks the address and text.

    Anyone can type any address: the answer waits for the owner of the address, who confirms it
    from the link mailed there. There is no "decline" here; a seat is given back from the link
    in the person's own mail.
    """

    name = forms.CharField(
        label=_("お名前"),
        max_length=rsvp.NAME_MAX_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
        error_messages={"required": _("お名前を入力してください。")},
    )
    email = forms.CharField(
        label=_("メールアドレス"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "inputmode": "email"}),
        error_messages={"required": _("メールアドレスを入力してください。")},
    )
    organisation = forms.CharField(
        label=_("所属 (任意)"),
        required=False,
        max_length=rsvp.ORGANISATION_MAX_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "organization"}),
    )


def _public_event(slug: str) -> Event:
    # Drafts (and events cancelled before they were ever published) do not exist for the public.
    return get_object_or_404(rsvp.public_events(), slug=slug)


@require_safe
def event_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    events = rsvp.public_events()
    upcoming = events.filter(ends_at__gte=now).order_by("starts_at", "id")
    past = events.filter(ends_at__lt=now).order_by("-starts_at", "-id")[:PAST_EVENTS_SHOWN]
    return render(request, "publishing/event_list.html", {"upcoming": upcoming, "past": past})


def _detail_page(request: HttpRequest, event: Event, form: RsvpForm, status: int = 200):
    context = {
        "event": event,
        "form": form,
        "seats_left": rsvp.seats_left(event),
        "closed_reason": rsvp.closed_reason(event),
        "cancelled": event.status == Event.EventStatus.CANCELLED,
    }
    return render(request, "publishing/event_detail.html", context, status=status)


@require_safe
def event_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _detail_page(request, _public_event(slug), RsvpForm())


@require_safe
def event_ics(request: HttpRequest, slug: str) -> HttpResponse:
    event = _public_event(slug)
    response = HttpResponse(ics.event_calendar(event), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="event-{event.pk}.ics"'
    return response


def _done(answer: Rsvp) -> HttpResponse:
    """After any answer, the page that shows it: a redirect, so a refresh never answers again."""
    return redirect("rsvp_done", token=rsvp_links.answer_token(answer))


@require_safe
def rsvp_done(request: HttpRequest, token: str) -> HttpResponse:
    try:
        current = rsvp.read_answer_link(token)
    except tokens.InvalidToken:
        return invalid_link(request)
    context = {"event": current.event, "rsvp": current, "change_token": token}
    return render(request, "publishing/rsvp_done.html", context)


@require_POST
def rsvp_form(request: HttpRequest, slug: str) -> HttpResponse:
    """The public form: anyone can type any address, so this only mails that address a link;
    its owner confirms the answer there (rsvp_request_link)."""
    event = _public_event(slug)
    form = RsvpForm(request.POST)
    if not form.is_valid():
        return _detail_page(request, event, form, status=400)
    ip = client_ip(request) or "unknown"
    if not throttle.allow(f"rsvp-ip:{ip}", settings.RSVP_LIMIT_PER_IP):
        form.add_error(None, _("短時間に多くの申込がありました。しばらくしてからお試しください。"))
        return _detail_page(request, event, form, status=429)
    try:
        email = rsvp.request_seat(
            event,
            form.cleaned_data["email"],
            name=form.cleaned_data["name"],
            organisation=form.cleaned_data["organisation"],
        )
    except (InvalidInput, rsvp.RsvpError) as error:
        form.add_error(None, str(error))
        return _detail_page(request, event, form, status=400)
    url = reverse("rsvp_request_sent", args=[event.slug])
    return redirect_with_note(request, url, f"rsvp-request-sent:{event.pk}", email)


@require_safe
def rsvp_request_sent(request: HttpRequest, slug: str) -> HttpResponse:
    event = _public_event(slug)
    email = read_note(request, f"rsvp-request-sent:{event.pk}")
    return render(request, "publishing/rsvp_request_sent.html", {"event": event, "email": email})


@require_http_methods(["GET", "POST"])
def rsvp_request_link(request: HttpRequest, token: str) -> HttpResponse:
    """The link mailed to an address typed on the public form: its owner sees the answer as it
    was typed and confirms it. Only the POST answers (mail scanners open links)."""
    try:
        seat = rsvp.read_seat_request(token)
    except tokens.InvalidToken:
        return invalid_link(request)
    error = None
    if request.method == "POST":
        try:
            with translation.override(seat.language):
                answer = rsvp.answer(
                    seat.event,
                    seat.email,
                    rsvp.ATTEND,
                    name=seat.name,
                    organisation=seat.organisation,
                    evidence=evidence(request, ConsentRecord.Source.EMAIL_LINK),
                )
        except (InvalidInput, rsvp.RsvpError) as problem:
            error = str(problem)
        else:
            return _done(answer)
    context = {
        "seat": seat,
        "event": seat.event,
        "current": seat.event.rsvps.filter(email=seat.email).first(),
        "seats_left": rsvp.seats_left(seat.event),
        "closed": rsvp.closed_reason(seat.event, rsvp.ATTEND),
        "error": error,
    }
    return render(request, "publishing/rsvp_request.html", context, status=400 if error else 200)


@require_http_methods(["GET", "POST"])
def rsvp_link(request: HttpRequest, token: str) -> HttpResponse:
    """A reader's own answer page, from an invitation. Only the POST answers: mail scanners
    fetch every link in a mail with GET."""
    try:
        subscriber, event = rsvp.read_rsvp_link(token)
    except tokens.InvalidToken:
        return invalid_link(request)
    email = subscriber.email
    if email is None:  # erased; read_token refuses those already
        return invalid_link(request)
    error = None
    if request.method == "POST":
        try:
            answer = rsvp.answer(
                event,
                email,
                request.POST.get("answer", ""),
                name=subscriber.name,
                organisation=subscriber.organisation,
                subscriber=subscriber,
                evidence=evidence(request, ConsentRecord.Source.EMAIL_LINK),
            )
        except (InvalidInput, rsvp.RsvpError) as problem:
            error = str(problem)
        else:
            return _done(answer)
    current = event.rsvps.filter(email=email).first()
    return _answer_page(request, event, email, current, error)


def _answer_page(request, event: Event, email: str, current: Rsvp | None, error: str | None):
    context = {
        "event": event,
        "email": email,
        "current": current,
        "seats_left": rsvp.seats_left(event),
        "attend_closed": rsvp.closed_reason(event, rsvp.ATTEND),
        "decline_closed": rsvp.closed_reason(event, rsvp.DECLINE),
        "error": error,
    }
    return render(request, "publishing/rsvp_link.html", context, status=400 if error else 200)


@require_http_methods(["GET", "POST"])
def rsvp_answer_link(request: HttpRequest, token: str) -> HttpResponse:
    """The page from someone's own confirmation mail: change their answer. Only POST answers."""
    try:
        current = rsvp.read_answer_link(token)
    except tokens.InvalidToken:
        return invalid_link(request)
    error = None
    if request.method == "POST":
        try:
            answer = rsvp.answer(
                current.event,
                current.email,
                request.POST.get("answer", ""),
                evidence=evidence(request, ConsentRecord.Source.EMAIL_LINK),
            )
        except (InvalidInput, rsvp.RsvpError) as problem:
            error = str(problem)
        else:
            return _done(answer)
    return _answer_page(request, current.event, current.email, current, error)
