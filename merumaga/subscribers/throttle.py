"""Fixed-window rate limits (sign-ups, RSVPs, mail-me-a-link forms), counted in the database.

One statement counts a hit and returns the new count: an upsert, which both SQLite (3.35+) and
PostgreSQL run atomically. The cache could not do this: the database cache's incr() is a read
followed by a write, so 100 parallel sign-ups from one IP got 22-28 through a limit of 20.
"""

from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from merumaga.subscribers.models import RateCounter

TABLE = RateCounter._meta.db_table
WINDOW = timedelta(hours=1)

# INSERT the first hit of a window, or add one to the hits already there; RETURNING gives the
# count after this hit, so two requests at once can never both see the same number.
_COUNT_HIT = (
    f'INSERT INTO "{TABLE}" ("key", "window_start", "hits") VALUES (%s, %s, 1) '
    f'ON CONFLICT ("key", "window_start") DO UPDATE SET "hits" = "{TABLE}"."hits" + 1 '
    'RETURNING "hits"'
)


def window_start(now: datetime, window: timedelta = WINDOW) -> int:
    seconds = int(window.total_seconds())
    return int(now.timestamp()) // seconds * seconds


def allow(key: str, limit: int, window: timedelta = WINDOW, now: datetime | None = None) -> bool:
    """Count one hit on `key`; False once more than `limit` hits fell in the current window."""
    start = window_start(now or timezone.now(), window)
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_HIT, [key[:200], start])
        (hits,) = cursor.fetchone()
    return hits <= limit


def forget_old_windows(now: datetime | None = None, window: timedelta = WINDOW) -> int:
    """Delete the counters of windows that have ended; returns how many."""
    current = window_start(now or timezone.now(), window)
    deleted, _ = RateCounter.objects.filter(window_start__lt=current).delete()
    return deleted
