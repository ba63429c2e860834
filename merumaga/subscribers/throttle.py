"""Fixed-window counters in the shared cache, for sign-up abuse limits.

It's OK to be a little inexact here: two requests racing at a window edge may both pass.
"""

from django.core.cache import cache


def allow(key: str, limit: int, window_seconds: int = 3600) -> bool:
    """Count one hit on `key`; False once more than `limit` hits fell in the current window."""
    cache_key = f"throttle:{key}"
    if cache.add(cache_key, 1, window_seconds):
        return True
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add() and incr()
        cache.add(cache_key, 1, window_seconds)
        return True
    return count <= limit
