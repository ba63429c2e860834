"""Whole-page cache for the public site, emptied at once by any publish.

Every key carries a content version; publishing bumps the version, so no stale page can be served
and nothing needs deleting (old entries expire on their own).
"""

import hashlib
from functools import partial, wraps
from typing import cast

from django.core.cache import cache
from django.http import HttpResponse

PAGE_SECONDS = 600
_VERSION_KEY = "publishing:content-version"


def content_version() -> int:
    # The stubs return "Any | None" for every default; with a non-None default get_or_set returns
    # the stored value or that default, and only ints are ever stored under this key.
    return cast(int, cache.get_or_set(_VERSION_KEY, 1, None))


def content_changed() -> None:
    try:
        cache.incr(_VERSION_KEY)
    except ValueError:
        cache.set(_VERSION_KEY, 2, None)


def cached_page(view=None, *, paginated: bool = False):
    """Cache a public GET page for anonymous readers, per language (and page number, for a
    `paginated` list, whose view answers 404 to any value not one of its page numbers).

    The key holds nothing else from the query string, so that no query string can add entries:
    `?page=junk` on a page that is not a list is the same page, cached once.
    """
    if view is None:
        return partial(cached_page, paginated=paginated)

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method != "GET" or request.user.is_authenticated:
            return view(request, *args, **kwargs)
        page = request.GET.get("page", "") if paginated else ""
        # A digest, not the text: a path or page value can be thousands of characters long.
        where = hashlib.sha256(f"{request.path}\n{page}".encode()).hexdigest()
        key = f"page:{content_version()}:{request.LANGUAGE_CODE}:{where}"
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
