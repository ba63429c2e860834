"""The SES (SNS) and generic JSON webhooks: authentication first, then the bounce pipeline."""

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from merumaga.bounces import sns, webhooks
from merumaga.bounces.models import BounceEvent, BounceScore, InboundMessage
from merumaga.mailings.models import Mailing
from merumaga.subscribers.models import Subscription, Suppression, Topic, address_hash
from merumaga.subscribers.tokens import address_token
from merumaga.testing import ALL_TOPICS, make_subscriber, subscribed_keys

Outcome = BounceEvent.Outcome
TOPIC_ARN = "arn:aws:sns:ap-northeast-1:123456789012:merumaga-ses"
CERT_URL = "https://sns.ap-northeast-1.amazonaws.com/SimpleNotificationService-0123456789.pem"
SUBSCRIBE_URL = (
    "https://sns.ap-northeast-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC_ARN}&Token=2336412f37"
)
SES_URL = "/bounces/ses/"
WEBHOOK_URL = "/bounces/webhook/"
SECRET = "whsec-test-0123456789abcdef"


# SNS: a key and a self-signed certificate standing in for AWS's.


@pytest.fixture(scope="module")
def signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def certificate_pem(signing_key) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(signing_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(signing_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def fetched(settings, monkeypatch, certificate_pem) -> list[str]:
    """SES enabled for TOPIC_ARN; the URLs the certificate was fetched from."""
    settings.SES_TOPIC_ARNS = [TOPIC_ARN]
    urls = []

    def fetch(url):
        urls.append(url)
        return certificate_pem

    monkeypatch.setattr(sns, "fetch_certificate", fetch)
    return urls


@pytest.fixture
def confirmed(monkeypatch) -> list[str]:
    urls = []
    monkeypatch.setattr(sns, "confirm_subscription", urls.append)
    return urls


@pytest.fixture
def sign_sns(signing_key):
    def sign(message: dict, version: str = "1") -> dict:
        message = {**message, "SignatureVersion": version}
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = signing_key.sign(sns.string_to_sign(message), padding.PKCS1v15(), algorithm)
        message["Signature"] = base64.b64encode(signature).decode()
        return message

    return sign


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def notification(payload, *, message_id=None, timestamp=None, **fields) -> dict:
    return {
        "Type": "Notification",
        "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": TOPIC_ARN,
        "Message": payload if isinstance(payload, str) else json.dumps(payload),
        "Timestamp": iso(timestamp or datetime.now(UTC)),
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": SUBSCRIBE_URL.replace("ConfirmSubscription", "Unsubscribe"),
        **fields,
    }


def ses_mail(headers=(), source="no-reply@example.jp") -> dict:
    return {
        "timestamp": "2025-11-29T10:00:00.000Z",
        "source": source,
        "messageId": "0106019abcdef-ses",
        "destination": ["reader@example.jp"],
        "headers": [{"name": name, "value": value} for name, value in headers],
        "commonHeaders": {"subject": "研究所ニュース 第12号"},
    }


def ses_bounce(address="reader@example.jp", bounce_type="Permanent", sub_type="General", **mail):
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": sub_type,
            "bouncedRecipients": [
                {
                    "emailAddress": address,
                    "action": "failed",
                    "status": "5.1.1" if bounce_type == "Permanent" else "4.2.2",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": "2025-11-29T10:00:01.000Z",
            "feedbackId": "0106019abcdef-feedback",
        },
        "mail": ses_mail(**mail),
    }


def ses_complaint(address="reader@example.jp", feedback_type="abuse"):
    complaint = {
        "complainedRecipients": [{"emailAddress": address}],
        "timestamp": "2025-11-29T10:00:01.000Z",
        "feedbackId": "0106019abcdef-feedback",
    }
    if feedback_type:
        complaint["complaintFeedbackType"] = feedback_type
    return {"notificationType": "Complaint", "complaint": complaint, "mail": ses_mail()}


def post_sns(client, message: dict):
    return client.post(SES_URL, json.dumps(message), content_type="text/plain; charset=UTF-8")


def is_suppressed(email: str) -> bool:
    return Suppression.objects.filter(address_hash=address_hash(email)).exists()


def nothing_stored() -> bool:
    return not InboundMessage.objects.exists() and not BounceEvent.objects.exists()


@pytest.mark.django_db
def test_a_permanent_ses_bounce_suppresses_the_reader(client, fetched, sign_sns):
    reader = make_subscriber("reader@example.jp")
    message = sign_sns(notification(ses_bounce(), Subject="Amazon SES Email Event Notification"))

    response = post_sns(client, message)

    assert response.status_code == 200
    assert is_suppressed("reader@example.jp")
    event = BounceEvent.objects.get()
    assert event.source == "ses" and event.kind == "hard" and event.subscriber == reader
    assert event.outcome == Outcome.SUPPRESSED and event.status == "5.1.1"
    assert event.rule == "ses:bounce:Permanent:General"
    inbound = InboundMessage.objects.get()
    assert inbound.source == "ses" and inbound.dedupe_key.startswith("ses:")
    assert inbound.subject == "研究所ニュース 第12号"
    assert json.loads(bytes(inbound.raw)) == message
    assert fetched == [CERT_URL]


@pytest.mark.django_db
def test_a_transient_ses_bounce_is_scored_not_suppressed(client, fetched, sign_sns):
    reader = make_subscriber("reader@example.jp")
    payload = ses_bounce(bounce_type="Transient", sub_type="MailboxFull")

    assert post_sns(client, sign_sns(notification(payload))).status_code == 200

    event = BounceEvent.objects.get()
    assert event.kind == "soft" and event.outcome == Outcome.SCORED
    assert event.rule == "ses:bounce:Transient:MailboxFull" and event.status == "4.2.2"
    assert BounceScore.objects.get(subscriber=reader).score == 0.5
    assert not is_suppressed("reader@example.jp")


@pytest.mark.django_db
def test_an_undetermined_ses_bounce_is_soft(client, fetched, sign_sns):
    make_subscriber("reader@example.jp")
    payload = ses_bounce(bounce_type="Undetermined", sub_type="Undetermined")
    post_sns(client, sign_sns(notification(payload)))
    assert BounceEvent.objects.get().kind == "soft"


@pytest.mark.django_db
def test_an_ses_complaint_suppresses_and_unsubscribes_from_everything(client, fetched, sign_sns):
    reader = make_subscriber("reader@example.jp")

    assert post_sns(client, sign_sns(notification(ses_complaint()))).status_code == 200

    assert is_suppressed("reader@example.jp")
    assert subscribed_keys(reader) == set()
    reader.refresh_from_db()
    assert reader.status == "unsubscribed"
    event = BounceEvent.objects.get()
    assert event.kind == "complaint" and event.rule == "ses:complaint:abuse"


@pytest.mark.django_db
def test_an_ses_complaint_without_feedback_type_is_unspecified(client, fetched, sign_sns):
    make_subscriber("reader@example.jp")
    post_sns(client, sign_sns(notification(ses_complaint(feedback_type=None))))
    assert BounceEvent.objects.get().rule == "ses:complaint:unspecified"


@pytest.mark.django_db
def test_the_same_sns_message_twice_is_acted_on_once(client, fetched, sign_sns, settings):
    settings.BOUNCE_SCORE_LIMIT = 10
    reader = make_subscriber("reader@example.jp")
    message = sign_sns(notification(ses_bounce(bounce_type="Transient")))

    assert post_sns(client, message).status_code == 200
    assert post_sns(client, message).status_code == 200

    assert InboundMessage.objects.get().times_received == 2
    assert BounceEvent.objects.count() == 1
    assert BounceScore.objects.get(subscriber=reader).score == 0.5
    # Cached for the day: one fetch for both.
    assert fetched == [CERT_URL]


@pytest.mark.django_db
def test_signature_version_2_is_accepted(client, fetched, sign_sns):
    make_subscriber("reader@example.jp")
    response = post_sns(client, sign_sns(notification(ses_bounce()), version="2"))
    assert response.status_code == 200
    assert is_suppressed("reader@example.jp")


@pytest.mark.django_db
def test_a_forged_signature_is_refused_and_nothing_stored(client, fetched, sign_sns):
    make_subscriber("reader@example.jp")
    message = sign_sns(notification(ses_bounce()))
    message["Message"] = message["Message"].replace("reader@", "readex@")

    response = post_sns(client, message)

    assert response.status_code == 403 and b"bad signature" in response.content
    assert nothing_stored() and not is_suppressed("reader@example.jp")


@pytest.mark.django_db
def test_a_version_1_signature_does_not_pass_as_version_2(client, fetched, sign_sns):
    message = sign_sns(notification(ses_bounce()), version="1")
    message["SignatureVersion"] = "2"
    assert post_sns(client, message).status_code == 403
    assert nothing_stored()


@pytest.mark.django_db
def test_an_unknown_topic_is_refused_without_fetching(client, fetched, sign_sns):
    make_subscriber("reader@example.jp")
    other = TOPIC_ARN.replace("merumaga-ses", "someone-else")
    message = sign_sns(notification(ses_bounce(), TopicArn=other))

    response = post_sns(client, message)

    assert response.status_code == 403 and b"unknown topic" in response.content
    assert nothing_stored() and fetched == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "https://sns.ap-northeast-1.evil.example/cert.pem",
        "https://evil.example/sns.ap-northeast-1.amazonaws.com.pem",
        "https://sns.ap-northeast-1.amazonaws.com.evil.example/cert.pem",
        "https://sns.ap-northeast-1.amazonaws.com@evil.example/cert.pem",
        "http://sns.ap-northeast-1.amazonaws.com/cert.pem",
        "https://sns.ap-northeast-1.amazonaws.com/cert.txt",
        "https://sns.ap-northeast-1.amazonaws.com:8443/cert.pem",
        # An S3 bucket named "sns" answers on these hosts; anyone may own it.
        "https://sns.s3.amazonaws.com/SimpleNotificationService-0123456789.pem",
        "https://sns.s3-ap-southeast-2.amazonaws.com/SimpleNotificationService-0123456789.pem",
        "file:///etc/ssl/cert.pem",
    ],
)
def test_a_certificate_url_off_sns_is_refused_without_fetching(client, fetched, sign_sns, url):
    message = sign_sns(notification(ses_bounce(), SigningCertURL=url))

    response = post_sns(client, message)

    assert response.status_code == 403 and b"certificate URL" in response.content
    assert fetched == [] and nothing_stored()


