"""How a moment is written for people on every screen: Japan time (TIME_ZONE), to the minute.
Stored times are UTC; formatting one directly would show UTC beside the JST of the rest."""

from datetime import datetime

from django.utils import timezone


def minute(moment: datetime | None) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}" if moment else "—"
