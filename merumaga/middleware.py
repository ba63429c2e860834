"""Request checks that hold for every page."""

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
