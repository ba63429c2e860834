"""The one public view of mailings: a click on a tracked link (mailings/clicks.py)."""

from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from merumaga.mailings import clicks


@require_safe
@never_cache
def click(request: HttpRequest, link: str, reader: str = "") -> HttpResponseRedirect:
    """Count the click, then send the reader on (302) to the link's target as it was sent."""
    try:
        target, subscriber_id = clicks.resolve(link, reader)
    except clicks.UnknownLink:
        raise Http404 from None
    # Link checkers and previews fetch with HEAD; only a reader's GET is a click.
    if request.method == "GET":
        clicks.buffer.add(target, subscriber_id)
    return HttpResponseRedirect(target.url)
