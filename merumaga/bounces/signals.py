"""What the bounces app tells apps that come after it, without importing them."""

from django.dispatch import Signal

# Sent by record_events() after its events are written, inside the caller's transaction:
# events=the BounceEvent rows (hard bounces, complaints … as they were classified).
events_recorded = Signal()