def test_sns_hosts_in_china_and_elsewhere_are_accepted():
    pem = "SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
    assert sns.is_sns_url(f"https://sns.cn-north-1.amazonaws.com.cn/{pem}", certificate=True)
    assert sns.is_sns_url(f"https://sns.us-gov-west-1.amazonaws.com/{pem}", certificate=True)
    assert not sns.is_sns_url("https://sns.us-east-1.amazonaws.com/x.pem", certificate=True)
    assert not sns.is_sns_url("https://sns.us-east-1.amazonaws.com/", certificate=True)
    assert sns.is_sns_url("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription")


@pytest.mark.django_db
@pytest.mark.parametrize("age", [timedelta(hours=1, minutes=1), timedelta(days=-2)])
def test_a_stale_or_future_timestamp_is_refused(client, fetched, sign_sns, age, time_machine):
    time_machine.move_to(datetime(2026, 12, 7, 0, 0, 0, tzinfo=UTC), tick=False)
    make_subscriber("reader@example.jp")
    message = sign_sns(notification(ses_bounce(), timestamp=datetime.now(UTC) - age))

    response = post_sns(client, message)

    assert response.status_code == 403 and b"timestamp" in response.content
    assert nothing_stored() and fetched == []


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_refused(client, fetched):
    response = client.post(SES_URL, "Type=Notification", content_type="text/plain")
    assert response.status_code == 400 and nothing_stored()


