"""Fixed-window rate limits (sign-ups, RSVPs, mail-me-a-link forms) and one-use form stamps,
counted in the database.

One statement counts a hit and returns the new count: an upsert, which both SQLite (3.35+) and
PostgreSQL run atomically. The cache could not do this: the database cache's incr() is a read
followed by a write, so 100 parallel sign-ups from one IP got 22-33 through a limit of 20.
"""

from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from merumaga.subscribers.models import RateCounter

TABLE = RateCounter._meta.db_table
WINDOW = timedelta(hours=1)
ONE_USE_WINDOW = timedelta(days=1)
# Counters outlive the longest window by a day, so that no one-use key is forgotten while valid.
KEEP = 2 * ONE_USE_WINDOW

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


def first_use(key: str, issued_at: datetime) -> bool:
    """True the first time a one-use key (a form stamp) is spent, False every time after.

    The key is counted in the day it was issued, whenever it is spent: a stamp valid for up to a
    day can never reach a second, empty counter.
    """
    return allow(key, 1, ONE_USE_WINDOW, now=issued_at)


def forget_old_windows(now: datetime | None = None) -> int:
    """Delete the counters of windows that ended long enough ago; returns how many."""
    oldest = int(((now or timezone.now()) - KEEP).timestamp())
    deleted, _ = RateCounter.objects.filter(window_start__lt=oldest).delete()
    return deleted
