"""Click tracking, first party: every link of a mailing as sent goes through /c/… on our site.

When a mailing is compiled for sending, each http(s) link of its text and HTML becomes a Link row
and is written as `SITE_URL/c/<link id>-<mac>/`, short enough for the text part. The redirect
reads the target from the Link row, so a URL nobody wrote into a mailing is never redirected to,
and a forged or altered token gets the site's ordinary 404.

Who clicked is kept only when the site setting asks for it (SiteSettings.clicks_per_reader): then
each link also carries the reader's token (`…/<mailing>-<reader>-<mac>/`), filled in per reader
like the unsubscribe link. Otherwise the link is the same for every reader, and only the click
and its time are written.

Clicks are written in batches: the redirect only appends to this process's buffer, and a thread
writes the buffer every CLICK_FLUSH_SECONDS (and when the process exits, after any write under
way). A batch the database refuses waits for the next round. A process killed without warning
loses at most its unwritten clicks (CLICK_FLUSH_SECONDS' worth, more while the database is
away); a click whose link was deleted meanwhile (its mailing removed) is dropped, the rest of
its batch kept.
"""

import atexit
import html
import logging
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone
from django.utils.encoding import iri_to_uri

from merumaga.institute.services import records_clicks_per_reader
from merumaga.mailings import signals
from merumaga.mailings.models import Click, Link, Mailing
from merumaga.subscribers import tokens
from merumaga.subscribers.models import Subscriber

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication

logger = logging.getLogger(__name__)

LINK = "click"  # address_token purpose of a link's id
CLICKER = "clicker"  # address_token purpose of (mailing, reader)
MAX_URL = 2000  # Link.url's length: a longer link is left as it is (not counted)
_HREF = re.compile(r'href="(https?://[^"]+)"')
# A URL in the text part: printable ASCII up to whitespace, a quote or an angle bracket. Text
# after it (「…をご覧ください」) is not part of it, whatever the editor typed around it.
_TEXT_URL = re.compile(r"https?://[!#-;=?-~]+")
_TRAILING = ".,;:!?]}*'"  # punctuation (and Markdown emphasis) after a URL is not part of it


class UnknownLink(Exception):
    """A /c/ token that is forged, altered, or names no link (any more)."""


def track_links(
    mailing: Mailing,
    text: str,
    page: str,
    *,
    reader_marker: str,
    articles: dict[str, int],
) -> tuple[str, str]:
    """`text` and `page` (HTML) with their links replaced by tracked ones; `reader_marker` ("" when
    clicks are not kept per reader) is appended as the reader's part of each link; `articles`
    maps an article's URL to its id, so that clicks can be shown per article."""
    # Only the HTML's links are tracked; the text part's copies of them follow. A URL found only
    # in the text (typed in prose, never made a link) is left as it is.
    found = [html.unescape(match) for match in _HREF.findall(page)]
    urls = list(dict.fromkeys(url for url in found if len(url) <= MAX_URL))
    if not urls:
        return text, page
    links = _ensure_links(mailing, urls, articles)
    suffix = f"{reader_marker}/" if reader_marker else ""
    tracked = {url: link_url(link) + suffix for url, link in links.items()}

    def in_html(match: re.Match[str]) -> str:
        url = html.unescape(match[1])
        return f'href="{html.escape(tracked[url])}"' if url in tracked else match[0]

    def in_text(match: re.Match[str]) -> str:
        url = _trimmed(match[0])
        return tracked[url] + match[0][len(url) :] if url in tracked else match[0]

    return _TEXT_URL.sub(in_text, text), _HREF.sub(in_html, page)


def link_url(link: Link) -> str:
    return f"{settings.SITE_URL}/c/{tokens.address_token(LINK, link.pk)}/"


def reader_token(mailing_id: int, subscriber_id: int) -> str:
    return tokens.address_token(CLICKER, mailing_id, subscriber_id)


