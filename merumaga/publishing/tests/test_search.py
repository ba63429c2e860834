"""Site search: Japanese terms of every length, on SQLite (FTS5 trigram) and PostgreSQL (pg_trgm).

Run on both backends: without DATABASE_URL (SQLite), and with DATABASE_URL=postgres://…
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from merumaga.publishing import search as site_search
from merumaga.publishing.models import Article, Report, Status
from merumaga.publishing.search import search

pytestmark = pytest.mark.django_db


def make_article(slug: str, title: str, digest: str = "", body: str = "", **fields) -> Article:
    fields.setdefault("status", Status.PUBLISHED)
    fields.setdefault("published_at", timezone.now() - timedelta(days=1))
    return Article.objects.create(title=title, slug=slug, digest=digest, body=body, **fields)


def make_report(slug: str, title: str, summary: str, **fields) -> Report:
    fields.setdefault("status", Status.PUBLISHED)
    fields.setdefault("published_at", timezone.now() - timedelta(days=1))
    return Report.objects.create(
        title=title, slug=slug, summary=summary, pdf=f"reports/{slug}.pdf", **fields
    )


def slugs(query: str) -> set[str]:
    """The slugs found, taken from the hits' URLs (reverse() of the article/report page)."""
    return {hit.url.rstrip("/").rsplit("/", 1)[-1] for hit in search(query, limit=100).hits}


@pytest.fixture
def corpus():
    now = timezone.now()
    return {
        "taxi": make_article(
            "taxi",
            "自動運転タクシー、都内で営業開始",
            "運転席に人がいない車が、港区で客を乗せ始めた。",
            "レベル4の自動運転タクシーは、遠隔監視のもとで走る。料金は通常のタクシーと同じ。",
            published_at=now - timedelta(days=3),
        ),
        "battery": make_article(
            "battery",
            "全固体電池の量産が始まる",
            "EVの航続距離を大きく伸ばす全固体電池を、国内メーカーが量産する。",
            "充電時間は約10分。**電解質**が固体のため、発火しにくい。",
            published_at=now - timedelta(days=2),
        ),
        "genai": make_article(
            "genai",
            "生成AIで議事録を要約",
            "自治体の会議録を生成AIが要約する実験が始まった。",
            "職員の確認作業は半分になったという。",
            published_at=now - timedelta(days=1),
        ),
        "recycle": make_report(
            "recycle",
            "EV用電池のリサイクル",
            "使い終えたEVの電池から、リチウムとニッケルを回収する技術を比べた。",
            published_at=now - timedelta(hours=1),
        ),
        "draft": make_article(
            "draft",
            "未発表の試作車両",
            "社外秘の新型バッテリーを積んだ試作車両の話。",
            status=Status.DRAFT,
            published_at=None,
        ),
        "future": make_article(
            "future",
            "来週公開の水素燃料記事",
            "水素燃料の補給網について。",
            published_at=now + timedelta(days=7),
        ),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("車", {"taxi"}),  # 1 character: 車 in 「人がいない車」
        ("電池", {"battery", "recycle"}),  # 2 characters, in an article and a report
        ("EV", {"battery", "recycle"}),  # 2 characters, ASCII
        ("ev", {"battery", "recycle"}),  # and case does not matter
        ("自動運", {"taxi"}),  # 3 characters: the trigram index
        ("自動運転タクシー", {"taxi"}),
        ("要約", {"genai"}),  # in the title and the digest
        ("発火しにくい", {"battery"}),  # only in the body
        ("ニッケル", {"recycle"}),  # only in a report's summary
        ("量子コンピュータ", set()),
        ("時", {"battery"}),  # only in the body (充電時間)
    ],
)
def test_terms_of_every_length_are_found(corpus, query, expected):
    assert slugs(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("EV 電池", {"battery", "recycle"}),  # two short terms
        ("全固体電池 EV", {"battery"}),  # a trigram term and a short one
        ("電池 リサイクル", {"recycle"}),  # a short term and a trigram term
        ("自動運転 タクシー", {"taxi"}),  # two trigram terms
        ("自動運転\u3000タクシー", {"taxi"}),  # separated by an ideographic space
        ("自動運転 電池", set()),  # each is found, never both in one article
        ("生成AI 車", set()),
    ],
)
def test_every_word_must_match(corpus, query, expected):
    assert slugs(query) == expected


