"""Listeners for what the delivery engine reports: relay refusals and caught mail."""

import contextlib

from django.conf import settings
from django.db.models import Q
from django.dispatch import receiver

from merumaga.bounces import services
from merumaga.bounces.models import BounceEvent, InboundMessage, Source
from merumaga.delivery.signals import deliveries_failed, mail_caught
from merumaga.subscribers.signals import address_confirmed, reader_erased


@receiver(deliveries_failed)
def on_deliveries_failed(sender, failures, **kwargs) -> None:
    services.record_delivery_failures(failures)


# Local parts of our bounce domain that receive: VERP bounces, mailed unsubscribes, sign-ups by
# empty mail (subscribe@, subscribe+TOPIC@), and the plain addresses feedback loops and
# postmasters write to. Anything else at that domain may be a reader (in development the bounce
# domain is the From domain, example.jp, like the demo readers).
INBOUND_LOCAL_PARTS = ("bounce", "fbl", "abuse", "postmaster", "subscribe")
INBOUND_PREFIXES = ("bounce+", "unsubscribe+", "subscribe+")


def is_inbound_address(address: str) -> bool:
    local, _, domain = address.lower().rpartition("@")
    return domain == settings.BOUNCE_DOMAIN.lower() and (
        local in INBOUND_LOCAL_PARTS or local.startswith(INBOUND_PREFIXES)
    )


@receiver(mail_caught)
def on_mail_caught(sender, raw: bytes, envelope_from: str, envelope_to: list[str], **kwargs):
    ours = [address for address in envelope_to if is_inbound_address(address)]
    if ours:
        services.receive(raw, Source.CATCHER, envelope_from=envelope_from, envelope_to=ours)


@receiver(reader_erased)
def on_reader_erased(sender, subscriber, **kwargs) -> None:
    # What came back for them holds their address: keep how it was read, not the text.
    named = Q(subscriber=subscriber) | Q(events__subscriber=subscriber)  # second-named too
    InboundMessage.objects.filter(named).update(**services.ERASED_COPY)
    BounceEvent.objects.filter(subscriber=subscriber).update(diagnostic="", domain="")


@receiver(address_confirmed)
def on_address_confirmed(sender, subscriber, **kwargs) -> None:
    """Its owner has just opened a link mailed to the address: it receives our mail, and they
    asked for it. A bounce or complaint suppression of it would otherwise stop their mail with
    no one the wiser."""
    with contextlib.suppress(services.CannotLift):  # not suppressed, or not by us
        services.lift_suppression(
            subscriber.address_hash,
            "the address's owner confirmed it from a link mailed to it",
            user=None,
        )