@pytest.mark.django_db
def test_a_message_without_signature_fields_is_refused(client, fetched):
    response = post_sns(client, notification(ses_bounce()))
    assert response.status_code == 403 and nothing_stored() and fetched == []


@pytest.mark.django_db
def test_an_unreadable_certificate_is_refused_and_not_cached(
    client, fetched, sign_sns, monkeypatch
):
    monkeypatch.setattr(sns, "fetch_certificate", lambda url: fetched.append(url) or b"junk")
    message = sign_sns(notification(ses_bounce()))
    assert post_sns(client, message).status_code == 403
    assert post_sns(client, message).status_code == 403
    assert fetched == [CERT_URL, CERT_URL] and nothing_stored()


@pytest.mark.django_db
def test_an_unreachable_certificate_asks_sns_to_retry(client, fetched, sign_sns, monkeypatch):
    def unreachable(url):
        raise sns.Unreachable("timed out")

    monkeypatch.setattr(sns, "fetch_certificate", unreachable)
    assert post_sns(client, sign_sns(notification(ses_bounce()))).status_code == 503
    assert nothing_stored()


@pytest.mark.django_db
def test_the_ses_endpoint_is_off_without_topics(client, settings):
    settings.SES_TOPIC_ARNS = []
    assert client.post(SES_URL, "{}", content_type="text/plain").status_code == 404


