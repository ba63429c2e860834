"""The site search page: /search/?q=…&page=…"""

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from merumaga.publishing import search as site_search

PER_PAGE = 20


def page_number(raw: str | None) -> int:
    """The page asked for; anything that is not a page number means the first page."""
    try:
        number = int(raw or 1)
    except ValueError:
        return 1
    return max(number, 1)


# Not cached: the answer depends on a free-form query, and it must follow every edit at once.
@never_cache
@require_safe
def search(request: HttpRequest) -> HttpResponse:
    query = site_search.normalise_query(request.GET.get("q", ""))
    number = page_number(request.GET.get("page"))
    results = site_search.search(query, limit=PER_PAGE, offset=(number - 1) * PER_PAGE)
    # The paginator only needs the size; search() has already fetched this page's hits.
    paginator = Paginator(range(results.total), PER_PAGE)
    if number > paginator.num_pages:
        raise Http404
    return render(
        request,
        "publishing/search.html",
        {
            "query": query,
            "results": results,
            "page": paginator.page(number),
        },
    )
