from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from merumaga.demo import demo_pdf
from merumaga.publishing import services
from merumaga.publishing.models import ArchivedMailing, Event, Tag
from merumaga.testing import make_article, make_report

pytestmark = pytest.mark.django_db


@pytest.fixture
def content():
    tag = Tag.objects.create(name="電池", slug="電池")
    articles = [
        make_article(f"記事{n}", source_name="架空新聞", source_detail="11月号") for n in range(12)
    ]
    for article in articles:
        article.tags.add(tag)
    make_article("下書きの記事", published=False)
    make_report("公開レポート")
    now = timezone.now()
    Event.objects.create(
        title="公開イベント",
        slug="event",
        starts_at=now + timedelta(days=3),
        ends_at=now + timedelta(days=3, hours=1),
        status="published",
    )
    return articles


def test_home_lists_articles_events_reports_and_the_subscribe_box(client, content):
    page = client.get("/").content.decode()
    assert "記事11" in page and "下書きの記事" not in page
    assert "公開イベント" in page and "公開レポート" in page
    assert 'action="/subscribe/"' in page and "架空新聞" in page
    assert 'lang="ja"' in page


def page_queries(client, url) -> tuple[int, int]:
    """(queries for the content, all queries): the database cache's own reads and writes are
    counted apart, since on Redis they are no database queries at all."""
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    content = [
        q
        for q in captured.captured_queries
        if "merumaga_cache" not in q["sql"] and "SAVEPOINT" not in q["sql"]
    ]
    return len(content), len(captured.captured_queries)


@pytest.mark.parametrize("page", ["home", "article"])
def test_home_and_article_pages_use_a_bounded_number_of_queries(client, content, page):
    url = "/" if page == "home" else content[0].get_absolute_url()
    # Sender identity + content: home reads articles, events and reports; an article its tags
    # and, in one more, the candidates for its related articles.
    first_content, _ = page_queries(client, url)
    assert first_content <= 5
    # Served from the cache: at most the version and the page itself.
    _, cached_total = page_queries(client, url)
    assert cached_total <= 2


def test_cached_pages_are_renewed_when_something_is_published(
    client, content, django_capture_on_commit_callbacks
):
    assert "新しい記事" not in client.get("/").content.decode()
    article = make_article("新しい記事", published=True)
    assert "新しい記事" not in client.get("/").content.decode()  # still the cached page
    with django_capture_on_commit_callbacks(execute=True):
        services.unpublish(article)
        services.publish_article(article)
    assert "新しい記事" in client.get("/").content.decode()


def test_article_page_shows_source_tags_and_meta(client, content):
    article = content[0]
    page = client.get(article.get_absolute_url()).content.decode()
    assert "出典" in page and "架空新聞" in page and "(11月号)" in page
    assert 'href="/tags/%E9%9B%BB%E6%B1%A0/"' in page or 'href="/tags/電池/"' in page
    assert '<meta property="og:title" content="記事0">' in page
    assert (
        f'<link rel="canonical" href="http://localhost:8000{article.get_absolute_url()}">' in page
    )


def test_a_draft_or_unknown_article_is_404(client, content):
    assert client.get("/articles/下書きの記事/").status_code == 404
    assert client.get("/articles/no-such-thing/").status_code == 404


def test_pagination_and_tag_page(client, content):
    first = client.get("/articles/").content.decode()
    assert "1 / 2" in first
    assert "記事0" in client.get("/articles/?page=2").content.decode()
    assert client.get("/articles/?page=3").status_code == 404  # no such page: nothing cached
    assert "記事0" in client.get("/tags/電池/?page=2").content.decode()


def test_english_pages(client, content):
    client.get("/language/en/?next=/")
    page = client.get("/").content.decode()
    assert 'lang="en"' in page


def test_language_link_never_redirects_off_site(client):
    response = client.get("/language/en/?next=https://evil.example/")
    assert response["Location"] == "/"


def test_atom_feed_sitemap_and_robots(client, content):
    feed = client.get("/feed/")
    assert feed["Content-Type"].startswith("application/atom+xml")
    assert "記事11" in feed.content.decode()
    sitemap = client.get("/sitemap.xml").content.decode()
    assert content[0].get_absolute_url().split("/")[1] in sitemap and "<urlset" in sitemap
    robots = client.get("/robots.txt").content.decode()
    assert "Disallow: /admin/" in robots and "Sitemap: http://localhost:8000/sitemap.xml" in robots


def test_report_pdf_is_a_named_download(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    report = make_report("PDFレポート", pdf="")
    report.pdf.save("x.pdf", ContentFile(demo_pdf("test")), save=True)
    response = client.get(reverse("report_pdf", args=[report.slug]))
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert b"".join(response.streaming_content).startswith(b"%PDF-")


def test_missing_pdf_file_is_404_not_500(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    report = make_report("ファイルなし", pdf="reports/missing.pdf")
    assert client.get(reverse("report_pdf", args=[report.slug])).status_code == 404


def test_archive_pages(client):
    ArchivedMailing.objects.create(
        title="週報 第1号",
        slug="weekly-1",
        topic_name="週報",
        html="<p>中身</p>",
        sent_at=timezone.now(),
    )
    assert "週報 第1号" in client.get("/archive/").content.decode()
    assert "<p>中身</p>" in client.get("/archive/weekly-1/").content.decode()
