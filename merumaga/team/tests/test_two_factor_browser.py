"""Two-factor authentication in Chromium: required, set up with a code computed from the key
the page shows, then a later sign-in with a recovery code."""

from base64 import b32decode

import pytest
from django_otp.oath import totp
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/admin/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.locator("#id_password").press("Enter")


def test_set_up_then_sign_in_with_a_recovery_code(live_server, page, settings, django_user_model):
    settings.TWO_FACTOR_REQUIRED = "all"
    django_user_model.objects.create_user("editor", password="pw-for-test", is_staff=True)

    sign_in(page, live_server, "editor", "pw-for-test")
    expect(page.locator("h1")).to_have_text("2段階認証の設定")  # before anything else
    expect(page.locator(".mm-qr svg")).to_be_visible()
    key = page.locator(".mm-key").inner_text()
    page.locator("#id_code").fill(f"{totp(b32decode(key)):06d}")
    page.locator("#id_code").press("Enter")
    codes = page.locator(".mm-codes code")
    expect(codes).to_have_count(10)
    recovery = codes.first.inner_text()
    page.get_by_role("link", name="保存しました。管理画面へ").click()
    expect(page.locator("#nav-sidebar-inner")).to_contain_text("editor")

    page.context.clear_cookies()  # a new session: the password, then a code
    sign_in(page, live_server, "editor", "pw-for-test")
    expect(page.locator("h1")).to_have_text("2段階認証")
    page.locator("#id_code").fill(recovery)
    page.locator("#id_code").press("Enter")
    expect(page.locator("#nav-sidebar-inner")).to_contain_text("editor")


def test_a_passkey_is_added_after_the_authenticator_and_signs_in(
    live_server, page, settings, django_user_model
):
    """With Chromium's virtual authenticator (a platform key that verifies its user)."""
    origin = live_server.url
    assert origin.startswith("http://localhost:")  # a secure context, as WebAuthn requires
    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [origin]
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    refused = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    django_user_model.objects.create_user("editor", password="pw-for-test", is_staff=True)

    sign_in(page, live_server, "editor", "pw-for-test")
    page.goto(f"{origin}/admin/2fa/setup/")
    expect(page.locator(".mm-passkeys")).to_have_count(0)  # the authenticator app comes first
    key = page.locator(".mm-key").inner_text()
    page.locator("#id_code").fill(f"{totp(b32decode(key)):06d}")
    page.locator("#id_code").press("Enter")
    page.get_by_role("link", name="保存しました。管理画面へ").click()

    page.goto(f"{origin}/admin/2fa/setup/")
    page.get_by_role("button", name="パスキーを登録する").click()
    expect(page.locator(".mm-passkeys li")).to_have_count(1)  # the page shows it, reloaded

    page.context.clear_cookies()  # a new session: the password, then the passkey
    sign_in(page, live_server, "editor", "pw-for-test")
    expect(page.locator("h1")).to_have_text("2段階認証")
    page.get_by_role("button", name="パスキーで確認する").click()
    expect(page.locator("#nav-sidebar-inner")).to_contain_text("editor")
    assert refused == []
