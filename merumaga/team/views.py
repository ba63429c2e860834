"""Signing in with a second factor, and setting it up (README: Accounts)."""

from base64 import b32encode

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from merumaga.team import two_factor


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("確認コード"),
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


WRONG_CODE = _("コードが違います。時刻のずれがないか確かめて、もう一度入力してください。")


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure())
    return target if safe and target.startswith("/") else reverse("admin:index")


@login_required(login_url="admin:login")
def verify(request: HttpRequest) -> HttpResponse:
    """The second step of signing in: a code from the authenticator, or a recovery code."""
    if not two_factor.has_set_up(request.user):
        return HttpResponseRedirect(reverse("two_factor_setup"))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = two_factor.verify(request.user, form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            return HttpResponseRedirect(_next(request))
        form.add_error(
            "code", _("コードが違います。時刻のずれがないか確かめて、もう一度入力してください。")
        )
    context = {
        "form": form,
        "next": _next(request),
        "has_passkey": bool(two_factor.passkeys(request.user)),
    }
    return render(request, "team/verify.html", context)


@login_required(login_url="admin:login")
def setup(request: HttpRequest) -> HttpResponse:
    """Set up (or replace) the authenticator: scan, type its first code, keep the recovery
    codes, shown this once."""
    device = two_factor.pending_authenticator(request.user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = two_factor.confirm_authenticator(device, form.cleaned_data["code"])
        if codes is not None:
            otp_login(request, device)
            return render(request, "team/recovery_codes.html", {"codes": codes})
        form.add_error("code", _("コードが違います。アプリに表示されている6桁を入力してください。"))
    qr = segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#111111")
    context = {
        "form": form,
        "qr": qr,
        "key": b32encode(device.bin_key).decode(),
        "replacing": two_factor.has_set_up(request.user),
        "may_add_passkey": two_factor.may_add_passkey(request.user),
        "passkeys": two_factor.passkeys(request.user),
    }
    return render(request, "team/setup.html", context)


@require_POST
@login_required(login_url="admin:login")
def remove_passkey(request: HttpRequest, passkey_id: int) -> HttpResponse:
    """Remove one of one's own passkeys (a lost or replaced key), after the second step."""
    if not two_factor.may_add_passkey(request.user):  # removing asks what adding asks
        return HttpResponseRedirect(reverse("two_factor_verify"))
    if two_factor.remove_passkey(request.user, passkey_id):
        messages.success(request, _("パスキーを削除しました。"))
    return HttpResponseRedirect(reverse("two_factor_setup"))