def _trimmed(url: str) -> str:
    """The URL without the punctuation that follows it in prose; a closing parenthesis stays
    when the URL opened one (https://ja.wikipedia.org/wiki/Foo_(bar))."""
    url = url.rstrip(_TRAILING)
    while url.endswith(")") and url.count(")") > url.count("("):
        url = url[:-1].rstrip(_TRAILING)
    return url


def _ensure_links(mailing: Mailing, urls: list[str], articles: dict[str, int]) -> dict[str, Link]:
    """The Link of each URL, made the first time (two workers compiling at once make each once).
    Three queries whatever the number of links."""
    existing = dict(Link.objects.filter(mailing=mailing).values_list("url", "pk"))
    start = len(existing)
    missing = [url for url in urls if url not in existing]
    Link.objects.bulk_create(
        [
            Link(mailing=mailing, url=url, position=start + n, article_id=articles.get(url))
            for n, url in enumerate(missing)
        ],
        ignore_conflicts=True,
    )
    return {link.url: link for link in Link.objects.filter(mailing=mailing, url__in=urls)}


# The redirect.


@dataclass(frozen=True)
class Target:
    link_id: int
    mailing_id: int
    url: str


def resolve(link_token: str, reader: str = "") -> tuple[Target, int | None]:
    """The link a /c/ token names, and the reader who clicked when the link says so and the site
    keeps it. UnknownLink for anything else, so that every bad link looks alike."""
    try:
        (link_id,) = tokens.read_address_token(LINK, link_token, 1)
    except tokens.InvalidToken:
        raise UnknownLink from None
    target = target_of(link_id)
    if target is None:
        raise UnknownLink
    if not reader:
        return target, None
    try:
        mailing_id, subscriber_id = tokens.read_address_token(CLICKER, reader, 2)
    except tokens.InvalidToken:
        raise UnknownLink from None
    if mailing_id != target.mailing_id:
        raise UnknownLink
    return target, subscriber_id if _per_reader() else None


@lru_cache(maxsize=20_000)
def target_of(link_id: int) -> Target | None:
    # A link's target never changes once sent: each process reads it once.
    row = Link.objects.filter(pk=link_id).values_list("mailing_id", "url").first()
    return Target(link_id, row[0], row[1]) if row else None


_setting_read_at = -1e9
_setting = False


def _per_reader() -> bool:
    """The site setting, read at most every 10 s per process (a click is too cheap for a query)."""
    global _setting_read_at, _setting
    if time.monotonic() - _setting_read_at > 10:
        _setting = records_clicks_per_reader()
        _setting_read_at = time.monotonic()
    return _setting


def forget_cached() -> None:
    """Read targets and the setting afresh (tests, where ids come back after a rollback)."""
    global _setting_read_at
    target_of.cache_clear()
    _setting_read_at = -1e9


