"""The site's own error pages: Japanese (English for English readers), with the menu; a 400 for
input no page takes; a plain page when even the error page cannot be rendered."""

import pytest
from django.core.cache import cache
from django.db import DatabaseError
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import path

from merumaga import urls as site_urls
from merumaga.testing import make_article

pytestmark = pytest.mark.django_db


def crash(request):
    raise RuntimeError("a bug")


def forbidden(request):
    from django.core.exceptions import PermissionDenied

    raise PermissionDenied


def ok(request):
    return HttpResponse("ok")


# The site's own URLs plus two views that fail; the handlers are the site's.
urlpatterns = [path("crash/", crash), path("forbidden/", forbidden), *site_urls.urlpatterns]
handler400, handler403 = site_urls.handler400, site_urls.handler403
handler404, handler500 = site_urls.handler404, site_urls.handler500


def client(language="ja") -> Client:
    return Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE=language)


def test_404_is_the_sites_own_page_in_japanese_with_the_menu():
    response = client().get("/articles/no-such-article/")
    page = response.content.decode()
    assert response.status_code == 404
    assert "ページが見つかりません" in page and 'lang="ja"' in page
    assert 'class="site-nav"' in page and "メルマガ研究所" in page
    assert "Not Found" not in page


def test_404_in_english_for_english_readers():
    response = client("en").get("/no/such/page/")
    page = response.content.decode()
    assert response.status_code == 404 and 'lang="en"' in page
    assert "Page not found" in page and "ページが見つかりません" not in page


@override_settings(ROOT_URLCONF=__name__)
def test_500_is_the_sites_own_page():
    response = client().get("/crash/")
    page = response.content.decode()
    assert response.status_code == 500
    assert "エラーが発生しました" in page and 'class="site-nav"' in page
    assert "contact@example.jp" in page


@override_settings(ROOT_URLCONF=__name__)
def test_500_still_answers_when_the_error_page_itself_fails(monkeypatch):
    def database_down():
        raise DatabaseError("connection refused")

    monkeypatch.setattr("merumaga.institute.context_processors.sender_identity", database_down)
    response = client().get("/crash/")
    assert response.status_code == 500
    assert "ただいまページを表示できません" in response.content.decode()


@override_settings(ROOT_URLCONF=__name__)
def test_403_is_the_sites_own_page():
    response = client().get("/forbidden/")
    assert response.status_code == 403 and "このページは表示できません" in response.content.decode()


def test_a_form_posted_without_its_cookie_says_how_to_go_on():
    response = Client(enforce_csrf_checks=True).post("/subscribe/", {"email": "a@example.jp"})
    page = response.content.decode()
    assert response.status_code == 403
    assert "もう一度お試しください" in page and "CSRF" not in page


@pytest.mark.parametrize(
    "url",
    [
        "/search/?q=abc%00def",
        "/articles/a%00b/",
        "/events/%00/",
        "/subscribe/?email=a%00b@example.jp",
        "/archive/?page=1%00",
        "/unsubscribe/abc%00/",
    ],
)
def test_a_nul_anywhere_in_the_address_is_a_400_page(url):
    response = client().get(url)
    assert response.status_code == 400
    assert "このサイトで扱えない文字" in response.content.decode()


def test_favicon_exists():
    response = client().get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert response.content[22:30] == b"\x89PNG\r\n\x1a\n"


def cache_entries() -> int:
    """Entries in the page cache, on either backend."""
    from django.conf import settings

    if settings.CACHES["default"]["BACKEND"].endswith("DatabaseCache"):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM merumaga_cache")
            return cursor.fetchone()[0]
    return len(cache._cache.get_client().keys("*"))


@pytest.mark.parametrize("value", ["999", "0", "-1", "02", "abc", "１", "2.0"])
def test_a_page_number_outside_the_list_is_404_and_not_cached(value):
    for number in range(12):
        make_article(f"記事{number}")
    assert client().get("/articles/").status_code == 200
    assert client().get("/articles/?page=2").status_code == 200
    before = cache_entries()
    assert client().get(f"/articles/?page={value}").status_code == 404
    assert cache_entries() == before


def test_a_page_value_on_a_page_that_is_no_list_adds_no_cache_entry():
    article = make_article("記事")
    assert client().get(article.get_absolute_url()).status_code == 200
    before = cache_entries()
    for value in ("2", "3", "junk"):
        assert client().get(f"{article.get_absolute_url()}?page={value}").status_code == 200
    assert cache_entries() == before
