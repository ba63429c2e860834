"""The public site: home, articles, tags, reports, the mailing archive. Thin views, cached pages."""

from django.conf import settings
from django.core.paginator import InvalidPage, Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from merumaga.publishing.caching import cached_page
from merumaga.publishing.models import ArchivedMailing, Article, Event, Report, Tag
from merumaga.publishing.related import related_articles
from merumaga.publishing.rsvp import public_events

PER_PAGE = 10


def _page(request: HttpRequest, queryset):
    """The page asked for; 404 for any `page` value that is not one of its page numbers as
    written in our own links ("2", not "02", "abc" or "99999"). Only 200s are cached, so junk
    values cannot fill the cache, and every page has one address."""
    paginator = Paginator(queryset, PER_PAGE)
    raw = request.GET.get("page")
    if not raw:  # "?page=" is the first page, cached under the same key
        return paginator.page(1)
    if not raw.isascii() or not raw.isdigit() or raw != str(int(raw)):
        raise Http404
    try:
        return paginator.page(int(raw))
    except InvalidPage:
        raise Http404 from None


def upcoming_events():
    return Event.objects.filter(
        status=Event.EventStatus.PUBLISHED, ends_at__gte=timezone.now()
    ).order_by("starts_at")


@cached_page
def home(request: HttpRequest) -> HttpResponse:
    # Three queries whatever the amount of content (tested).
    return render(
        request,
        "publishing/home.html",
        {
            "articles": Article.objects.published()[:8],
            "events": upcoming_events()[:3],
            "reports": Report.objects.published()[:3],
        },
    )


@cached_page(paginated=True)
def article_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "publishing/article_list.html",
        {"page": _page(request, Article.objects.published())},
    )


@cached_page
def article_detail(request: HttpRequest, slug: str) -> HttpResponse:
    article = get_object_or_404(Article.objects.published().prefetch_related("tags"), slug=slug)
    context = {"article": article, "related": related_articles(article)}
    return render(request, "publishing/article_detail.html", context)


def short_link(request: HttpRequest, pk: int, model: str) -> HttpResponse:
    """/a/12/ → the article's page (and /r/, /e/ for reports and events), while it is shown."""
    item: Article | Report | Event
    if model == "article":
        item = get_object_or_404(Article.objects.published(), pk=pk)
    elif model == "report":
        item = get_object_or_404(Report.objects.published(), pk=pk)
    else:
        item = get_object_or_404(public_events(), pk=pk)  # as its page: never a scheduled one
    return redirect(item.get_absolute_url())


@cached_page(paginated=True)
def tag_detail(request: HttpRequest, slug: str) -> HttpResponse:
    tag = get_object_or_404(Tag, slug=slug)
    articles = Article.objects.published().filter(tags=tag)
    return render(
        request, "publishing/tag_detail.html", {"tag": tag, "page": _page(request, articles)}
    )


@cached_page(paginated=True)
def report_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "publishing/report_list.html", {"page": _page(request, Report.objects.published())}
    )


@cached_page
def report_detail(request: HttpRequest, slug: str) -> HttpResponse:
    report = get_object_or_404(Report.objects.published(), slug=slug)
    return render(request, "publishing/report_detail.html", {"report": report})


def report_pdf(request: HttpRequest, slug: str) -> FileResponse:
    report = get_object_or_404(Report.objects.published(), slug=slug)
    try:
        handle = report.pdf.open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404 from None
    # Always a download named after the report: the browser never guesses the type or the name.
    return FileResponse(
        handle, as_attachment=True, filename=f"{report.slug}.pdf", content_type="application/pdf"
    )


@cached_page(paginated=True)
def archive_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "publishing/archive_list.html",
        {"page": _page(request, ArchivedMailing.objects.all())},
    )


@cached_page
def archive_detail(request: HttpRequest, slug: str) -> HttpResponse:
    mailing = get_object_or_404(ArchivedMailing, slug=slug)
    return render(request, "publishing/archive_detail.html", {"mailing": mailing})


def robots_txt(request: HttpRequest) -> HttpResponse:
    lines = [
        "User-agent: *",
        "Disallow: /admin/",
        "Disallow: /confirm/",
        "Disallow: /preferences/",
        "Disallow: /unsubscribe/",
        "Disallow: /events/rsvp/",
        "Disallow: /events/answer/",
        "Disallow: /events/confirm/",
        f"Sitemap: {settings.SITE_URL}/sitemap.xml",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")