def test_drafts_and_future_articles_are_not_found(corpus):
    assert slugs("試作車両") == set()
    assert slugs("試") == set()
    assert slugs("水素燃料") == set()
    corpus["draft"].status, corpus["draft"].published_at = Status.PUBLISHED, timezone.now()
    corpus["draft"].save()
    assert slugs("試作車両") == {"draft"}


def test_an_edited_article_is_found_by_its_new_words(corpus):
    article = corpus["genai"]
    article.body = "新しい段落: 量子コンピュータで暗号を破る研究。"
    article.save()
    assert slugs("量子コンピュータ") == {"genai"}
    assert slugs("確認作業") == set()  # the old body is gone from the index

    # A bulk update bypasses save() and signals; the triggers still see it.
    Article.objects.filter(pk=article.pk).update(title="量子暗号の新方式")
    assert slugs("量子暗号") == {"genai"}
    assert slugs("生成AI") == {"genai"}  # still in the digest
    Report.objects.filter(slug="recycle").update(summary="ナトリウムイオン電池の比較。")
    assert slugs("ナトリウム") == {"recycle"}
    assert slugs("ニッケル") == set()


def test_a_deleted_article_disappears(corpus):
    assert slugs("全固体電池") == {"battery"}
    corpus["battery"].delete()
    assert slugs("全固体電池") == set()
    assert slugs("電池") == {"recycle"}
    corpus["recycle"].delete()
    assert search("リサイクル").total == 0


def test_an_unpublished_article_disappears(corpus):
    Article.objects.filter(slug="taxi").update(status=Status.DRAFT)
    assert slugs("自動運転") == set()


def test_matches_are_marked_in_title_and_snippet(corpus):
    hits = {hit.url: hit for hit in search("電池").hits}
    battery = hits[corpus["battery"].get_absolute_url()]
    assert battery.kind == "article"
    assert battery.title_html == "全固体<mark>電池</mark>の量産が始まる"
    assert "<mark>電池</mark>" in battery.snippet_html
    report = hits[corpus["recycle"].get_absolute_url()]
    assert report.kind == "report"
    assert report.snippet_html.startswith("使い終えたEVの<mark>電池</mark>から")
    assert report.published_at == corpus["recycle"].published_at


def test_every_term_is_marked_whatever_its_case(corpus):
    hit = search("ev 全固体電池").hits[0]
    assert hit.snippet_html.count("<mark>EV</mark>") == 1
    assert "<mark>全固体電池</mark>" in hit.snippet_html


def test_snippet_is_about_120_characters_around_the_first_match():
    body = "前置き。" * 60 + "ここに核融合の話がある。" + "後書き。" * 60
    make_article("long", "長い記事", "要約には無い。", body)
    [hit] = search("核融合").hits
    text = hit.snippet_html.replace("<mark>", "").replace("</mark>", "")
    assert text.startswith("…") and text.endswith("…")
    assert 100 <= len(text) <= 125
    assert "ここに<mark>核融合</mark>の話がある。" in hit.snippet_html


def test_markdown_marks_are_left_out_of_snippets(corpus):
    [hit] = search("電解質").hits
    assert "**" not in hit.snippet_html
    assert "<mark>電解質</mark>が固体のため" in hit.snippet_html


def test_snippet_shows_the_start_when_only_the_title_matches(corpus):
    [hit] = search("営業開始").hits
    assert hit.title_html.endswith("<mark>営業開始</mark>")
    assert hit.snippet_html.startswith("運転席に人がいない車が")


def test_html_in_content_is_escaped():
    make_article(
        "xss",
        "<b>太字</b>のタイトルと電池",
        "",
        '本文に<script>alert("電池")</script>と & が入っている。',
    )
    [hit] = search("電池").hits
    assert "&lt;script&gt;alert(&quot;<mark>電池</mark>&quot;)&lt;/script&gt;" in hit.snippet_html
    assert "<script>" not in hit.snippet_html
    assert "&amp;" in hit.snippet_html
    assert hit.title_html == "&lt;b&gt;太字&lt;/b&gt;のタイトルと<mark>電池</mark>"


