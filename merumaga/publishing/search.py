"""Search over published articles and reports, for Japanese text, on SQLite and PostgreSQL.

Japanese puts no spaces between words, so word tokenisers do not help: both backends match
substrings, with a trigram index to serve the terms that are long enough.

- SQLite: the FTS5 table `publishing_search` (trigram tokenizer), kept in sync by triggers on the
  content tables, so that every code path (admin, services, `.update()`, loaddata) keeps it right.
  Terms of 3+ characters go through MATCH. A trigram index cannot answer shorter terms (MATCH finds
  nothing), and on SQLite 3.40 `LIKE '%電池%'` on the FTS table silently returns no rows as well,
  so short terms are matched with LIKE on the content tables themselves.
- PostgreSQL: `icontains` on the content columns. Django writes it as `UPPER(col::text) LIKE
  UPPER(…)` (not ILIKE), so the GIN trigram indexes are on UPPER(col); they serve terms of 3+
  characters, and shorter terms are still answered correctly, by a scan.

On SQLite, Django alters a table by rebuilding it (new table, copy, DROP, rename), and the DROP
takes the table's triggers with it. So after every `migrate`, `ensure_sqlite_index` (connected to
post_migrate in apps.py) rebuilds the index if any trigger is missing; a test in
tests/test_search.py fails when the triggers are missing.
"""

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connections
from django.db.models import Q, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from merumaga.publishing.models import Article, Report

ARTICLE = "article"
REPORT = "report"

MAX_QUERY_LENGTH = 100
MAX_LIMIT = 100
SNIPPET_LENGTH = 120
# Characters of context kept before the first match in a snippet.
SNIPPET_LEAD = 30
# The trigram index holds sequences of three characters; shorter terms need a scan.
TRIGRAM = 3

FTS_TABLE = "publishing_search"

# The columns searched, per kind; the snippet comes from the text columns, in this order.
TITLE_FIELD = "title"
TEXT_FIELDS = {ARTICLE: ("digest", "body"), REPORT: ("summary",)}


@dataclass(frozen=True)
class Hit:
    kind: str  # ARTICLE or REPORT
    url: str
    title_html: SafeString
    snippet_html: SafeString
    published_at: datetime


@dataclass
class SearchResults:
    total: int
    hits: list[Hit] = field(default_factory=list)


def normalise_query(query: str) -> str:
    """NFKC (full-width ＥＶ → EV, the ideographic space → a space), one space between words,
    at most MAX_QUERY_LENGTH characters."""
    text = unicodedata.normalize("NFKC", query or "")
    return " ".join(text.split())[:MAX_QUERY_LENGTH].strip()


def query_terms(query: str) -> list[str]:
    """The words that must all be found, without repeats."""
    return list(dict.fromkeys(normalise_query(query).split()))


def search(query: str, limit: int = 20, offset: int = 0) -> SearchResults:
    """Published articles and reports containing every word of `query`, newest first."""
    terms = query_terms(query)
    if not terms:
        return SearchResults(total=0)
    articles = _matching(Article, ARTICLE, terms)
    reports = _matching(Report, REPORT, terms)
    total = articles.count() + reports.count()
    limit, offset = max(0, min(limit, MAX_LIMIT)), max(0, offset)
    # Past the end, no query with the (possibly huge) offset reaches the database.
    if offset >= total or limit == 0:
        return SearchResults(total=total)
    pattern = _match_pattern(terms)
    hits = [_hit(kind, item, pattern) for kind, item in _page(articles, reports, limit, offset)]
    return SearchResults(total=total, hits=hits)


def _matching(model, kind: str, terms: list[str]) -> QuerySet:
    queryset = model.objects.published()
    scanned = terms
    if connections[queryset.db].vendor == "sqlite":
        long_terms = [term for term in terms if len(term) >= TRIGRAM]
        scanned = [term for term in terms if len(term) < TRIGRAM]
        if long_terms:
            queryset = queryset.filter(pk__in=_fts_ids(kind, long_terms))
    for term in scanned:
        queryset = queryset.filter(_contains(kind, term))
    return queryset


def _fts_ids(kind: str, terms: list[str]) -> RawSQL:
    sql = f"SELECT object_id FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s AND kind = %s"
    return RawSQL(sql, (fts_query(terms), kind))


