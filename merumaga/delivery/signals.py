"""What the delivery engine tells apps that come after it (bounces) without importing them."""

from dataclasses import dataclass

from django.dispatch import Signal


@dataclass(frozen=True)
class DeliveryFailure:
    mailing_id: int
    subscriber_id: int
    reply: str  # the relay's reply, "550 5.1.1 …", or why the mail could not be built
    stage: str = ""  # the SMTP command refused (RCPT, DATA, MAIL, connect); "" if none was
    relay: str = ""  # the relay that gave the reply
    final: bool = True  # False: deferred, to be tried again (a 4xx, or no answer)


# Sent by a worker after it recorded a batch in which some rows failed or were deferred:
# failures=[DeliveryFailure].
deliveries_failed = Signal()

# Sent by the mail catcher for each message it kept: raw=bytes, envelope_from=str,
# envelope_to=[str]. Lets the bounces app read mail sent to its own addresses in development.
mail_caught = Signal()
