import time

from django.http import HttpRequest, HttpResponse

from merumaga.operations.metrics import LATENCY, REQUESTS


class RequestMetrics:
    """Count each request and its time by view name (not by path: a path holds ids and tokens,
    and would make a series per reader)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match is not None else "unmatched"
        LATENCY.labels(view).observe(time.perf_counter() - started)
        REQUESTS.labels(view, request.method or "", str(response.status_code)).inc()
        return response
