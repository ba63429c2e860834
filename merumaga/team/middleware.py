from django.http import HttpRequest, HttpResponse

from merumaga.audit import acting_as


class AuditActorMiddleware:
    """A signed-in staff member's request is theirs in the audit log (merumaga.audit)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_staff:
            return self.get_response(request)
        with acting_as(user, "admin"):
            return self.get_response(request)
