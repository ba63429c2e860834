import contextvars
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from merumaga.audit import acting_as
from merumaga.team import two_factor


class AuditActorMiddleware:
    """A signed-in staff member's request is theirs in the audit log (merumaga.audit).

    Each request runs in a context of its own: an API token names its account once checked,
    deep inside the request (merumaga.api.core.TokenAuth), and that must end with the request,
    never carry over to the next one the same thread serves."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return contextvars.copy_context().run(self._as_the_user, request)

    def _as_the_user(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_staff:
            return self.get_response(request)
        with acting_as(user, "admin"):
            return self.get_response(request)


class TwoFactorMiddleware:
    """On /admin/: a staff account that has set up two-factor authentication gives a code after
    its password (once per session); one that must use it (TWO_FACTOR_REQUIRED) and has not
    sets it up first. Signing in, out and the two-factor pages themselves are left alone."""

    OPEN = (
        "/admin/login/",
        "/admin/logout/",
        "/admin/2fa/",
        "/admin/password_reset/",
        "/admin/reset/",
        "/admin/jsi18n/",
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        path = request.path_info
        if (
            user is None
            or not user.is_authenticated
            or not user.is_staff
            or not path.startswith("/admin/")
            or path.startswith(self.OPEN)
            or user.is_verified()
        ):
            return self.get_response(request)
        query = urlencode({"next": request.get_full_path()})
        if two_factor.has_set_up(user):
            return HttpResponseRedirect(f"{reverse('two_factor_verify')}?{query}")
        if two_factor.must_use(user):
            return HttpResponseRedirect(f"{reverse('two_factor_setup')}?{query}")
        return self.get_response(request)
