"""Webhooks feeding the bounce pipeline: Amazon SES through SNS, and a generic signed JSON one.

The views only authenticate and read; what a bounce, complaint or unsubscribe changes is decided by
services.receive_verdict, exactly as for a bounce that came back by mail. A request that fails
authentication or validation changes nothing at all.
"""

import hashlib
import hmac
import json
import logging
import re
import time
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from merumaga.bounces import services, sns
from merumaga.bounces.classify import Recipient, Verdict, token_ids
from merumaga.bounces.models import Kind, Source
from merumaga.subscribers.models import Subscriber, Topic, address_hash
from merumaga.subscribers.services import InvalidInput, normalise_email
from merumaga.subscribers.views import client_ip

logger = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
MAX_EVENTS = 1000
SIGNATURE_TOLERANCE = 5 * 60  # seconds either way: replays expire, small clock skew is fine
TIMESTAMP_HEADER = "X-Merumaga-Timestamp"
SIGNATURE_HEADER = "X-Merumaga-Signature"
SIGNATURE_PREFIX = "sha256="
WEBHOOK_TYPES = (Kind.HARD, Kind.SOFT, Kind.COMPLAINT, Kind.UNSUBSCRIBE)
EVENT_ID_MAX = 150  # the dedupe key ("id:webhook:" + id) must stay whole within 200 characters
STATUS_MAX = 12