@pytest.mark.django_db
def test_a_subscription_confirmation_is_confirmed_once(client, fetched, confirmed, sign_sns):
    message = sign_sns(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": "2336412f37",
            "TopicArn": TOPIC_ARN,
            "Message": f"You have chosen to subscribe to the topic {TOPIC_ARN}.",
            "SubscribeURL": SUBSCRIBE_URL,
            "Timestamp": iso(datetime.now(UTC)),
            "SigningCertURL": CERT_URL,
        }
    )

    response = post_sns(client, message)

    assert response.status_code == 200
    assert confirmed == [SUBSCRIBE_URL]
    assert nothing_stored()


@pytest.mark.django_db
def test_a_subscription_confirmation_elsewhere_is_not_visited(client, fetched, confirmed, sign_sns):
    message = sign_sns(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": "2336412f37",
            "TopicArn": TOPIC_ARN,
            "Message": "Subscribe",
            "SubscribeURL": "https://evil.example/?Action=ConfirmSubscription",
            "Timestamp": iso(datetime.now(UTC)),
            "SigningCertURL": CERT_URL,
        }
    )
    assert post_sns(client, message).status_code == 403
    assert confirmed == [] and fetched == []


@pytest.mark.django_db
def test_a_delivery_notification_is_answered_and_not_kept(client, fetched, sign_sns):
    payload = {"notificationType": "Delivery", "mail": ses_mail(), "delivery": {}}
    assert post_sns(client, sign_sns(notification(payload))).status_code == 200
    payload = {"eventType": "Open", "mail": ses_mail(), "open": {}}
    assert post_sns(client, sign_sns(notification(payload))).status_code == 200
    assert nothing_stored()


@pytest.mark.django_db
def test_event_publishing_bounces_are_read_too(client, fetched, sign_sns):
    make_subscriber("reader@example.jp")
    payload = ses_bounce()
    payload["eventType"] = payload.pop("notificationType")
    assert post_sns(client, sign_sns(notification(payload))).status_code == 200
    assert is_suppressed("reader@example.jp")


@pytest.mark.django_db
def test_a_signed_message_that_is_not_ses_json_is_kept_as_unrecognised(client, fetched, sign_sns):
    assert post_sns(client, sign_sns(notification("hello from the console"))).status_code == 200
    inbound = InboundMessage.objects.get()
    assert inbound.kind == "unrecognised" and inbound.rule == "ses:not-json"
    assert not BounceEvent.objects.exists()


@pytest.mark.django_db
def test_ses_verp_token_names_the_mailing_and_reader(client, fetched, sign_sns):
    reader = make_subscriber("reader@example.jp")
    mailing = Mailing.objects.create(
        kind=Mailing.Kind.CUSTOM, topic=Topic.objects.get(key="weekly"), subject="お知らせ"
    )
    verp = f"bounce+{address_token('bounce', mailing.pk, reader.pk)}@bounce.example.jp"
    # The provider reports a forwarding address: the token still names the reader.
    payload = ses_bounce(address="forwarded@elsewhere.example", source=verp)

    assert post_sns(client, sign_sns(notification(payload))).status_code == 200

    event = BounceEvent.objects.get()
    assert event.subscriber == reader and event.mailing == mailing
    assert is_suppressed("reader@example.jp")


@pytest.mark.django_db
def test_ses_list_unsubscribe_token_names_the_reader(client, fetched, sign_sns):
    reader = make_subscriber("reader@example.jp")
    weekly = Topic.objects.get(key="weekly")
    mailto = f"unsubscribe+{address_token('unsubscribe', reader.pk, weekly.pk)}@bounce.example.jp"
    headers = [("List-Unsubscribe", f"<https://example.jp/u/x/>, <mailto:{mailto}>")]
    payload = ses_bounce(address="forwarded@elsewhere.example", headers=headers)

    post_sns(client, sign_sns(notification(payload)))

    assert BounceEvent.objects.get().subscriber == reader


@pytest.mark.django_db
def test_ses_forged_tokens_are_ignored(client, fetched, sign_sns):
    reader = make_subscriber("reader@example.jp")
    victim_id = make_subscriber("victim@example.jp").pk
    forged_verp = f"bounce+1-{victim_id}-0123456789abcdef@bounce.example.jp"
    forged_mailto = f"unsubscribe+{victim_id}-1-0123456789abcdef@bounce.example.jp"
    headers = [
        ("Return-Path", f"<{forged_verp}>"),
        ("List-Unsubscribe", f"<mailto:{forged_mailto}>"),
    ]
    payload = ses_bounce(headers=headers, source=forged_verp)

    post_sns(client, sign_sns(notification(payload)))

    assert BounceEvent.objects.get().subscriber == reader
    assert not is_suppressed("victim@example.jp")


