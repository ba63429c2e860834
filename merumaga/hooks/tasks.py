"""Sending webhooks in the background: one try per run, the next one scheduled."""

from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone
from huey.contrib.djhuey import db_task

from merumaga.hooks import services
from merumaga.hooks.models import Endpoint, WebhookDelivery


@db_task()
def deliver_webhook(delivery_id: int) -> None:
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        return
    delivery = services.deliver(delivery)
    if delivery.next_at is not None:
        wait = max((delivery.next_at - timezone.now()).total_seconds(), 0)
        deliver_webhook.schedule((delivery.pk,), delay=wait)


def send(event: str, data: dict[str, Any], among: list[Endpoint] | None = None) -> None:
    """Emit `event` and send each delivery once the surrounding transaction commits."""
    for delivery in services.emit(event, data, among):
        transaction.on_commit(partial(deliver_webhook, delivery.pk))