def fts_query(terms: list[str]) -> str:
    """An FTS5 query finding rows with every term: each term quoted as a string ("" for "), so
    that AND, NEAR(, *, - and the like are searched as text, never read as query syntax."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


def _contains(kind: str, term: str) -> Q:
    condition = Q(**{f"{TITLE_FIELD}__icontains": term})
    for name in TEXT_FIELDS[kind]:
        condition |= Q(**{f"{name}__icontains": term})
    return condition


def _page(articles: QuerySet, reports: QuerySet, limit: int, offset: int) -> list[tuple]:
    """(kind, object) for one page of both kinds together, newest first."""
    columns = ("kind", "id", "published_at")
    rows = (
        articles.order_by()
        .annotate(kind=Value(ARTICLE))
        .values_list(*columns)
        .union(reports.order_by().annotate(kind=Value(REPORT)).values_list(*columns), all=True)
        .order_by("-published_at", "kind", "-id")[offset : offset + limit]
    )
    rows = list(rows)
    # body_html is not needed and can be long.
    loaded: dict[str, Mapping[int, Article | Report]] = {
        ARTICLE: Article.objects.defer("body_html").in_bulk(
            [pk for kind, pk, _ in rows if kind == ARTICLE]
        ),
        REPORT: Report.objects.in_bulk([pk for kind, pk, _ in rows if kind == REPORT]),
    }
    # A row deleted between the two queries is left out rather than failing the page.
    return [(kind, loaded[kind][pk]) for kind, pk, _ in rows if pk in loaded[kind]]


def _hit(kind: str, item, pattern: re.Pattern) -> Hit:
    texts = [getattr(item, name) for name in TEXT_FIELDS[kind]]
    return Hit(
        kind=kind,
        url=item.get_absolute_url(),
        title_html=highlight(item.title, pattern),
        snippet_html=snippet(texts, pattern),
        published_at=item.published_at,
    )


def _match_pattern(terms: list[str]) -> re.Pattern:
    # Longest first, so that a term inside a longer one does not cut the longer one's mark.
    alternatives = sorted(terms, key=len, reverse=True)
    return re.compile("|".join(re.escape(term) for term in alternatives), re.IGNORECASE)


def highlight(text: str, pattern: re.Pattern) -> SafeString:
    """`text` HTML-escaped, with every match in <mark>: each piece is escaped before it is
    joined, so the only markup in the result is ours."""
    pieces: list[str] = []
    end = 0
    for match in pattern.finditer(text):
        pieces.append(escape(text[end : match.start()]))
        pieces.append(f"<mark>{escape(match.group())}</mark>")
        end = match.end()
    pieces.append(escape(text[end:]))
    return mark_safe("".join(pieces))  # every piece was escaped above


def snippet(texts: list[str], pattern: re.Pattern) -> SafeString:
    """About SNIPPET_LENGTH characters around the first match in the first text that has one;
    the start of the first text when only the title matched."""
    plain = [text for text in (_plain_text(text) for text in texts) if text]
    for text in plain:
        match = pattern.search(text)
        if match:
            return _window(text, max(0, match.start() - SNIPPET_LEAD), pattern)
    return _window(plain[0] if plain else "", 0, pattern)


def _window(text: str, start: int, pattern: re.Pattern) -> SafeString:
    end = start + SNIPPET_LENGTH
    body = highlight(text[start:end], pattern)
    before = "…" if start > 0 else ""
    after = "…" if end < len(text) else ""
    return mark_safe(f"{before}{body}{after}")  # body is escaped; the rest is ours


_MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKDOWN_LINE_START = re.compile(r"^[ \t]*(?:#{1,6}|>|[-*+]|\d+\.)[ \t]+", re.MULTILINE)
_MARKDOWN_EMPHASIS = re.compile(r"\*{1,3}|`+")


def _plain_text(markdown: str) -> str:
    """Markdown as the reader sees it, roughly: a snippet full of ** and ## reads badly.
    Underscores are kept: they are more often part of a name than emphasis."""
    text = _MARKDOWN_LINK.sub(r"\1", markdown or "")
    text = _MARKDOWN_LINE_START.sub("", text)
    text = _MARKDOWN_EMPHASIS.sub("", text)
    return " ".join(text.split())


# --- Index definitions, used by migration 0002 (and by any later migration that must restore them)

# kind, table, rowid, indexed text, columns whose change refreshes the row. Both kinds share one
# FTS table, so report rowids are negated: each row is still found by rowid, not by a scan.
_SQLITE_SOURCES = (
    (
        ARTICLE,
        "publishing_article",
        "{row}.id",
        "{row}.digest || char(10) || {row}.body",
        "digest, body",
    ),
    (REPORT, "publishing_report", "-{row}.id", "{row}.summary", "summary"),
)


def _sqlite_insert(kind: str, rowid: str, text: str, row: str) -> str:
    values = (rowid.format(row=row), f"'{kind}'", f"{row}.id", f"{row}.title", text.format(row=row))
    return (
        f"INSERT INTO {FTS_TABLE} (rowid, kind, object_id, title, text) SELECT {', '.join(values)}"
    )


def _sqlite_statements() -> list[str]:
    statements = [
        # kind and object_id are UNINDEXED: otherwise the word "article" would match every article.
        f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5("
        "kind UNINDEXED, object_id UNINDEXED, title, text, tokenize = 'trigram')"
    ]
    for kind, table, rowid, text, columns in _SQLITE_SOURCES:
        new_row = _sqlite_insert(kind, rowid, text, "new")
        old_rowid = rowid.format(row="old")
        trigger = f"{FTS_TABLE}_{kind}"
        statements += [
            f"CREATE TRIGGER {trigger}_insert AFTER INSERT ON {table} BEGIN {new_row}; END",
            f"CREATE TRIGGER {trigger}_update AFTER UPDATE OF id, title, {columns} ON {table} "
            f"BEGIN DELETE FROM {FTS_TABLE} WHERE rowid = {old_rowid}; {new_row}; END",
            f"CREATE TRIGGER {trigger}_delete AFTER DELETE ON {table} "
            f"BEGIN DELETE FROM {FTS_TABLE} WHERE rowid = {old_rowid}; END",
            # What is already there.
            f"{_sqlite_insert(kind, rowid, text, table)} FROM {table}",
        ]
    return statements


def sqlite_trigger_names() -> list[str]:
    return [
        f"{FTS_TABLE}_{kind}_{event}"
        for kind, *_ in _SQLITE_SOURCES
        for event in ("insert", "update", "delete")
    ]


def drop_sqlite_index(connection) -> None:
    with connection.cursor() as cursor:
        for name in sqlite_trigger_names():
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        cursor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")


def ensure_sqlite_index(connection) -> None:
    """Rebuild the index if a table rebuild (a later migration) took any of its triggers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        present = {row[0] for row in cursor.fetchall()}
    if not set(sqlite_trigger_names()) <= present:
        create_sqlite_index(connection)


