"""Request checks that hold for every page."""

from django.http import HttpRequest, HttpResponse

from merumaga.views import bad_request


class RejectNulMiddleware:
    """A path or query holding NUL is a 400 at once.

    No page of ours takes a NUL, and PostgreSQL refuses one in any text it is given (a slug, a
    search term, a token looked up), which would surface as a 500 from deep inside a query.
    Form fields need no such guard: Django's form CharField refuses NUL with a message.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            return bad_request(request)
        return self.get_response(request)
