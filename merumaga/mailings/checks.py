"""What must hold before a mailing may go out. Each problem is a sentence for the editor."""

import re
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db.models import QuerySet
from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _

from merumaga.charset import JisProblem, jis_problems
from merumaga.mailings.contents import publishing_status_ok
from merumaga.mailings.models import Mailing
from merumaga.mailings.rendering import compile_mailing

_LINK = re.compile(r'href="([^"]+)"')
_TAG = re.compile(r"<[a-zA-Z/!][^>]*>")


def content_problems(mailing: Mailing) -> list[str]:
    """Empty or HTML subject, broken links to our own site, missing footer, too large."""
    problems = []
    if not mailing.subject.strip():
        problems.append(_("件名が空です。"))
    if _TAG.search(mailing.subject) or "\n" in mailing.subject or "\r" in mailing.subject:
        problems.append(_("件名にHTMLタグや改行は使えません。"))
    if not publishing_status_ok(mailing):
        problems.append(_("お知らせする記事またはレポートが公開されていません。"))
    if mailing.kind == Mailing.Kind.WEEKLY and not mailing.articles.exists():
        problems.append(_("週報に記事がありません。"))
    needs: dict[str, object] = {
        Mailing.Kind.ARTICLE: mailing.article,
        Mailing.Kind.REPORT: mailing.report,
        Mailing.Kind.EVENT_INVITATION: mailing.event,
        Mailing.Kind.EVENT_REMINDER: mailing.event,
    }
    if mailing.kind in needs and needs[mailing.kind] is None:
        problems.append(_("お知らせする対象 (記事・レポート・イベント) が削除されています。"))
    if problems:
        return problems
    compiled = compile_mailing(mailing, "ja")
    problems += broken_site_links(compiled.html)
    if "\ue000unsubscribe_url\ue001" not in compiled.html or "unsubscribe_url" not in compiled.text:
        problems.append(_("配信停止のリンクがありません。"))
    if compiled.sender.postal_address not in compiled.text:
        problems.append(_("送信者の住所がありません (サイト設定を確認してください)。"))
    size_kb = len(compiled.html.encode("utf-8")) / 1024
    if size_kb > settings.MAIL_HTML_MAX_KB:
        problems.append(
            _("HTMLが大きすぎます (%(size)d KB、上限 %(limit)d KB)。記事を減らしてください。")
            % {"size": size_kb, "limit": settings.MAIL_HTML_MAX_KB}
        )
    return problems


def broken_site_links(page: str) -> list[str]:
    """Links to our own site that lead nowhere (a deleted article, a mistyped path)."""
    site = urlsplit(settings.SITE_URL)
    broken = []
    for url in set(_LINK.findall(page)):
        parts = urlsplit(url.replace("&amp;", "&"))
        if parts.netloc != site.netloc or "\ue000" in url:
            continue
        try:
            match = resolve(unquote(parts.path))  # Japanese slugs arrive percent-encoded
        except Resolver404:
            broken.append(url)
            continue
        if not _exists(match):
            broken.append(url)
    return [_("サイト内のリンク切れ: %(url)s") % {"url": url} for url in sorted(broken)]


def _exists(match) -> bool:
    """Content links must point at something published (the archive copy is made on sending)."""
    from merumaga.publishing.models import Article, Event, Report
    from merumaga.publishing.rsvp import public_events

    models: dict[str, QuerySet[Article] | QuerySet[Report] | QuerySet[Event]] = {
        "article": Article.objects.published(),
        "report": Report.objects.published(),
    }
    models["report_pdf"] = models["report"]
    models["event"] = public_events()  # what its page shows
    if match.url_name.startswith("short_"):  # /a/12/: by id
        return models[match.kwargs["model"]].filter(pk=match.kwargs["pk"]).exists()
    queryset = models.get(match.url_name)
    if queryset is None:
        return True
    return queryset.filter(slug=match.kwargs.get("slug")).exists()


def jis_warnings(mailing: Mailing) -> list[JisProblem]:
    """What ISO-2022-JP readers would not get as written, in the editor's fields: the mailing's
    own, the content it announces or gathers, and the sender's name. Never a refusal: such
    readers get that mail as UTF-8 (logged when sent), but the editor may prefer to rewrite."""
    from merumaga.institute.services import sender_identity
    from merumaga.views import text_fields

    fields = text_fields(mailing)
    items = [mailing.article, mailing.report, mailing.event]
    if mailing.kind == Mailing.Kind.WEEKLY:
        items += list(mailing.articles.all())
    for item in filter(None, items):
        kind = str(item._meta.verbose_name)
        fields += [(f"{kind}「{item}」の{label}", text) for label, text in text_fields(item)]
    fields.append((_("送信者名 (サイト設定)"), sender_identity().organisation_name))
    return jis_problems(fields)
