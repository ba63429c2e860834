import dkim
import pytest
from django.core.exceptions import ImproperlyConfigured

from merumaga import mime
from merumaga.delivery.dkim import Signer, configured_signer


def message() -> bytes:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return mime.build_message(
        charset="utf-8",
        from_name="研究所",
        from_address="news@example.jp",
        to_address="reader@example.jp",
        subject="週報",
        text="本文",
        html="<p>本文</p>",
        headers=[
            ("List-Unsubscribe", "<https://example.jp/u/x/>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ],
        date=datetime(2026, 11, 30, 8, 0, tzinfo=ZoneInfo("Asia/Tokyo")),
        message_id="<1@example.jp>",
    )


def test_signed_mail_verifies_and_covers_the_one_click_headers(key_pair):
    private, public = key_pair
    signed = Signer("example.jp", "mm2026", private.read_bytes()).sign(message())
    assert signed.startswith(b"DKIM-Signature:")
    header = signed.split(b"\r\n\r\n", 1)[0].decode()
    signed_list = header.split(" h=", 1)[1].split(";", 1)[0].replace("\r\n", "").replace(" ", "")
    assert "list-unsubscribe:list-unsubscribe-post" in signed_list.lower()

    def dns(name, timeout=5):
        assert name == b"mm2026._domainkey.example.jp."
        return b"v=DKIM1; k=rsa; p=" + public

    assert dkim.verify(signed, dnsfunc=dns)
    assert not dkim.verify(signed.replace("週報".encode(), b"x", 1) + b"tampered", dnsfunc=dns)


def test_dkim_settings_are_all_or_none(settings, key_pair):
    settings.DKIM_DOMAIN, settings.DKIM_SELECTOR, settings.DKIM_KEY_FILE = "", "", ""
    assert configured_signer() is None
    settings.DKIM_DOMAIN = "example.jp"
    with pytest.raises(ImproperlyConfigured, match="together"):
        configured_signer()
    settings.DKIM_SELECTOR, settings.DKIM_KEY_FILE = "mm2026", str(key_pair[0])
    assert isinstance(configured_signer(), Signer)
    settings.DKIM_KEY_FILE = "/nonexistent/key.pem"
    with pytest.raises(ImproperlyConfigured, match="KEY_FILE"):
        configured_signer()
