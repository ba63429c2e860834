import logging

from django.conf import settings
from django.db.models import CharField, TextField
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseNotFound,
    HttpResponseRedirect,
    HttpResponseServerError,
    JsonResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy
from django.views.static import serve as static_serve

logger = logging.getLogger(__name__)


def switch_language(request: HttpRequest, code: str) -> HttpResponseRedirect:
    """A plain link (no form, no CSRF token), so that public pages can be cached whole.
    It changes only the reader's own language cookie."""
    target = request.GET.get("next", "/")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = "/"
    response = HttpResponseRedirect(target)
    if code in dict(settings.LANGUAGES):
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            code,
            max_age=365 * 24 * 3600,
            samesite="Lax",
            secure=request.is_secure(),
        )
    return response


# Error pages: the site's own, with its navigation, in the reader's language. Django's own
# handlers render 400 and 500 without the request, so without the sender's name and the menu.


def bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    return _error_page(request, "errors/400.html", HttpResponseBadRequest)


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    return _error_page(request, "errors/403.html", HttpResponseForbidden)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without its cookie or from a page kept open too long: say how to go on."""
    return _error_page(request, "errors/403_csrf.html", HttpResponseForbidden)


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    return _error_page(request, "errors/404.html", HttpResponseNotFound)


def server_error(request: HttpRequest) -> HttpResponse:
    return _error_page(request, "errors/500.html", HttpResponseServerError)


# When even the error page cannot be rendered (the database is down, so the sender's identity
# cannot be read), this is all there is: no template, no query.
_LAST_RESORT = (
    '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>エラー / Error</title></head><body>"
    "<h1>ただいまページを表示できません</h1>"
    "<p>しばらくしてから、もう一度お試しください。</p>"
    '<p lang="en">This page cannot be shown right now. Please try again later.</p>'
    '<p><a href="/">トップページ / Home</a></p></body></html>'
)


# The API's clients read JSON: the same error body as its own answers (merumaga.api.core).
_API_ERRORS = {
    400: ("bad_request", gettext_lazy("リクエストの形式が正しくありません。")),
    403: ("permission_denied", gettext_lazy("この操作は許可されていません。")),
    404: ("not_found", gettext_lazy("見つかりません。")),
    500: ("server_error", gettext_lazy("サーバー側でエラーが起きました。")),
}


def _error_page(request: HttpRequest, template: str, response_class) -> HttpResponse:
    if request.path_info.startswith("/api/"):
        code, message = _API_ERRORS[response_class.status_code]
        return JsonResponse(
            {"error": {"code": code, "message": str(message)}}, status=response_class.status_code
        )
    try:
        page = render(request, template)
    except Exception:
        logger.exception("could not render %s; answered with the plain page", template)
        return response_class(_LAST_RESORT)
    return response_class(page.content)


_FAVICON = settings.BASE_DIR / "static" / "merumaga" / "favicon.ico"


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on every site whatever the page says: answer it."""
    response = HttpResponse(_FAVICON.read_bytes(), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=604800"
    return response


def media(request: HttpRequest, path: str, document_root) -> HttpResponseBase:
    """An uploaded image (covers, the logo) when no front server serves /media/. A name the
    file system refuses (too long, NUL) is a 404 like any missing file, not a server error."""
    try:
        return static_serve(request, path, document_root)
    except (OSError, ValueError):
        raise Http404 from None


def jis_check(request: HttpRequest, model) -> HttpResponse:
    """For the editor, as they type: the characters of the posted text fields of `model` that
    readers of ISO-2022-JP mail would not get as written (staff only, via admin_view)."""
    from merumaga.charset import jis_problems

    fields = [(label, request.POST.get(name, "")) for name, label in _text_field_names(model)]
    return render(request, "admin/jis_check.html", {"problems": jis_problems(fields)})


def _text_field_names(model) -> list[tuple[str, str]]:
    return [
        (field.name, str(field.verbose_name))
        for field in model._meta.get_fields()
        if isinstance(field, (CharField, TextField)) and field.editable and field.name != "slug"
    ]


def text_fields(instance) -> list[tuple[str, str]]:
    """(label, text) of each editable text field of a saved item: what its mail is made of."""
    return [
        (label, getattr(instance, name) or "") for name, label in _text_field_names(type(instance))
    ]


def warn_about_jis(request: HttpRequest, instance) -> None:
    """After a save: the characters ISO-2022-JP readers cannot receive, once more, in words."""
    from django.contrib import messages
    from django.utils.translation import gettext as _

    from merumaga.charset import jis_problems

    missing = [p for p in jis_problems(text_fields(instance)) if not p.automatic]
    if missing:
        listed = "、".join(
            f"「{p.character}」({p.where}" + (f" → {p.replacement}" if p.replacement else "") + ")"
            for p in missing
        )
        messages.warning(
            request,
            _(
                "ISO-2022-JP の読者に送れない文字があります (その読者には UTF-8 で送ります): "
                "%(characters)s"
            )
            % {"characters": listed},
        )


def locked_out(request: HttpRequest, credentials: dict | None = None, *args, **kwargs):
    """The page django-axes shows after too many wrong passwords (AXES_LOCKOUT_CALLABLE): what
    happened and how long to wait, in words; 429, as the throttling it is."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes}
    return render(request, "admin/locked_out.html", context, status=429)