# The generic JSON webhook.


@pytest.fixture
def webhook_on(settings):
    settings.BOUNCE_WEBHOOK_SECRET = SECRET


def post_events(client, events, *, secret=SECRET, timestamp=None, body=None):
    body = body if body is not None else json.dumps({"events": events}).encode()
    stamp = str(int(time.time() if timestamp is None else timestamp))
    return client.post(
        WEBHOOK_URL,
        body,
        content_type="application/json",
        headers={
            "X-Merumaga-Timestamp": stamp,
            "X-Merumaga-Signature": webhooks.sign(secret, stamp, body),
        },
    )


def event(kind="hard", address="reader@example.jp", **fields):
    return {"id": fields.pop("id", str(uuid.uuid4())), "type": kind, "address": address, **fields}


@pytest.mark.django_db
def test_signed_webhook_events_are_acted_on(client, webhook_on):
    reader = make_subscriber("reader@example.jp")
    complainer = make_subscriber("angry@example.jp")
    events = [
        event("hard", "Reader@Example.JP", status="5.1.1", diagnostic="550 user unknown"),
        event("complaint", "angry@example.jp"),
    ]

    response = post_events(client, events)

    assert response.status_code == 200 and response.json() == {"accepted": 2}
    assert is_suppressed("reader@example.jp") and is_suppressed("angry@example.jp")
    hard = BounceEvent.objects.get(subscriber=reader)
    assert hard.source == "webhook" and hard.kind == "hard" and hard.status == "5.1.1"
    assert hard.rule == "webhook:hard" and hard.diagnostic == "550 user unknown"
    assert subscribed_keys(complainer) == set()
    inbound = InboundMessage.objects.get(subscriber=reader)
    assert inbound.dedupe_key.startswith("webhook:")
    assert json.loads(bytes(inbound.raw)) == events[0]


@pytest.mark.django_db
def test_a_soft_webhook_event_is_scored(client, webhook_on):
    reader = make_subscriber("reader@example.jp")
    assert post_events(client, [event("soft", status="4.2.2")]).status_code == 200
    assert BounceEvent.objects.get().outcome == Outcome.SCORED
    assert BounceScore.objects.get(subscriber=reader).score == 0.5


@pytest.mark.django_db
def test_a_wrong_secret_is_refused(client, webhook_on):
    make_subscriber("reader@example.jp")
    response = post_events(client, [event()], secret="not-the-secret")
    assert response.status_code == 403
    assert nothing_stored() and not is_suppressed("reader@example.jp")


@pytest.mark.django_db
def test_a_tampered_body_is_refused(client, webhook_on):
    make_subscriber("reader@example.jp")
    body = json.dumps({"events": [event()]}).encode()
    stamp = str(int(time.time()))
    response = client.post(
        WEBHOOK_URL,
        body.replace(b"hard", b"soft"),
        content_type="application/json",
        headers={
            "X-Merumaga-Timestamp": stamp,
            "X-Merumaga-Signature": webhooks.sign(SECRET, stamp, body),
        },
    )
    assert response.status_code == 403 and nothing_stored()


@pytest.mark.django_db
def test_missing_signature_headers_are_refused(client, webhook_on):
    body = json.dumps({"events": [event()]})
    response = client.post(WEBHOOK_URL, body, content_type="application/json")
    assert response.status_code == 403 and nothing_stored()


@pytest.mark.django_db
@pytest.mark.parametrize("offset", [-301, 301])
def test_a_timestamp_more_than_five_minutes_off_is_refused(
    client, webhook_on, offset, time_machine
):
    # The clock stands still: the request cannot take a second off the offset on a slow run.
    time_machine.move_to(datetime(2026, 12, 7, 0, 0, 0, tzinfo=UTC), tick=False)
    make_subscriber("reader@example.jp")
    response = post_events(client, [event()], timestamp=time.time() + offset)
    assert response.status_code == 403 and "5 minutes" in response.json()["error"]
    assert nothing_stored()


@pytest.mark.django_db
@pytest.mark.parametrize("offset", [-300, 300])
def test_a_timestamp_five_minutes_off_is_still_accepted(client, webhook_on, offset, time_machine):
    time_machine.move_to(datetime(2026, 12, 7, 0, 0, 0, tzinfo=UTC), tick=False)
    make_subscriber("reader@example.jp")
    assert post_events(client, [event()], timestamp=time.time() + offset).status_code == 200