class ClickBuffer:
    """Clicks waiting to be written: appended by requests, written by `flush` in one INSERT."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the list; held for an append or a swap only
        self._writing = threading.Lock()  # one write at a time, so that exit waits for it
        self._waiting: list[Click] = []
        self._writer: threading.Thread | None = None

    def add(self, target: Target, subscriber_id: int | None) -> None:
        click = Click(link_id=target.link_id, subscriber_id=subscriber_id, at=timezone.now())
        if settings.CLICK_FLUSH_SECONDS <= 0:
            self._write([click])
            return
        with self._lock:
            self._waiting.append(click)
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_while_waiting, daemon=True)
                self._writer.start()

    @property
    def writing(self) -> bool:
        """Whether a writer thread is at work (it ends once nothing waits)."""
        return self._writer is not None

    def flush(self) -> int:
        """Write what waits; the number written. A batch the database refuses (locked, away)
        goes back to wait for the next flush, and the error is raised."""
        with self._writing:
            with self._lock:
                waiting, self._waiting = self._waiting, []
            if not waiting:
                return 0
            try:
                return self._write(waiting)
            except DatabaseError:
                with self._lock:
                    self._waiting[:0] = waiting
                raise

    def _write_while_waiting(self) -> None:
        """Every CLICK_FLUSH_SECONDS, write what waits; end once nothing does (the next click
        starts a writer again). A round that fails is logged, and its clicks wait for the next:
        one bad round never stops the writing."""
        while True:
            time.sleep(settings.CLICK_FLUSH_SECONDS)
            try:
                # A connection the database dropped (a restart, an idle timeout) is replaced,
                # as Django does between requests; this thread has no requests.
                close_old_connections()
                self.flush()
            except Exception:
                logger.exception("clicks could not be written; trying again")
            with self._lock:
                if not self._waiting:
                    self._writer = None
                    return

    def _write(self, clicks: list[Click]) -> int:
        """One INSERT for the batch, after two cheap checks: a click whose link was deleted since
        (its mailing removed) is dropped, a reader deleted since is left out of it. Foreign keys
        are checked only at commit, where one such row would fail the whole batch."""
        links = set(
            Link.objects.filter(pk__in={c.link_id for c in clicks}).values_list("pk", flat=True)
        )
        clickers = {c.subscriber_id for c in clicks if c.subscriber_id}
        # An erased reader is never theirs again (an old mail's link still names them).
        readers = (
            set(
                Subscriber.objects.filter(pk__in=clickers)
                .exclude(status=Subscriber.Status.ERASED)
                .values_list("pk", flat=True)
            )
            if clickers
            else set()
        )
        kept = [c for c in clicks if c.link_id in links]
        for click in kept:
            if click.subscriber_id not in readers:
                click.subscriber_id = None
        Click.objects.bulk_create(kept)
        if kept:
            # Written already: a receiver's failure is logged, never taken for a failed write
            # (that would put the batch back and count its clicks twice).
            for receiver, error in signals.clicks_recorded.send_robust(ClickBuffer, clicks=kept):
                if isinstance(error, Exception):
                    logger.error(
                        "after writing %d clicks (links %s), %s failed: %r",
                        len(kept),
                        sorted({click.link_id for click in kept}),
                        receiver,
                        error,
                    )
        if len(kept) < len(clicks):
            logger.warning("%d clicks dropped: their links are gone", len(clicks) - len(kept))
        return len(kept)


buffer = ClickBuffer()
atexit.register(buffer.flush)


def answer_before_django(django_app: "WSGIApplication") -> "WSGIApplication":
    """The web server's application: a valid /c/ link is counted and redirected here, before
    Django's middleware, URL resolving and response objects; anything else, a bad link
    included (the site's ordinary 404), goes on to Django, whose view (views.click) answers
    the same way. Why: right after a large mailing lands the redirect is the busiest URL, and
    this halves its cost per request (bench/clicks.py, README "Clicks")."""

    def application(environ: dict[str, Any], start_response: "StartResponse") -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if path.startswith("/c/") and path.endswith("/") and method in ("GET", "HEAD"):
            parts = path[3:-1].split("/")
            if len(parts) <= 2:
                try:
                    target, subscriber_id = resolve(parts[0], parts[1] if len(parts) == 2 else "")
                except (UnknownLink, DatabaseError):
                    pass  # Django answers: its 404, or its handling of a database away
                else:
                    if method == "GET":
                        buffer.add(target, subscriber_id)
                    start_response("302 Found", _redirect_headers(target.url))
                    return [b""]
        return django_app(environ, start_response)

    return application


def _redirect_headers(url: str) -> list[tuple[str, str]]:
    # As Django's HttpResponseRedirect, never_cache and SecurityMiddleware would write them:
    # the reader's token never reaches the target in a Referer (Referrer-Policy).
    headers = [
        ("Location", iri_to_uri(url)),
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", "0"),
        ("Cache-Control", "max-age=0, no-cache, no-store, must-revalidate, private"),
        ("Referrer-Policy", settings.SECURE_REFERRER_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY),
    ]
    if settings.SECURE_HSTS_SECONDS:
        headers.append(("Strict-Transport-Security", f"max-age={settings.SECURE_HSTS_SECONDS}"))
    return headers
