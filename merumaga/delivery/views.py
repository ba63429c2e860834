"""The mail catcher's viewer in the admin: what the platform sent, as the recipients got it."""

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.contrib import admin
from django.core.paginator import InvalidPage, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.clickjacking import xframe_options_sameorigin

from merumaga import mailview
from merumaga.delivery import catcher
from merumaga.relays import uses_catcher

PER_PAGE = 50

T = TypeVar("T")

# The HTML part is whatever a template (or a stranger's mail) produced: it is shown sandboxed,
# with no scripts, no forms, no same-origin access; only images and inline styles may load.


def _get(read: Callable[[Path, str], T], key: str) -> T:
    try:
        return read(settings.MAILCATCHER_DIR, key)
    except catcher.MessageNotFound:
        raise Http404(_("メールが見つかりません。")) from None


def message_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    try:
        number = int(request.GET.get("page", "1"))
    except ValueError:
        raise Http404(_("ページ番号が正しくありません。")) from None
    caught, total = catcher.list_messages(
        settings.MAILCATCHER_DIR, query, offset=(number - 1) * PER_PAGE, limit=PER_PAGE
    )
    # The Maildir is no queryset: the paginator gets only the count, for the page arithmetic.
    try:
        page = Paginator(range(total), PER_PAGE).page(number)
    except InvalidPage:
        raise Http404(_("ページ番号が正しくありません。")) from None
    context = {
        **admin.site.each_context(request),
        "title": _("送信メール (メールキャッチャー)"),
        "caught": caught,
        "total": total,
        "page": page,
        "query": query,
        "relay": not uses_catcher(),
    }
    return render(request, "delivery/message_list.html", context)


def message_detail(request: HttpRequest, key: str) -> HttpResponse:
    message = _get(catcher.read_message, key)
    headers = mailview.header_items(message)
    subject = next((value for name, value in headers if name.lower() == "subject"), "")
    context = {
        **admin.site.each_context(request),
        "title": subject or _("(件名なし)"),
        "key": key,
        "headers": headers,
        "text": mailview.text_body(message),
        "has_html": mailview.html_body(message) is not None,
        "load_images": request.GET.get("images") == "1",
        "attachments": mailview.attachments(message),
    }
    return render(request, "delivery/message_detail.html", context)


@xframe_options_sameorigin
def message_html(request: HttpRequest, key: str) -> HttpResponse:
    html = mailview.html_body(_get(catcher.read_message, key))
    if html is None:
        raise Http404(_("このメールには HTML パートがありません。"))
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = mailview.html_policy(request.GET.get("images") == "1")
    return response


def message_raw(request: HttpRequest, key: str) -> HttpResponse:
    raw = _get(catcher.raw_message, key)
    return HttpResponse(
        raw.decode("utf-8", errors="replace"), content_type="text/plain; charset=utf-8"
    )
