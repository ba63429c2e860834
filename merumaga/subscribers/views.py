"""Reader-facing pages: sign-up, confirm, preferences, one-click unsubscribe. No login anywhere:
each page that changes a reader's state is reached through a signed link."""

import dataclasses
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from merumaga.institute.services import sender_identity
from merumaga.subscribers import services, tokens
from merumaga.subscribers.carriers import is_carrier
from merumaga.subscribers.forms import AddressForm, ConfirmForm, PreferencesForm, SubscribeForm
from merumaga.subscribers.models import ConsentRecord, Subscriber, Topic, UnsubscribeReason
from merumaga.subscribers.signals import ReaderChoice, reader_choices_requested

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


def client_ip(request: HttpRequest) -> str | None:
    if settings.BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            # The proxy appends the address it saw last; earlier entries are the client's word.
            return forwarded.split(",")[-1].strip() or None
    return request.META.get("REMOTE_ADDR") or None


def evidence(request: HttpRequest, source: str) -> services.Evidence:
    return services.Evidence(
        source=source,
        ip_address=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )


def redirect_with_note(request: HttpRequest, url: str, purpose: str, value) -> HttpResponse:
    """A redirect after a POST to a page that must know what was done (the address mailed).
    The value waits in the visitor's session, not in the URL: no one can make that page show
    text of their choosing, and no access log keeps the address."""
    request.session[f"note:{purpose}"] = value
    return redirect(url)


def read_note(request: HttpRequest, purpose: str):
    """The value `redirect_with_note` left for this page, once; None after (or without one)."""
    return request.session.pop(f"note:{purpose}", None)


def invalid_link(request: HttpRequest) -> HttpResponse:
    # One answer for bad, tampered, expired and revoked links alike.
    return render(request, "subscribers/invalid_link.html", status=404)


def _signup_page(request: HttpRequest, form: SubscribeForm, status=200):
    return render(
        request,
        "subscribers/subscribe.html",
        {"form": form, "consent_wording": services.consent_wording()},
        status=status,
    )


def _form_again(
    request: HttpRequest, form: SubscribeForm, message: "StrOrPromise", status: int
) -> HttpResponse:
    """The person's answers on a fresh page, with what to do next: nothing they typed is lost."""
    again = form.shown_again()
    again.add_error(None, message)
    return _signup_page(request, again, status)


