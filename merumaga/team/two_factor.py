"""Two-factor authentication for staff (django-otp): an authenticator app (TOTP) and ten
recovery codes. Who must use it is a setting (TWO_FACTOR_REQUIRED); whoever has set it up is
asked for a code at every sign-in."""

import secrets

from django.conf import settings
from django.db import transaction
from django_otp import devices_for_user, user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

# What makes an account "sensitive" for TWO_FACTOR_REQUIRED = "sensitive": it can send to the
# readers or see their personal data.
SENSITIVE_PERMISSIONS = (
    "mailings.send_mailing",
    "mailings.test_send_mailing",
    "subscribers.view_subscriber",
    "subscribers.export_subscriber",
    "delivery.view_caught_mail",
)
RECOVERY_CODES = 10


def must_use(user) -> bool:
    required = settings.TWO_FACTOR_REQUIRED
    if required == "all":
        return True
    if required == "sensitive":
        return user.is_superuser or any(user.has_perm(p) for p in SENSITIVE_PERMISSIONS)
    return False


def has_set_up(user) -> bool:
    return user_has_device(user, confirmed=True)


def pending_authenticator(user) -> TOTPDevice:
    """The authenticator being set up (unconfirmed until a first code from it is typed)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


def confirm_authenticator(device: TOTPDevice, code: str) -> list[str] | None:
    """The code checks out: the authenticator is the account's, with new recovery codes
    (returned, to be shown once). None when the code is wrong."""
    if not device.verify_token(code.strip()):
        return None
    with transaction.atomic():
        TOTPDevice.objects.filter(user=device.user, confirmed=True).delete()  # one at a time
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        return new_recovery_codes(device.user)


def new_recovery_codes(user) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="recovery", confirmed=True)
    codes = [f"{secrets.randbelow(10**8):08d}" for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def passkeys(user) -> list[WebAuthnCredential]:
    return list(WebAuthnCredential.objects.filter(user=user).order_by("created_at"))


def may_add_passkey(user) -> bool:
    """A passkey is added beside the authenticator app, which also gave the recovery codes (so
    that a lost key never locks anyone out), and only once this session has passed the second
    step: whoever has just the password cannot add a key of their own."""
    return has_set_up(user) and user.is_verified()


def remove_passkey(user, passkey_id: int) -> bool:
    """Remove one of the account's own passkeys; False when it has none by that id."""
    deleted, _ = WebAuthnCredential.objects.filter(user=user, pk=passkey_id).delete()
    return bool(deleted)


def verify(user, code: str):
    """The device that accepts `code` (an authenticator's code, or a recovery code, used up),
    or None. Each device counts its failures and waits longer after each (django-otp)."""
    code = code.strip().replace(" ", "")
    # In a transaction: a recovery code is locked while it is used up (select_for_update),
    # which PostgreSQL allows only inside one.
    with transaction.atomic():
        for device in devices_for_user(user, confirmed=True, for_verify=True):
            if device.verify_token(code):
                return device
    return None
