"""/healthz and /readyz: JSON, no personal data, no session, cheap enough to poll."""

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from merumaga.operations import health, metrics
from merumaga.subscribers.views import client_ip


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers (nothing else is asked: a load balancer restarts it otherwise)."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve and send: 200 when every check passes, else 503 with each one's answer."""
    checks = health.readiness()
    ready = all(check.ok for check in checks)
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {
            check.name: {"ok": check.ok, "detail": check.detail, "ms": check.ms} for check in checks
        },
    }
    return JsonResponse(body, status=200 if ready else 503)


def _may_scrape(request: HttpRequest) -> bool:
    """With METRICS_TOKEN set, whoever sends it as a bearer token; without, only the addresses
    of METRICS_ALLOW (by default this machine)."""
    if settings.METRICS_TOKEN:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(sent.encode(), settings.METRICS_TOKEN.encode())
    try:
        # Behind a proxy, the client's address (the proxy itself is on this machine).
        address = ipaddress.ip_address(client_ip(request) or "")
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOW)


@never_cache
def prometheus(request: HttpRequest) -> HttpResponse:
    """The Prometheus text format (README: Operations)."""
    if not _may_scrape(request):
        return JsonResponse(
            {"error": {"code": "permission_denied", "message": "metrics: not from here"}},
            status=403,
        )
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)