@require_http_methods(["GET", "POST"])
def subscribe(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        # The home page's box sends the address here, to choose mailings and agree.
        form = SubscribeForm(initial={"email": request.GET.get("email", "")[:254]})
        return _signup_page(request, form)
    form = SubscribeForm(request.POST)
    if not form.is_valid():
        return _signup_page(request, form, status=400)
    next_step = form.needs_another_press()
    if next_step:
        return _form_again(request, form, next_step, status=200)
    email = form.cleaned_data["email"]
    try:
        outcome = services.request_subscription(
            email=email,
            name=form.cleaned_data["name"],
            topic_keys=[topic.key for topic in form.cleaned_data["topics"]],
            language=request.LANGUAGE_CODE if request.LANGUAGE_CODE in ("ja", "en") else "ja",
            evidence=evidence(request, ConsentRecord.Source.FORM),
        )
    except services.TooManyRequests:
        message = _("短時間に多くの登録がありました。しばらくしてからお試しください。")
        return _form_again(request, form, message, status=429)
    except services.InvalidInput as error:
        return _form_again(request, form, str(error), status=400)
    # The same page for a new, pending or confirmed address (each got a mail); a different one
    # only when no mail went out, because one did within the last day.
    sent = outcome != services.SignupOutcome.MAIL_WITHHELD
    return redirect_with_note(request, reverse("subscribe_done"), "check-your-mail", [email, sent])


def subscribe_done(request: HttpRequest) -> HttpResponse:
    """Which address was mailed, whether a mail went out now, and what to do if none arrives."""
    email, sent = read_note(request, "check-your-mail") or (None, True)
    sender = sender_identity().from_email
    return render(
        request,
        "subscribers/subscribe_done.html",
        {
            "email": email,
            "sent": sent,
            "carrier": bool(email and is_carrier(email)),
            "sender": sender,
            "sending_domain": sender.rpartition("@")[2],
        },
    )


def _confirm_wording() -> str:
    return _("上記のメールマガジンの受信を確認します。")


@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    # Only the POST confirms: mail scanners fetch every link in a mail with GET.
    try:
        subscriber, asked = tokens.read_token(token, tokens.CONFIRM)
    except tokens.InvalidToken:
        return invalid_link(request)
    if subscriber.status == Subscriber.Status.CONFIRMED:
        token_context = {"preferences_token": tokens.make_token(subscriber, tokens.PREFERENCES)}
        return render(request, "subscribers/confirmed.html", token_context)
    if subscriber.status not in services.CONFIRMABLE:
        return invalid_link(request)
    if asked == tokens.ALL_TOPICS:
        topics = [t.key for t in _subscribed_topics(subscriber)]
    else:
        topics = asked.split(",")
    form = ConfirmForm(request.POST or None, initial={"topics": topics, "name": subscriber.name})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.confirm(
                    subscriber,
                    evidence(request, ConsentRecord.Source.EMAIL_LINK),
                    _confirm_wording(),
                    topic_keys=[topic.key for topic in form.cleaned_data["topics"]],
                    name=form.cleaned_data["name"],
                )
            except services.InvalidInput as error:
                form.add_error(None, str(error))
            else:
                # A redirect, so that a refresh shows the result instead of posting again.
                return redirect("confirm", token=token)
        status = 400
    context = {"subscriber": subscriber, "form": form, "wording": _confirm_wording()}
    return render(request, "subscribers/confirm.html", context, status=status)


def _subscribed_topics(subscriber: Subscriber):
    return Topic.objects.filter(
        subscription__subscriber=subscriber, subscription__subscribed=True
    ).order_by("position")


def _current_preferences(subscriber: Subscriber) -> dict:
    return {
        "name": subscriber.name,
        "topics": [t.key for t in _subscribed_topics(subscriber)],
        "language": subscriber.language,
        "charset": subscriber.charset,
    }


def _reader_choices(subscriber: Subscriber) -> list[ReaderChoice]:
    """What later apps let the reader choose here (research fields), each answered once."""
    choices: list[ReaderChoice] = []
    for _receiver, answer in reader_choices_requested.send(_reader_choices, subscriber=subscriber):
        if isinstance(answer, ReaderChoice):
            choices.append(answer)
    return choices


def _ticked(request: HttpRequest, choice: ReaderChoice) -> list[int] | None:
    """The values ticked for `choice`, or None if one is not among its options (a page from
    before a change, or a hand-made request): refused with a message, nothing saved."""
    allowed = {value for value, _label in choice.options}
    raw = request.POST.getlist(f"choice-{choice.key}")
    if not all(value.isascii() and value.isdecimal() and int(value) in allowed for value in raw):
        return None
    return [int(value) for value in raw]


def _preferences_page(request, subscriber, token, form, address_form, status=200, choices=None):
    context = {
        "form": form,
        "address_form": address_form,
        "subscriber": subscriber,
        "token": token,
        "choices": _reader_choices(subscriber) if choices is None else choices,
    }
    return render(request, "subscribers/preferences.html", context, status=status)


@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscriber, _topic = tokens.read_token(token, tokens.PREFERENCES)
    except tokens.InvalidToken:
        return invalid_link(request)
    form = PreferencesForm(request.POST or None, initial=_current_preferences(subscriber))
    choices = _reader_choices(subscriber)
    if request.method == "POST":
        ticked = {choice.key: _ticked(request, choice) for choice in choices}
        if None in ticked.values():
            form.add_error(None, _("選択肢にない値が送られました。ページを開き直してください。"))
        if form.is_valid():
            keys = [t.key for t in form.cleaned_data["topics"]]
            if "stop_all" in request.POST:
                keys = []
            try:
                with transaction.atomic():  # the whole form is saved, or none of it
                    subscriber = services.update_preferences(
                        subscriber,
                        keys,
                        evidence(request, ConsentRecord.Source.EMAIL_LINK),
                        language=form.cleaned_data["language"],
                        charset=form.cleaned_data["charset"],
                        name=form.cleaned_data["name"],
                    )
                    for choice in choices:
                        choice.save(ticked[choice.key] or [])
            except services.InvalidInput as error:
                form.add_error(None, str(error))
            else:
                if subscriber.status == Subscriber.Status.UNSUBSCRIBED:
                    messages.success(request, _("すべての配信を停止しました。"))
                else:
                    messages.success(request, _("配信設定を保存しました。"))
                return redirect("preferences", token=token)
        for choice in choices:  # what the reader ticked stays ticked on a refused form
            if ticked[choice.key] is not None:
                choice.chosen = set(ticked[choice.key] or [])
        return _preferences_page(
            request, subscriber, token, form, AddressForm(), status=400, choices=choices
        )
    return _preferences_page(request, subscriber, token, form, AddressForm(), choices=choices)


@require_http_methods(["POST"])
def preferences_address(request: HttpRequest, token: str) -> HttpResponse:
    """The reader asks to move to another address: a link goes there to confirm it."""
    try:
        subscriber, _topic = tokens.read_token(token, tokens.PREFERENCES)
    except tokens.InvalidToken:
        return invalid_link(request)
    address_form = AddressForm(request.POST)
    status = 400
    if address_form.is_valid():
        try:
            new_email = services.request_address_change(
                subscriber,
                address_form.cleaned_data["email"],
                evidence(request, ConsentRecord.Source.EMAIL_LINK),
            )
        except services.TooManyRequests:
            address_form.add_error(
                None, _("短時間に多くの変更がありました。しばらくしてからお試しください。")
            )
            status = 429
        except services.InvalidInput as error:
            address_form.add_error("email", str(error))
        else:
            messages.success(
                request,
                _(
                    "%(email)s に確認メールをお送りしました。"
                    "メール内のリンクから変更を確定するまで、配信先は変わりません。"
                )
                % {"email": new_email},
            )
            return redirect("preferences", token=token)
    form = PreferencesForm(initial=_current_preferences(subscriber))
    return _preferences_page(request, subscriber, token, form, address_form, status=status)


@require_http_methods(["GET", "POST"])
def confirm_address(request: HttpRequest, token: str) -> HttpResponse:
    """The link mailed to the new address. Only the POST changes it (scanners open links)."""
    try:
        subscriber, new_email = tokens.read_token(token, tokens.ADDRESS)
    except tokens.InvalidToken:
        return invalid_link(request)
    if subscriber.email is None:  # erased; read_token refuses those already
        return invalid_link(request)
    wording = services.address_change_wording(subscriber.email, new_email)
    error = None
    if request.method == "POST":
        try:
            subscriber = services.change_address(
                subscriber, new_email, evidence(request, ConsentRecord.Source.EMAIL_LINK)
            )
        except services.InvalidInput as problem:
            error = str(problem)
        else:
            messages.success(request, _("メールアドレスを変更しました。"))
            # A new preferences link: the change revoked every link made before it.
            return redirect("preferences", token=tokens.make_token(subscriber, tokens.PREFERENCES))
    context = {"wording": wording, "error": error, "new_email": new_email}
    return render(
        request, "subscribers/confirm_address.html", context, status=400 if error else 200
    )


def preferences_data(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscriber, _topic = tokens.read_token(token, tokens.PREFERENCES)
    except tokens.InvalidToken:
        return invalid_link(request)
    # Japanese as Japanese (not \uXXXX), and said to be UTF-8 so that every viewer reads it so.
    response = JsonResponse(
        services.export_data(subscriber),
        json_dumps_params={"ensure_ascii": False, "indent": 2},
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="merumaga-my-data.json"'
    return response


@require_http_methods(["GET", "POST"])
def erase(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscriber, _topic = tokens.read_token(token, tokens.PREFERENCES)
    except tokens.InvalidToken:
        return invalid_link(request)
    if request.method == "POST":
        services.erase(subscriber, evidence(request, ConsentRecord.Source.EMAIL_LINK))
        return redirect("erased")
    return render(request, "subscribers/erase.html", {"subscriber": subscriber, "token": token})


def erased(request: HttpRequest) -> HttpResponse:
    return render(request, "subscribers/erased.html")


@csrf_exempt  # RFC 8058: mailbox providers POST without cookies or CSRF token.
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """One-click unsubscribe (RFC 8058). A GET only shows a button: link scanners must not act."""
    try:
        subscriber, topic_key = tokens.read_token(token, tokens.UNSUBSCRIBE)
    except tokens.InvalidToken:
        return invalid_link(request)
    topic = None
    if topic_key != tokens.ALL_TOPICS:
        topic = Topic.objects.filter(key=topic_key).first()
        if topic is None:
            return invalid_link(request)
    context: dict[str, object] = {
        "subscriber": subscriber,
        "topic": topic,
        "token": token,
        "preferences_token": tokens.make_token(subscriber, tokens.PREFERENCES),
    }
    if request.method == "POST":
        given = evidence(request, ConsentRecord.Source.EMAIL_LINK)
        # A mailing's links and List-Unsubscribe say which mailing the reader left from (?m=).
        mailing = request.GET.get("m", "")
        if mailing.isascii() and mailing.isdecimal() and len(mailing) < 10:
            given = dataclasses.replace(given, mailing_id=int(mailing))
        services.unsubscribe(subscriber, topic.key if topic else None, given)
        # 200 with a page, never a redirect: providers treat a 3xx as failure.
        context["reasons"] = UnsubscribeReason.Reason.choices
        return render(request, "subscribers/unsubscribed.html", context)
    return render(request, "subscribers/unsubscribe.html", context)


@require_POST
def unsubscribe_reason(request: HttpRequest, token: str) -> HttpResponse:
    """The optional answer to "why?" on the page after unsubscribing: kept without the reader,
    counted per topic. Only with a link that really unsubscribes, and one answer per link."""
    try:
        subscriber, topic_key = tokens.read_token(token, tokens.UNSUBSCRIBE)
    except tokens.InvalidToken:
        return invalid_link(request)
    try:
        services.record_unsubscribe_reason(
            token,
            subscriber,
            None if topic_key == tokens.ALL_TOPICS else topic_key,
            request.POST.get("reason", ""),
        )
    except services.InvalidInput as error:
        topic = Topic.objects.filter(key=topic_key).first()
        context = {
            "topic": topic,
            "token": token,
            "preferences_token": tokens.make_token(subscriber, tokens.PREFERENCES),
            "reasons": UnsubscribeReason.Reason.choices,
            "reason_error": str(error),
        }
        return render(request, "subscribers/unsubscribed.html", context, status=400)
    return render(
        request,
        "subscribers/unsubscribe_reason_thanks.html",
        {"preferences_token": tokens.make_token(subscriber, tokens.PREFERENCES)},
    )


@require_http_methods(["GET", "POST"])
def stop_by_address(request: HttpRequest) -> HttpResponse:
    """For a reader whose link is broken or expired: type the address, get a stop link by mail.

    The answer is the same whatever the address, so the form tells no one who is a reader.
    """
    form = AddressForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            email = form.cleaned_data["email"]
            try:
                services.request_stop_link(email, evidence(request, ConsentRecord.Source.FORM))
            except services.TooManyRequests:
                form.add_error(
                    None, _("短時間に多くの申込がありました。しばらくしてからお試しください。")
                )
                status = 429
            else:
                url = reverse("stop_link_sent")
                return redirect_with_note(request, url, "stop-link-sent", email)
    return render(request, "subscribers/stop_by_address.html", {"form": form}, status=status)


def stop_link_sent(request: HttpRequest) -> HttpResponse:
    email = read_note(request, "stop-link-sent")
    return render(request, "subscribers/stop_link_sent.html", {"email": email})
