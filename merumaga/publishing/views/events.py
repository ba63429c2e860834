"""Event pages and answers. Answering goes through publishing.rsvp; these only read and render.

Not page-cached like the other public pages: they show seats left, which change with every
answer, and carry a CSRF token, which must not be served to someone else.
"""

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from merumaga.publishing import ics, rsvp
from merumaga.publishing.models import Event, Rsvp
from merumaga.subscribers import throttle, tokens
from merumaga.subscribers.models import ConsentRecord
from merumaga.subscribers.services import InvalidInput
from merumaga.subscribers.views import client_ip, evidence, invalid_link

# Past events listed below the upcoming ones; older ones stay reachable by their own URL.
PAST_EVENTS_SHOWN = 30


class RsvpForm(forms.Form):
    """Asks for a seat. Only presence and length here: rsvp.answer checks the address and text.

    There is no "decline" here: anyone can type any address, so giving a seat back is done from
    the link in the person's own confirmation mail.
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


def _done_page(request: HttpRequest, event: Event, answer: Rsvp) -> HttpResponse:
    return render(request, "publishing/rsvp_done.html", {"event": event, "rsvp": answer})


@require_POST
def rsvp_form(request: HttpRequest, slug: str) -> HttpResponse:
    event = _public_event(slug)
    form = RsvpForm(request.POST)
    if not form.is_valid():
        return _detail_page(request, event, form, status=400)
    ip = client_ip(request) or "unknown"
    if not throttle.allow(f"rsvp-ip:{ip}", settings.RSVP_LIMIT_PER_IP):
        form.add_error(None, _("短時間に多くの申込がありました。しばらくしてからお試しください。"))
        return _detail_page(request, event, form, status=429)
    try:
        answer = rsvp.answer(
            event,
            form.cleaned_data["email"],
            rsvp.ATTEND,
            name=form.cleaned_data["name"],
            organisation=form.cleaned_data["organisation"],
            evidence=evidence(request, ConsentRecord.Source.FORM),
        )
    except (InvalidInput, rsvp.RsvpError) as error:
        form.add_error(None, str(error))
        return _detail_page(request, event, form, status=400)
    return _done_page(request, event, answer)


@require_http_methods(["GET", "POST"])
def rsvp_link(request: HttpRequest, token: str) -> HttpResponse:
    """A reader's own answer page, from an invitation. Only the POST answers: mail scanners
    fetch every link in a mail with GET."""
    try:
        subscriber, event = rsvp.read_rsvp_link(token)
    except tokens.InvalidToken:
        return invalid_link(request)
    error = None
    if request.method == "POST":
        try:
            answer = rsvp.answer(
                event,
                subscriber.email,
                request.POST.get("answer", ""),
                name=subscriber.name,
                organisation=subscriber.organisation,
                subscriber=subscriber,
                evidence=evidence(request, ConsentRecord.Source.EMAIL_LINK),
            )
        except (InvalidInput, rsvp.RsvpError) as problem:
            error = str(problem)
        else:
            return _done_page(request, event, answer)
    current = event.rsvps.filter(email=subscriber.email).first()
    return _answer_page(request, event, subscriber.email, current, error)


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
            return _done_page(request, current.event, answer)
    return _answer_page(request, current.event, current.email, current, error)
