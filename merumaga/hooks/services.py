"""Outgoing webhooks: an event becomes one delivery per endpoint that wants it; each is POSTed
as JSON, signed like the webhook we receive (HMAC-SHA256 over "<timestamp>.<body>", in
X-Merumaga-Timestamp and X-Merumaga-Signature), and tried again with growing waits for a day.

Endpoints are checked against server-side request forgery when registered and before every
try: an address that resolves to loopback, private, link-local or otherwise reserved space is
refused (WEBHOOKS_ALLOW_PRIVATE allows it, for a receiver on the same network)."""

import ipaddress
import json
import logging
import socket
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from merumaga.bounces.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from merumaga.hooks.models import Endpoint, WebhookDelivery

logger = logging.getLogger(__name__)

TIMEOUT = 10  # seconds for one try: a slow receiver must not hold a worker
RETRY_FOR = timedelta(days=1)
FIRST_WAIT = timedelta(minutes=1)  # then 2, 4, 8 … minutes
LONGEST_WAIT = timedelta(hours=3)
EVENT_HEADER = "X-Merumaga-Event"


class Refused(ValueError):
    """An endpoint address we will not send to; the message says why."""


def address_problem(url: str) -> str:
    """Why `url` may not receive webhooks ("" when it may): not http(s), no host, or a host
    that resolves to an address inside our own networks."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "the address must be an http:// or https:// URL with a host"
    if settings.WEBHOOKS_ALLOW_PRIVATE:
        return ""
    try:
        found = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        return f"the host does not resolve ({error})"
    for *_ignored, address in found:
        ip = ipaddress.ip_address(address[0])
        if not ip.is_global or ip.is_multicast:
            return f"{parts.hostname} resolves to {ip}, which is not a public address"
    return ""


def active_endpoints() -> list[Endpoint]:
    return list(Endpoint.objects.filter(active=True))


def emit(
    event: str, data: dict[str, Any], among: list[Endpoint] | None = None
) -> list[WebhookDelivery]:
    """Record `event` for every endpoint of `among` (by default the active ones, one query)
    that wants it; the caller sends them (hooks.tasks). A batch reads the endpoints once and
    passes them; a test event passes its one endpoint."""
    candidates = active_endpoints() if among is None else among
    endpoints = [endpoint for endpoint in candidates if endpoint.wants(event)]
    made = []
    for endpoint in endpoints:
        payload = {
            "id": str(uuid.uuid4()),
            "event": event,
            "created": timezone.now().isoformat(),
            "data": data,
        }
        made.append(WebhookDelivery.objects.create(endpoint=endpoint, event=event, payload=payload))
    return made


def deliver(delivery: WebhookDelivery) -> WebhookDelivery:
    """One try: delivered on a 2xx answer; otherwise `next_at` says when to try again (the task
    schedules it), until a day has passed since the event: then it is failed, with the last
    answer kept. An address refused as internal fails at once."""
    if delivery.status != WebhookDelivery.Status.PENDING:
        return delivery
    endpoint = delivery.endpoint
    delivery.attempts += 1
    problem = address_problem(endpoint.url)
    status, error = None, problem
    if not problem:
        status, error = _post(endpoint, delivery)
    now = timezone.now()
    delivery.last_status, delivery.last_error = status, error[:300]
    if status is not None and 200 <= status < 300:
        delivery.status = WebhookDelivery.Status.DELIVERED
        delivery.delivered_at, delivery.next_at = now, None
    else:
        wait = min(FIRST_WAIT * 2 ** (delivery.attempts - 1), LONGEST_WAIT)
        if problem or now + wait > delivery.created_at + RETRY_FOR:
            delivery.status, delivery.next_at = WebhookDelivery.Status.FAILED, None
            logger.warning("webhook %s to %s failed: %s", delivery.pk, endpoint.url, error)
        else:
            delivery.next_at = now + wait
    delivery.save()
    return delivery


def _post(endpoint: Endpoint, delivery: WebhookDelivery) -> tuple[int | None, str]:
    body = json.dumps(delivery.payload, ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        endpoint.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "merumaga-webhooks",
            EVENT_HEADER: delivery.event,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(endpoint.secret, timestamp, body),
        },
    )
    try:
        with _opener().open(request, timeout=TIMEOUT) as response:
            return response.status, ""
    except urllib.error.HTTPError as answer:
        return answer.code, f"HTTP {answer.code}"
    except (OSError, ValueError) as error:
        return None, f"{type(error).__name__}: {error}"


def _opener() -> urllib.request.OpenerDirector:
    """No redirects followed: a receiver could otherwise bounce us to an internal address."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(NoRedirect)
