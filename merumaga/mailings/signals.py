"""What the mailings app tells apps that come after it, without importing them."""

from django.dispatch import Signal

# Sent once a batch of clicks is written (ClickBuffer: one INSERT per batch, outside any
# request): clicks=the Click rows written, each with link_id, subscriber_id (or None) and at.
clicks_recorded = Signal()
