"""The connection to the relay for test sends from the admin. Mailings to readers go out through
the delivery engine (merumaga.delivery), which has its own pool of connections."""

import smtplib

from django.conf import settings


def open_relay() -> smtplib.SMTP:
    relay_class = smtplib.SMTP_SSL if settings.EMAIL_USE_SSL else smtplib.SMTP
    relay = relay_class(settings.EMAIL_HOST, settings.EMAIL_PORT, timeout=settings.EMAIL_TIMEOUT)
    if settings.EMAIL_USE_TLS:
        relay.starttls()
    if settings.EMAIL_HOST_USER:
        relay.login(settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD)
    return relay
