"""Amazon SNS messages: nothing in one is believed until its signature checks out.

Follows AWS's "Verifying the signatures of Amazon SNS messages": the signing certificate may come
only from an SNS host over HTTPS, the string to sign is rebuilt from the message's own fields, and
the signature is checked with SHA1withRSA (SignatureVersion 1) or SHA256withRSA (2). On top of
that a message must come from a topic the operator configured (SES_TOPIC_ARNS) and be recent, so
that a message captured once cannot be replayed later.
"""

import base64
import binascii
import hashlib
import logging
import re
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"

_CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn")
SIGNED_KEYS = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: (*_CONFIRMATION_KEYS, "Type"),
    UNSUBSCRIBE_CONFIRMATION: (*_CONFIRMATION_KEYS, "Type"),
}
OPTIONAL_KEYS = ("Subject",)
SIGNATURE_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}

MAX_AGE = timedelta(hours=1)
FETCH_TIMEOUT = 5  # seconds; SNS waits about 15 s for our answer
CERTIFICATE_MAX_BYTES = 64 * 1024
CERTIFICATE_CACHE_SECONDS = 24 * 60 * 60
# sns.<region>.amazonaws.com, the region spelled out ("ap-northeast-1", "us-gov-west-1"): a looser
# pattern admits sns.s3.amazonaws.com, an S3 bucket named "sns" that anyone could own.
_SNS_HOST = re.compile(r"^sns\.[a-z]{2}(?:-[a-z]+)+-\d\.amazonaws\.com(?:\.cn)?$")
_CERTIFICATE_PATH = re.compile(r"^/SimpleNotificationService-[0-9a-f]+\.pem$")


class InvalidMessage(Exception):
    """Not a genuine, current SNS message for one of our topics; str() is the short reason."""


class Unreachable(Exception):
    """AWS could not be reached (certificate, subscription confirmation): worth a retry."""


def is_sns_url(url: str, *, certificate: bool = False) -> bool:
    """An https URL on an SNS host (and, for a certificate, a .pem path)."""
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    # .hostname lower-cases and drops user info: "https://sns.x.amazonaws.com@evil/" has host evil.
    if parts.scheme != "https" or port not in (None, 443) or parts.username or parts.password:
        return False
    if not _SNS_HOST.match(parts.hostname or ""):
        return False
    return not certificate or bool(_CERTIFICATE_PATH.match(parts.path))


def string_to_sign(message: dict) -> bytes:
    """The canonical "Key\\nvalue\\n" lines AWS signed, for the message's Type."""
    lines = []
    for key in SIGNED_KEYS[message["Type"]]:
        value = message.get(key)
        if value is None and key in OPTIONAL_KEYS:
            continue
        lines.append(f"{key}\n{value}\n")
    return "".join(lines).encode("utf-8")


def verify(message: dict) -> None:
    """Raise InvalidMessage unless `message` is a genuine SNS message from one of our topics.

    The cheap checks come first, so that a stranger's post never makes us fetch anything.
    Unreachable when the certificate cannot be fetched.
    """
    kind = message.get("Type")
    if not isinstance(kind, str) or kind not in SIGNED_KEYS:
        raise InvalidMessage("unknown message type")
    for key in (*SIGNED_KEYS[kind], "Signature", "SignatureVersion", "SigningCertURL"):
        value = message.get(key)
        if key in OPTIONAL_KEYS and value is None:
            continue
        if not isinstance(value, str):
            raise InvalidMessage(f"missing {key}")
    hash_class = SIGNATURE_HASHES.get(message["SignatureVersion"])
    if hash_class is None:
        raise InvalidMessage("unsupported signature version")
    if not is_sns_url(message["SigningCertURL"], certificate=True):
        raise InvalidMessage("signing certificate URL is not an SNS certificate")
    if kind != NOTIFICATION and not is_sns_url(message["SubscribeURL"]):
        raise InvalidMessage("subscribe URL is not an SNS URL")
    if message["TopicArn"] not in settings.SES_TOPIC_ARNS:
        raise InvalidMessage("unknown topic")
    try:
        timestamp = datetime.fromisoformat(message["Timestamp"])
    except ValueError:
        raise InvalidMessage("bad timestamp") from None
    if timestamp.tzinfo is None:
        raise InvalidMessage("bad timestamp")
    if abs(datetime.now(UTC) - timestamp) > MAX_AGE:
        raise InvalidMessage("timestamp too old (or in the future)")
    try:
        signature = base64.b64decode(message["Signature"], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidMessage("bad signature encoding") from None
    public_key = certificate(message["SigningCertURL"]).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise InvalidMessage("signing certificate has no RSA key")
    try:
        public_key.verify(signature, string_to_sign(message), padding.PKCS1v15(), hash_class())
    except InvalidSignature:
        raise InvalidMessage("bad signature") from None


def certificate(url: str) -> x509.Certificate:
    """The certificate at an (already checked) SNS URL, cached for a day by URL.

    SNS signs with few certificates and rotates them rarely; without the cache every
    notification would cost a round trip to AWS.
    """
    key = "merumaga:sns-certificate:" + hashlib.sha256(url.encode()).hexdigest()
    pem = cache.get(key)
    if pem is None:
        pem = fetch_certificate(url)
        cached = False
    else:
        cached = True
    try:
        loaded = x509.load_pem_x509_certificate(pem)
    except ValueError:
        if cached:
            cache.delete(key)
        raise InvalidMessage("signing certificate unreadable") from None
    if not cached:
        cache.set(key, pem, CERTIFICATE_CACHE_SECONDS)
    return loaded


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # The host was checked; a redirect would take us to one that was not.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _get(url: str, limit: int) -> bytes:
    try:
        with _opener.open(url, timeout=FETCH_TIMEOUT) as response:
            return response.read(limit)
    except (OSError, ValueError) as error:  # URLError and timeouts are OSErrors
        raise Unreachable(f"{url}: {error}") from error


def fetch_certificate(url: str) -> bytes:
    """The PEM at `url` (checked by the caller); tests replace this function."""
    return _get(url, CERTIFICATE_MAX_BYTES)


def confirm_subscription(url: str) -> None:
    """Visit a SubscribeURL (checked by the caller), which confirms the subscription at AWS;
    tests replace this function. Unreachable when AWS cannot be reached."""
    _get(url, CERTIFICATE_MAX_BYTES)