SES_BOUNCE_KINDS = {"Permanent": Kind.HARD, "Transient": Kind.SOFT, "Undetermined": Kind.SOFT}
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def _text(status: int, text: str) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def _read_body(request: HttpRequest) -> bytes | None:
    """The body, or None when it is larger than MAX_BODY (checked before reading when we can)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY:
        return None
    body = request.body
    return body if len(body) <= MAX_BODY else None


# Amazon SES, through SNS.


@csrf_exempt  # SNS posts without cookies; the message signature is the authentication.
def ses(request: HttpRequest) -> HttpResponse:
    if not settings.SES_TOPIC_ARNS:
        return _text(404, "Not found")
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    body = _read_body(request)
    if body is None:
        return _text(413, "Request too large")
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" a million deep
        message = None
    if not isinstance(message, dict):
        logger.warning("SES webhook: refused a post from %s: not JSON", client_ip(request))
        return _text(400, "Not a JSON object")
    try:
        sns.verify(message)
    except sns.InvalidMessage as error:
        logger.warning("SES webhook: refused a post from %s: %s", client_ip(request), error)
        return _text(403, f"Refused: {error}")
    except sns.Unreachable as error:
        # Not the sender's fault: a 5xx makes SNS deliver again later.
        logger.error("SES webhook: could not fetch the SNS signing certificate: %s", error)
        return _text(503, "Signing certificate unavailable; try again later")

    if message["Type"] == sns.SUBSCRIPTION_CONFIRMATION:
        return _confirm_subscription(message)
    if message["Type"] == sns.UNSUBSCRIBE_CONFIRMATION:
        # Warned, not just noted: from now on SES bounces no longer reach us.
        logger.warning("SES webhook: SNS topic %s unsubscribed this endpoint", message["TopicArn"])
        return _text(200, "OK")
    verdict = ses_verdict(message)
    if verdict is None:
        return _text(200, "Ignored")
    services.receive_verdict(raw=body, source=Source.SES, verdict=verdict)
    return _text(200, "OK")


def _confirm_subscription(message: dict) -> HttpResponse:
    url = message["SubscribeURL"]
    try:
        sns.confirm_subscription(url)
    except sns.Unreachable as error:
        # The URL lets the operator confirm by hand (SNS also resends the request).
        logger.error(
            "SES webhook: could not confirm the subscription to %s (%s); visit %s to confirm it",
            message["TopicArn"],
            error,
            url,
        )
        return _text(502, "Could not confirm the subscription; try again later")
    logger.info("SES webhook: confirmed the SNS subscription to %s", message["TopicArn"])
    return _text(200, "Subscription confirmed")


def ses_verdict(message: dict) -> Verdict | None:
    """The verdict on a verified SNS notification from SES; None for what is no bounce or
    complaint (deliveries, opens, clicks, SES's own set-up notice), which is not kept."""
    message_id = message["MessageId"]
    try:
        payload = json.loads(message["Message"])
    except (ValueError, RecursionError):
        payload = None
    if not isinstance(payload, dict):
        # Signed by AWS for our topic, yet not SES's JSON (a test message from the SNS console):
        # kept as unrecognised, so that the operator can see it arrived.
        return Verdict(kind=Kind.UNRECOGNISED, rule="ses:not-json", message_id=message_id)
    event = payload.get("notificationType") or payload.get("eventType")
    if not isinstance(event, str) or not event:
        return Verdict(kind=Kind.UNRECOGNISED, rule="ses:no-type", message_id=message_id)
    if event not in ("Bounce", "Complaint"):
        logger.info("SES webhook: %s notification %s ignored", event, message_id)
        return None
    mail = _object(payload.get("mail"))
    common = _object(mail.get("commonHeaders"))
    mailing_id, subscriber_id = _ses_token_ids(mail)
    common_fields = {
        "message_id": message_id,
        "mailing_id": mailing_id,
        "subscriber_id": subscriber_id,
        "subject": _string(common.get("subject")),
    }
    if event == "Bounce":
        bounce = _object(payload.get("bounce"))
        bounce_type = _string(bounce.get("bounceType"))
        kind = SES_BOUNCE_KINDS.get(bounce_type)
        if kind is None:
            return Verdict(kind=Kind.UNRECOGNISED, rule="ses:bounce:unknown-type", **common_fields)
        rule = f"ses:bounce:{bounce_type}:{_string(bounce.get('bounceSubType')) or 'unspecified'}"
        recipients = _ses_recipients(bounce.get("bouncedRecipients"), kind)
    else:
        complaint = _object(payload.get("complaint"))
        kind = Kind.COMPLAINT
        rule = f"ses:complaint:{_string(complaint.get('complaintFeedbackType')) or 'unspecified'}"
        recipients = _ses_recipients(complaint.get("complainedRecipients"), kind)
    return Verdict(kind=kind, rule=rule, recipients=recipients, **common_fields)


def _object(value) -> dict:
    return value if isinstance(value, dict) else {}


def _string(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def _ses_recipients(items, kind: str) -> tuple[Recipient, ...]:
    recipients = []
    for item in items if isinstance(items, list) else ():
        item = _object(item)
        # Usually a bare address; parseaddr also copes with "Name <address>".
        address = parseaddr(_string(item.get("emailAddress")))[1].strip().lower()
        if address:
            recipients.append(
                Recipient(
                    address=address,
                    kind=kind,
                    status=_string(item.get("status")),
                    diagnostic=_string(item.get("diagnosticCode")),
                )
            )
    return tuple(recipients)


def _ses_token_ids(mail: dict) -> tuple[int | None, int | None]:
    """(mailing_id, subscriber_id) from our signed tokens in the original's envelope and headers
    (present when the SES identity includes original headers). A forged token is ignored."""
    headers: dict[str, list[str]] = {}
    raw_headers = mail.get("headers")
    for header in raw_headers if isinstance(raw_headers, list) else ():
        header = _object(header)
        name, value = _string(header.get("name")).lower(), header.get("value")
        if name and isinstance(value, str):
            headers.setdefault(name, []).append(value)
    common = _object(mail.get("commonHeaders"))
    envelope = [
        *headers.get("return-path", []),
        _string(common.get("returnPath")),
        _string(mail.get("source")),
    ]
    mailing_id, subscriber_id = token_ids(envelope)
    if subscriber_id is None:
        mailing_id, subscriber_id = token_ids(headers.get("list-unsubscribe", []))
    return mailing_id, subscriber_id


# The generic JSON webhook.


@csrf_exempt  # posted by a relay or ESP; the HMAC signature is the authentication.
def webhook(request: HttpRequest) -> HttpResponse:
    secret = settings.BOUNCE_WEBHOOK_SECRET
    if not secret:
        return JsonResponse({"error": "not found"}, status=404)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    body = _read_body(request)
    if body is None:
        return JsonResponse({"error": f"larger than {MAX_BODY} bytes"}, status=413)
    problem = signature_problem(
        secret,
        request.headers.get(TIMESTAMP_HEADER, ""),
        request.headers.get(SIGNATURE_HEADER, ""),
        body,
    )
    if problem:
        logger.warning("bounce webhook: refused a post from %s: %s", client_ip(request), problem)
        return JsonResponse({"error": problem}, status=403)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list):
        return JsonResponse({"error": 'expected a JSON object {"events": [...]}'}, status=400)
    if len(events) > MAX_EVENTS:
        return JsonResponse({"error": f"more than {MAX_EVENTS} events"}, status=413)
    verdicts, errors = read_events(events)
    if errors:
        logger.warning(
            "bounce webhook: refused %d invalid event(s) of %d", len(errors), len(events)
        )
        return JsonResponse(
            {"error": "invalid events; none of the events was accepted", "events": errors},
            status=400,
        )
    # No transaction around the loop: each event is kept under its own id, so a resend after a
    # failure halfway acts on the rest and counts the ones already done.
    for raw, verdict in verdicts:
        services.receive_verdict(raw=raw, source=Source.WEBHOOK, verdict=verdict)
    return JsonResponse({"accepted": len(verdicts)})


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for `body` sent at `timestamp` (unix seconds, as text)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def signature_problem(
    secret: str, timestamp: str, signature: str, body: bytes, now: float | None = None
) -> str:
    """Why the request's signature is not acceptable; "" when it is."""
    timestamp = timestamp.strip()
    if not _TIMESTAMP.fullmatch(timestamp):
        return f"missing or malformed {TIMESTAMP_HEADER}"
    if abs((time.time() if now is None else now) - int(timestamp)) > SIGNATURE_TOLERANCE:
        return f"{TIMESTAMP_HEADER} is more than 5 minutes away from our clock"
    signature = signature.strip()
    if not signature.startswith(SIGNATURE_PREFIX):
        return f"missing or malformed {SIGNATURE_HEADER}"
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.lower().encode("utf-8", "replace")):
        return "bad signature"
    return ""