def test_a_query_with_markup_is_escaped_in_the_highlight():
    make_article("amp", "R&Dの予算", "研究開発 (R&D) の予算が増えた。")
    [hit] = search("R&D").hits
    assert hit.title_html == "<mark>R&amp;D</mark>の予算"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ＥＶ", {"battery", "recycle"}),  # full-width letters
        ("ｅｖ　電池", {"battery", "recycle"}),  # and an ideographic space
        ("ﾀｸｼｰ", {"taxi"}),  # half-width katakana
        ("  自動運転   タクシー  ", {"taxi"}),
        ("\t電池\n", {"battery", "recycle"}),
    ],
)
def test_queries_are_normalised(corpus, query, expected):
    assert slugs(query) == expected


def test_normalise_query():
    assert site_search.normalise_query("　ＥＶ　　電池 ") == "EV 電池"
    assert len(site_search.normalise_query("長" * 500)) == site_search.MAX_QUERY_LENGTH
    assert site_search.query_terms("電池 EV 電池") == ["電池", "EV"]


@pytest.mark.parametrize("query", ["", "   ", "\u3000\u3000", "\n"])
def test_an_empty_query_finds_nothing(corpus, query):
    assert search(query).total == 0
    assert search(query).hits == []


def test_a_very_long_query_is_cut_not_refused(corpus):
    assert search("電" * 5000).total == 0
    assert search("電池 " + "x" * 5000).total == 0  # the second word, cut, is in no article


@pytest.mark.parametrize(
    "query",
    [
        '"NEAR(',
        "NEAR(a b)",
        "AND",
        "x-y",
        "*",
        '"',
        "構文 *",
        "OR",
        "-",
        "(",
        "^",
        "title:",
        "%",
        "_",
    ],
)
def test_fts5_syntax_is_searched_as_text(query):
    make_article(
        "syntax",
        "検索構文の例",
        'FTS5の構文 "NEAR(a b)" AND x-y * ^ OR ( title: 100% a_b',
    )
    make_article("plain", "関係のない記事", "ここには記号がない。")
    assert slugs(query) == {"syntax"}


def test_a_quote_inside_a_term_is_part_of_the_term():
    make_article("quoted", "引用", '彼は"未来"と言った。')
    assert slugs('"""') == set()
    assert slugs('"未来"') == {"quoted"}
    assert slugs('"未来" 言った') == {"quoted"}
    assert slugs('"過去"') == set()


def test_the_kind_column_is_not_searched(corpus):
    # On SQLite the FTS table holds the kind; it must not make every article match "article".
    assert search("article").total == 0
    assert search("report").total == 0


def test_newest_first_across_articles_and_reports(corpus):
    assert [hit.url for hit in search("始").hits] == [
        corpus["genai"].get_absolute_url(),  # 1 day ago
        corpus["battery"].get_absolute_url(),  # 2 days ago
        corpus["taxi"].get_absolute_url(),  # 3 days ago
    ]
    assert [hit.kind for hit in search("EV").hits] == ["report", "article"]


def test_limit_and_offset_page_through_every_hit():
    now = timezone.now()
    for number in range(7):
        make_article(
            f"a{number}", f"蓄電池の記事 {number}", published_at=now - timedelta(hours=number)
        )
    for number in range(3):
        make_report(
            f"r{number}",
            f"蓄電池のレポート {number}",
            "概要。",
            published_at=now - timedelta(hours=number, minutes=30),
        )
    pages = [search("蓄電池", limit=4, offset=offset) for offset in (0, 4, 8, 12)]
    assert [page.total for page in pages] == [10, 10, 10, 10]
    assert [len(page.hits) for page in pages] == [4, 4, 2, 0]
    dates = [hit.published_at for page in pages for hit in page.hits]
    assert dates == sorted(dates, reverse=True)
    assert len({hit.url for page in pages for hit in page.hits}) == 10
    assert search("蓄電池", limit=4, offset=10**30).hits == []
    assert len(search("蓄電池", limit=-5, offset=-3).hits) == 0


def test_sqlite_like_on_the_trigram_table_misses_short_terms(corpus):
    """Why short terms are matched on the content tables: on SQLite 3.40, LIKE against the FTS5
    trigram table silently returns nothing for a 2-character Japanese term, and MATCH cannot
    answer it either. (On PostgreSQL there is no FTS table; icontains answers every length.)"""
    found = slugs("電池")
    assert found == {"battery", "recycle"}
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {site_search.FTS_TABLE} WHERE text LIKE %s", ["%電池%"]
        )
        assert cursor.fetchone()[0] == 0
        cursor.execute(
            f"SELECT count(*) FROM {site_search.FTS_TABLE} WHERE {site_search.FTS_TABLE} MATCH %s",
            ['"電池"'],
        )
        assert cursor.fetchone()[0] == 0
        # Three characters, and the same table answers.
        cursor.execute(
            f"SELECT count(*) FROM {site_search.FTS_TABLE} WHERE text LIKE %s", ["%全固体%"]
        )
        assert cursor.fetchone()[0] == 1