@pytest.mark.django_db
def test_one_bad_event_refuses_the_whole_request(client, webhook_on):
    reader = make_subscriber("reader@example.jp")
    events = [
        event("hard"),
        event("bounced", "reader@example.jp"),
        event("soft", "not an address"),
        event("hard", "reader@example.jp", topic="weekly"),
        event("unsubscribe", "reader@example.jp", topic="no-such-topic"),
        "not an object",
        {"type": "hard", "address": "reader@example.jp"},
        event("soft", status=551),
    ]

    response = post_events(client, events)

    assert response.status_code == 400
    errors = {item["index"]: item["errors"] for item in response.json()["events"]}
    assert sorted(errors) == [1, 2, 3, 4, 5, 6, 7]
    assert errors[1] == ["type: one of hard, soft, complaint, unsubscribe"]
    assert errors[2] == ["address: required, a valid email address"]
    assert errors[3] == ["topic: only for type unsubscribe"]
    assert errors[4][0].startswith("topic: unknown")
    assert errors[5] == ["not a JSON object"]
    assert errors[6] == ["id: required, a non-empty string"]
    assert errors[7] == ["status: a string"]
    assert nothing_stored() and not is_suppressed(reader.email)


@pytest.mark.django_db
def test_a_body_without_events_is_refused(client, webhook_on):
    response = post_events(client, None, body=b'{"event": []}')
    assert response.status_code == 400 and nothing_stored()
    response = post_events(client, None, body=b"not json")
    assert response.status_code == 400


@pytest.mark.django_db
def test_an_unsubscribe_with_a_topic_stops_that_topic_only(client, webhook_on):
    reader = make_subscriber("reader@example.jp")

    response = post_events(client, [event("unsubscribe", topic="weekly")])

    assert response.status_code == 200
    assert subscribed_keys(reader) == set(ALL_TOPICS) - {"weekly"}
    assert not Subscription.objects.get(subscriber=reader, topic__key="weekly").subscribed
    event_row = BounceEvent.objects.get()
    assert event_row.outcome == Outcome.UNSUBSCRIBED and event_row.subscriber == reader
    assert not is_suppressed("reader@example.jp")


@pytest.mark.django_db
def test_an_unsubscribe_without_a_topic_stops_everything(client, webhook_on):
    reader = make_subscriber("reader@example.jp")
    assert post_events(client, [event("unsubscribe")]).status_code == 200
    assert subscribed_keys(reader) == set()


@pytest.mark.django_db
def test_an_unsubscribe_for_an_unknown_reader_is_recorded(client, webhook_on):
    assert post_events(client, [event("unsubscribe", "stranger@example.jp")]).status_code == 200
    assert BounceEvent.objects.get().outcome == Outcome.UNKNOWN_RECIPIENT


@pytest.mark.django_db
def test_the_same_event_id_twice_is_acted_on_once(client, webhook_on, settings):
    settings.BOUNCE_SCORE_LIMIT = 10
    reader = make_subscriber("reader@example.jp")
    same = event("soft", id="esp-evt-42")

    assert post_events(client, [same]).json() == {"accepted": 1}
    assert post_events(client, [same]).json() == {"accepted": 1}

    assert InboundMessage.objects.get().times_received == 2
    assert BounceEvent.objects.count() == 1
    assert BounceScore.objects.get(subscriber=reader).score == 0.5


@pytest.mark.django_db
def test_the_webhook_is_off_without_a_secret(client, settings):
    settings.BOUNCE_WEBHOOK_SECRET = ""
    make_subscriber("reader@example.jp")
    response = post_events(client, [event()], secret="")
    assert response.status_code == 404 and nothing_stored()


@pytest.mark.django_db
def test_too_many_events_or_bytes_are_refused(client, webhook_on):
    response = post_events(client, [event() for _ in range(1001)])
    assert response.status_code == 413
    big = event(diagnostic="x" * (1024 * 1024))
    assert post_events(client, [big]).status_code == 413
    assert nothing_stored()


@pytest.mark.django_db
def test_only_post_is_allowed(client, webhook_on):
    assert client.get(WEBHOOK_URL).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["[" * 100_000, '{"Type": ["Notification"]}', "[]"])
def test_hostile_ses_bodies_are_refused_without_fetching(client, fetched, body):
    response = client.post(SES_URL, body, content_type="text/plain")
    assert response.status_code in (400, 403)
    assert fetched == [] and nothing_stored()