def read_events(events: list) -> tuple[list[tuple[bytes, Verdict]], list[dict]]:
    """(raw, verdict) for each event, or the errors of each bad one by index (then no verdicts:
    a request is acted on whole or not at all)."""
    topics = dict(Topic.objects.values_list("key", "pk"))
    checked, errors = [], []
    for index, event in enumerate(events):
        reasons, fields = _check_event(event, topics)
        if reasons:
            errors.append({"index": index, "errors": reasons})
        else:
            checked.append((event, fields))
    if errors:
        return [], errors
    readers = dict(
        Subscriber.objects.filter(
            address_hash__in=[
                address_hash(fields["address"])
                for _event, fields in checked
                if fields["type"] == Kind.UNSUBSCRIBE
            ]
        ).values_list("address_hash", "pk")
    )
    verdicts = []
    for event, fields in checked:
        kind, address = fields["type"], fields["address"]
        subscriber_id = topic_id = None
        if kind == Kind.UNSUBSCRIBE:
            # An unknown reader is still recorded (as such) by the service.
            subscriber_id = readers.get(address_hash(address))
            topic_id = topics.get(fields["topic"]) if fields["topic"] else None
        verdict = Verdict(
            kind=kind,
            rule=f"webhook:{kind}",
            recipients=(Recipient(address, kind, fields["status"], fields["diagnostic"]),),
            message_id=f"webhook:{fields['id']}",
            subscriber_id=subscriber_id,
            topic_id=topic_id,
        )
        raw = json.dumps(event, ensure_ascii=False, sort_keys=True).encode()
        verdicts.append((raw, verdict))
    return verdicts, []


def _check_event(event, topics: dict[str, int]) -> tuple[list[str], dict[str, Any]]:
    """(reasons it is bad, its cleaned fields)."""
    if not isinstance(event, dict):
        return ["not a JSON object"], {}
    reasons: list[str] = []
    # Strings, but "type" as the event gave it (checked, not converted) and "topic" maybe None.
    fields: dict[str, Any] = {}
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id.strip():
        reasons.append("id: required, a non-empty string")
    elif len(event_id.strip()) > EVENT_ID_MAX:
        reasons.append(f"id: at most {EVENT_ID_MAX} characters")
    else:
        fields["id"] = event_id.strip()
    kind = event.get("type")
    if kind not in WEBHOOK_TYPES:
        reasons.append(f"type: one of {', '.join(WEBHOOK_TYPES)}")
    fields["type"] = kind
    address = event.get("address")
    try:
        if not isinstance(address, str):
            raise InvalidInput
        # As stored for readers, so that the lookup by hash finds them.
        fields["address"] = normalise_email(address)
    except InvalidInput:
        reasons.append("address: required, a valid email address")
    for name, limit in (("status", STATUS_MAX), ("diagnostic", None)):
        value = event.get(name)
        if value is None:
            fields[name] = ""
        elif not isinstance(value, str):
            reasons.append(f"{name}: a string")
        elif limit and len(value.strip()) > limit:
            reasons.append(f"{name}: at most {limit} characters (e.g. 5.1.1)")
        else:
            fields[name] = value.strip()
    topic = event.get("topic")
    fields["topic"] = None
    if topic is not None:
        if kind != Kind.UNSUBSCRIBE:
            reasons.append("topic: only for type unsubscribe")
        elif not isinstance(topic, str) or topic not in topics:
            reasons.append(f"topic: unknown; one of {', '.join(sorted(topics))}")
        else:
            fields["topic"] = topic
    return reasons, fields
