import logging

from django.conf import settings
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseNotFound,
    HttpResponseRedirect,
    HttpResponseServerError,
)
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

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


def _error_page(request: HttpRequest, template: str, response_class) -> HttpResponse:
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