def create_sqlite_index(connection) -> None:
    """(Re)create the FTS table and its triggers, and fill it; safe to run again at any time:
    the index holds nothing that is not derived from the content tables."""
    drop_sqlite_index(connection)
    with connection.cursor() as cursor:
        for statement in _sqlite_statements():
            cursor.execute(statement)


# Table, column, index name. Django's icontains is UPPER(col::text) LIKE UPPER(…), and an index
# is used only for the very expression it was built on.
_POSTGRESQL_INDEXES = (
    ("publishing_article", "title", "publishing_article_title_trgm"),
    ("publishing_article", "digest", "publishing_article_digest_trgm"),
    ("publishing_article", "body", "publishing_article_body_trgm"),
    ("publishing_report", "title", "publishing_report_title_trgm"),
    ("publishing_report", "summary", "publishing_report_summary_trgm"),
)


def postgresql_index_names() -> list[str]:
    return [name for _, _, name in _POSTGRESQL_INDEXES]


def create_postgresql_indexes(connection) -> None:
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for table, column, name in _POSTGRESQL_INDEXES:
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
                f"USING gin (UPPER({column}::text) gin_trgm_ops)"
            )


def drop_postgresql_indexes(connection) -> None:
    # The extension stays: something else in the database may use it.
    with connection.cursor() as cursor:
        for name in postgresql_index_names():
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
