"""Optional DKIM signing in the worker (dkimpy).

dkimpy does RSA in pure Python: about 150 signatures/s with a 2048-bit key on this class of
machine (bench/dkim_cost.py), far below what a worker sends. Operators at scale sign at the relay
(OpenDKIM, rspamd, the provider); this is for small installations without such a relay.
"""

from pathlib import Path

import dkim
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Gmail and Yahoo ask that one-click unsubscribe headers are covered by the signature;
# dkimpy's default list leaves List-Unsubscribe-Post out.
SIGNED_HEADERS = [
    b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
    b"list-unsubscribe", b"list-unsubscribe-post", b"list-id", b"feedback-id",
]  # fmt: skip


class Signer:
    def __init__(self, domain: str, selector: str, private_key: bytes) -> None:
        self.domain = domain.encode("ascii")
        self.selector = selector.encode("ascii")
        self.private_key = private_key

    def sign(self, data: bytes) -> bytes:
        """The message with a DKIM-Signature header in front (relaxed/relaxed, rsa-sha256)."""
        signature = dkim.sign(
            data,
            self.selector,
            self.domain,
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=SIGNED_HEADERS,
        )
        return signature + data


def configured_signer() -> Signer | None:
    """A signer when MERUMAGA_DKIM_DOMAIN, _SELECTOR and _KEY_FILE are all set, else None."""
    parts = (settings.DKIM_DOMAIN, settings.DKIM_SELECTOR, settings.DKIM_KEY_FILE)
    if not any(parts):
        return None
    if not all(parts):
        raise ImproperlyConfigured(
            "DKIM needs MERUMAGA_DKIM_DOMAIN, MERUMAGA_DKIM_SELECTOR and MERUMAGA_DKIM_KEY_FILE "
            "together (or none of them: sign at the relay)."
        )
    try:
        key = Path(settings.DKIM_KEY_FILE).read_bytes()
    except OSError as error:
        raise ImproperlyConfigured(f"MERUMAGA_DKIM_KEY_FILE: {error}") from None
    return Signer(settings.DKIM_DOMAIN, settings.DKIM_SELECTOR, key)
