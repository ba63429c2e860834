"""Request checks that hold for every page."""

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from merumaga.views import bad_request


class RejectNulMiddleware:
    """A path, query, cookie or header holding NUL is a 400 at once.

    No page of ours takes a NUL, and PostgreSQL refuses one in any text it is given (a slug, a
    search term, a token or session key looked up, a user agent stored with a consent record),
    which would surface as a 500 from deep inside a query. Form fields need no such guard:
    Django's form CharField refuses NUL with a message.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        headers = (value for name, value in request.META.items() if name.startswith("HTTP_"))
        if (
            "\x00" in request.path
            or any("\x00" in str(value) for value in headers)
            # A quoted cookie may spell NUL as \000: only the parsed value shows it.
            or any("\x00" in name + value for name, value in request.COOKIES.items())
            or any(
                "\x00" in key or any("\x00" in value for value in values)
                for key, values in request.GET.lists()
            )
        ):
            return bad_request(request)
        return self.get_response(request)


class ContentSecurityPolicy(CSPMiddleware):
    """django-csp's header, with the admin's own policy on /admin/ (settings.ADMIN_CSP).

    The public site runs no script and keeps its styles in site.css: its policy is strict. The
    admin's theme runs Alpine.js, whose expressions need 'unsafe-eval', and styles elements
    inline; our own inline scripts there carry the request's nonce, and nothing is loaded from
    elsewhere. A response that sets its own policy (a mail's HTML in a sandboxed frame) keeps it.
    """

    def get_policy_parts(self, request, response, report_only=False):
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only and request.path_info.startswith("/admin/"):
            parts.replace = {**settings.ADMIN_CSP, **(parts.replace or {})}
        return parts
