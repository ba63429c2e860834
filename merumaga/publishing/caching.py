"""Whole-page cache for the public site, emptied at once by any publish.

Every key carries a content version; publishing bumps the version, so no stale page can be served
and nothing needs deleting (old entries expire on their own).
"""

from functools import wraps

from django.core.cache import cache
from django.http import HttpResponse

PAGE_SECONDS = 600
_VERSION_KEY = "publishing:content-version"


def content_version() -> int:
    return cache.get_or_set(_VERSION_KEY, 1, None)


def content_changed() -> None:
    try:
        cache.incr(_VERSION_KEY)
    except ValueError:
        cache.set(_VERSION_KEY, 2, None)


def cached_page(view):
    """Cache a public GET page for anonymous readers, per language and page number."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method != "GET" or request.user.is_authenticated:
            return view(request, *args, **kwargs)
        # Only the query parameter pages use, so that random query strings cannot fill the cache.
        page = request.GET.get("page", "")
        key = f"page:{content_version()}:{request.LANGUAGE_CODE}:{request.path}:{page}"
        hit = cache.get(key)
        if hit is not None:
            content, content_type = hit
            return HttpResponse(content, content_type=content_type)
        response = view(request, *args, **kwargs)
        if hasattr(response, "render"):
            response.render()
        if response.status_code == 200:
            cache.set(key, (response.content, response["Content-Type"]), PAGE_SECONDS)
        return response

    return wrapper
