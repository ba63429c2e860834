"""Two-factor authentication for staff: set up with an authenticator app (a TOTP code computed
here from its key), asked for at every sign-in, recovery codes that work once; who must use it
is a setting."""

import io
import re
from base64 import b32decode

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp

from merumaga.team.roles import SENDER, WRITER

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("roles")]

ADMIN = reverse("admin:index")
SETUP = reverse("two_factor_setup")
VERIFY = reverse("two_factor_verify")


def code_for(key_b32: str) -> str:
    """What the authenticator app shows now (RFC 6238, from the key the set-up page gave)."""
    return f"{totp(b32decode(key_b32)):06d}"


def staff(name: str, *roles: str) -> User:
    user = User.objects.create_user(name, password="pw", is_staff=True)
    user.groups.add(*Group.objects.filter(name__in=roles))
    return user


def set_up(client, user) -> tuple[str, list[str]]:
    """Through the set-up page: its key, then the recovery codes it shows once."""
    client.force_login(user)
    page = client.get(SETUP).content.decode()
    key = re.search(r'class="mm-key">([A-Z2-7]+)<', page).group(1)
    assert "<svg" in page  # the QR code to scan
    done = client.post(SETUP, {"code": code_for(key)}).content.decode()
    codes = re.findall(r"<code>(\d{8})</code>", done)
    return key, codes


def test_required_for_all_staff_means_set_up_first(client, settings, time_machine):
    settings.TWO_FACTOR_REQUIRED = "all"
    user = staff("writer", WRITER)
    client.force_login(user)
    assert client.get(ADMIN)["Location"].startswith(SETUP)
    page = client.post(SETUP, {"code": "000000"}).content.decode()
    assert "コードが違います" in page
    time_machine.move_to(timezone.now() + timezone.timedelta(seconds=5))  # past the wait
    _key, codes = set_up(client, user)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert client.get(ADMIN).status_code == 200  # verified in this session


def test_each_sign_in_asks_for_a_code_and_a_recovery_code_works_once(client, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    user = staff("sender", SENDER)
    key, codes = set_up(client, user)
    client.logout()

    client.force_login(user)  # the password step
    response = client.get(reverse("admin:mailings_mailing_changelist"))
    assert response["Location"].startswith(VERIFY)
    assert "2段階認証" in client.get(VERIFY).content.decode()
    assert "コードが違います" in client.post(VERIFY, {"code": "12345678"}).content.decode()
    time_machine.move_to(timezone.now() + timezone.timedelta(seconds=60), tick=False)
    done = client.post(VERIFY, {"code": codes[0], "next": "/admin/mailings/mailing/"})
    assert done["Location"] == "/admin/mailings/mailing/"
    assert client.get(ADMIN).status_code == 200

    client.logout()
    client.force_login(user)
    time_machine.move_to(timezone.now() + timezone.timedelta(seconds=60), tick=False)
    assert "コードが違います" in client.post(VERIFY, {"code": codes[0]}).content.decode()
    # A wrong code makes the next one wait (1 s, then 2, 4 … : django-otp's throttling).
    assert "コードが違います" in client.post(VERIFY, {"code": code_for(key)}).content.decode()
    time_machine.move_to(timezone.now() + timezone.timedelta(seconds=5), tick=False)
    assert client.post(VERIFY, {"code": code_for(key)})["Location"] == ADMIN


def test_sensitive_means_those_who_send_or_see_readers(client, settings):
    settings.TWO_FACTOR_REQUIRED = "sensitive"
    client.force_login(staff("writer", WRITER))
    assert client.get(ADMIN).status_code == 200  # writes articles only: not required
    client.force_login(staff("sender", SENDER))
    assert client.get(ADMIN)["Location"].startswith(SETUP)


def test_off_by_default_and_a_foreign_next_is_not_followed(client, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    user = staff("writer", WRITER)
    client.force_login(user)
    assert client.get(ADMIN).status_code == 200
    key, _codes = set_up(client, user)
    client.logout()
    client.force_login(user)
    time_machine.move_to(timezone.now() + timezone.timedelta(seconds=60), tick=False)
    response = client.post(VERIFY, {"code": code_for(key), "next": "https://evil.example/"})
    assert response["Location"] == ADMIN


def test_a_lost_authenticator_is_removed_from_the_command_line(client, settings, time_machine):
    from io import StringIO

    from django.core.management import call_command

    settings.TWO_FACTOR_REQUIRED = "all"
    time_machine.move_to(timezone.now(), tick=False)
    user = staff("sender", SENDER)
    set_up(client, user)
    out = StringIO()
    call_command("2fa-reset", "sender", stdout=out)
    assert "2 two-factor devices removed" in out.getvalue()  # the app and the recovery codes
    client.logout()
    client.force_login(user)
    assert client.get(ADMIN)["Location"].startswith(SETUP)  # set up again


def test_passkeys_come_after_the_authenticator_and_only_after_the_second_step(client, time_machine):
    from django.core.management import call_command
    from django_otp_webauthn.models import WebAuthnCredential

    time_machine.move_to("2026-12-07 10:00 +09:00", tick=False)
    user = staff("editor")
    client.force_login(user)
    assert "mm-passkeys" not in client.get(SETUP).content.decode()  # nothing to add it beside
    key, _codes = set_up(client, user)  # which signs the session in with the authenticator
    assert "パスキーを登録する" in client.get(SETUP).content.decode()

    client.logout()
    client.force_login(user)  # the password only
    assert client.get(SETUP).status_code == 200
    assert "mm-passkeys" not in client.get(SETUP).content.decode()
    begin = client.post(reverse("otp_webauthn:credential-registration-begin"))
    assert begin.status_code == 403  # whoever has just the password cannot add a key

    passkey = WebAuthnCredential.objects.create(
        user=user, name="laptop", credential_id=b"id-1", public_key=b"k", confirmed=True
    )
    other = WebAuthnCredential.objects.create(
        user=staff("other"), name="theirs", credential_id=b"id-2", public_key=b"k"
    )
    page = client.get(VERIFY).content.decode()
    assert "パスキーで確認する" in page  # offered at sign-in once the account has one
    remove = reverse("two_factor_remove_passkey", args=[passkey.pk])
    assert client.post(remove)["Location"] == VERIFY  # not before the second step
    assert WebAuthnCredential.objects.filter(pk=passkey.pk).exists()

    time_machine.shift(60)  # the next code: each is taken once
    assert client.post(VERIFY, {"code": code_for(key)}).status_code == 302
    client.post(reverse("two_factor_remove_passkey", args=[other.pk]))  # not one's own
    assert WebAuthnCredential.objects.filter(pk=other.pk).exists()
    client.post(remove)
    assert not WebAuthnCredential.objects.filter(pk=passkey.pk).exists()

    WebAuthnCredential.objects.create(user=user, credential_id=b"id-3", public_key=b"k")
    call_command("2fa-reset", "editor", stdout=io.StringIO())
    assert not WebAuthnCredential.objects.filter(user=user).exists()  # a lost key goes too