def test_the_index_exists_after_every_migration():
    """A later migration that rebuilds publishing_article on SQLite drops its triggers; this test
    fails then, and the migration must call search.create_sqlite_index (see search.py)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            triggers = {row[0] for row in cursor.fetchall()}
            assert set(site_search.sqlite_trigger_names()) <= triggers
            assert len(site_search.sqlite_trigger_names()) == 6
        else:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE %s", ["%_trgm"])
            assert {row[0] for row in cursor.fetchall()} == set(
                site_search.postgresql_index_names()
            )


def test_postgresql_uses_the_trigram_index_for_icontains():
    """Django writes icontains as UPPER(col::text) LIKE UPPER(…): an index on the bare column
    would never be used, so the indexes are on UPPER(col). (Nothing to check on SQLite.)"""
    queryset = Article.objects.filter(body__icontains="自動運転").order_by()
    assert queryset.count() == 0
    if connection.vendor != "postgresql":
        return
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the table is tiny: force the choice
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "publishing_article_body_trgm" in plan


# --- The page


def test_the_page_lists_results_with_marks(client, corpus):
    response = client.get(reverse("search"), {"q": "電池"})
    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="search-query">検索</label>' in html
    assert 'type="search"' in html and 'name="q"' in html and 'value="電池"' in html
    assert "2件" in html
    assert "全固体<mark>電池</mark>の量産が始まる" in html
    assert f'href="{corpus["recycle"].get_absolute_url()}"' in html
    assert "研究レポート" in html and "記事" in html
    assert "no-store" in response["Cache-Control"]


def test_the_page_says_when_nothing_matches(client, corpus):
    response = client.get(reverse("search"), {"q": "量子コンピュータ"})
    assert response.status_code == 200
    assert "「量子コンピュータ」に一致する記事はありません" in response.content.decode()


def test_the_page_escapes_the_query(client, corpus):
    response = client.get(reverse("search"), {"q": "<script>x</script>"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "<script>x" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html


def test_the_page_without_a_query_shows_the_form(client, corpus):
    response = client.get(reverse("search"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="q"' in html
    assert "一致する記事はありません" not in html


def test_the_page_is_paginated(client):
    now = timezone.now()
    for number in range(23):
        make_article(
            f"p{number}", f"燃料電池 第{number}回", published_at=now - timedelta(hours=number)
        )
    first = client.get(reverse("search"), {"q": "燃料電池"}).content.decode()
    assert first.count("<mark>燃料電池</mark>") == 20
    assert "23件" in first
    assert "?q=%E7%87%83%E6%96%99%E9%9B%BB%E6%B1%A0&amp;page=2" in first
    second = client.get(reverse("search"), {"q": "燃料電池", "page": "2"}).content.decode()
    assert second.count("<mark>燃料電池</mark>") == 3
    assert "第19回" not in second and "第22回" in second


@pytest.mark.parametrize("page", ["abc", "0", "-1", "1.5", "", "9" * 5000, "%00"])
def test_a_bad_page_number_shows_the_first_page(client, corpus, page):
    response = client.get(reverse("search"), {"q": "電池", "page": page})
    assert response.status_code == 200
    assert response.content.decode().count("<mark>電池</mark>") >= 2


@pytest.mark.parametrize("page", ["2", "99999999999999999999999"])
def test_a_page_past_the_end_is_not_found(client, corpus, page):
    response = client.get(reverse("search"), {"q": "電池", "page": page})
    assert response.status_code == 404


@pytest.mark.django_db
def test_after_migrate_the_search_index_is_complete():
    """On SQLite a later migration's table rebuild drops the triggers; migrate puts them back."""
    from django.core.management import call_command

    if connection.vendor != "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname FROM pg_indexes")
            present = {row[0] for row in cursor.fetchall()}
        assert set(site_search.postgresql_index_names()) <= present
        return
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER {site_search.sqlite_trigger_names()[0]}")
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        assert set(site_search.sqlite_trigger_names()) <= {row[0] for row in cursor.fetchall()}
