"""What a mailing says to one reader, as the bytes handed to the relay.

A mailing is compiled once per language: its three templates (subject, text, HTML) are rendered
with markers where the reader's own parts go (greeting, links). For each reader only those markers
are filled in, then the charset is chosen (ISO-2022-JP for readers who asked for it, unless the text
cannot be carried) and the MIME bytes are built. Cost per reader: a few string replacements and
one MIME build, no template rendering and no query.
"""

import html
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import css_inline
from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from merumaga import mime, outgoing
from merumaga.institute.services import (
    SenderIdentity,
    records_clicks_per_reader,
    sender_identity,
    site_logo,
)
from merumaga.mailings import clicks
from merumaga.mailings.contents import weekly_extras, weekly_sections
from merumaga.mailings.models import Mailing
from merumaga.publishing import ics
from merumaga.publishing.models import Article, Event, Report
from merumaga.publishing.rsvp_links import rsvp_link_url
from merumaga.subscribers import tokens
from merumaga.subscribers.mail import absolute_url

TEMPLATES: dict[str, str] = {
    Mailing.Kind.WEEKLY: "weekly",
    Mailing.Kind.ARTICLE: "article",
    Mailing.Kind.REPORT: "report",
    Mailing.Kind.EVENT_INVITATION: "event_invitation",
    Mailing.Kind.EVENT_REMINDER: "event_reminder",
    Mailing.Kind.CUSTOM: "custom",
}
# The reader's own parts. Private-use characters: nothing an editor writes can collide with them.
PERSONAL = ("greeting", "email", "preferences_url", "unsubscribe_url", "rsvp_url", "clicker")
_inliner = css_inline.CSSInliner(keep_style_tags=False)


class MailReader(tokens.TokenHolder, Protocol):
    """What a mail to a reader needs of them: a Subscriber, or a row of its fields
    (delivery.fastrender.Reader)."""

    @property
    def name(self) -> str: ...
    @property
    def email(self) -> str | None: ...
    @property
    def charset(self) -> str: ...


def marker(name: str) -> str:
    return f"\ue000{name}\ue001"


@dataclass
class Compiled:
    """One mailing in one language, rendered once, with markers for the reader's parts."""

    mailing: Mailing
    language: str
    subject: str
    text: str
    html: str
    sender: SenderIdentity
    attachments: list[mime.Attachment] = field(default_factory=list)
    clicks_per_reader: bool = False  # its tracked links carry the reader's token


def _weekly_context(mailing: Mailing, interests: frozenset[int], short_links: bool) -> dict:
    """The magazine: 第N号, the logo, the 目次 and sections of numbered articles, related
    articles when chosen, then reports and events. `short_links`: /a/12/ rather than the page's
    address, for a text part whose links are not replaced by short tracked ones (a plain-text
    line holds /a/12/ whole; a percent-encoded Japanese slug runs to three lines)."""

    def url(item: Article | Report | Event, name: str) -> str:
        if short_links:
            return absolute_url(reverse(name, args=[item.pk]))
        return absolute_url(item.get_absolute_url())

    found = weekly_sections(mailing, interests)  # two queries; three with related articles
    sections = [
        {
            "title": section.title,
            "items": [
                {
                    "article": item.article,
                    "number": item.number,
                    "url": url(item.article, "short_article"),
                    "related": [
                        {"article": other, "url": url(other, "short_article")}
                        for other in item.related
                    ],
                }
                for item in section.items
            ],
        }
        for section in found
    ]
    logo, logo_alt = site_logo()
    extras = weekly_extras(mailing)
    chosen = {  # the reader's fields this report has articles for, to say why they come first
        tag.name
        for section in found
        for item in section.items
        for tag in item.article.tags.all()
        if tag.pk in interests
    }
    return {
        "sections": sections,
        "articles": [item for section in sections for item in section["items"]],
        "interest_names": sorted(chosen),
        "logo_url": absolute_url(logo) if logo else "",
        "logo_alt": logo_alt,
        "reports": [
            {"report": report, "url": url(report, "short_report")} for report in extras["reports"]
        ],
        "events": [
            {"event": event, "url": url(event, "short_event")} for event in extras["events"]
        ],
    }


def content_context(
    mailing: Mailing, interests: frozenset[int] = frozenset(), short_links: bool = True
) -> dict:
    """Everything the templates show that is the same for every reader (of one group of
    research fields, `interests`, in a weekly report)."""
    context = {
        "mailing": mailing,
        "site_url": settings.SITE_URL,
        "archive_url": absolute_url(reverse("archive_detail", args=[archive_slug(mailing)])),
        "intro_html": _markdown(mailing.intro),
        "intro_text": mailing.intro,
    }
    if mailing.kind == Mailing.Kind.WEEKLY:
        context.update(_weekly_context(mailing, interests, short_links))
    for name in ("article", "report", "event"):
        item = getattr(mailing, name)
        if item is not None:
            context[name] = item
            context[f"{name}_url"] = absolute_url(item.get_absolute_url())
    if mailing.event is not None:
        context["ics_url"] = absolute_url(reverse("event_ics", args=[mailing.event.slug]))
    context["subscribe_url"] = absolute_url(reverse("subscribe"))
    if mailing.report is not None:
        context["pdf_url"] = absolute_url(reverse("report_pdf", args=[mailing.report.slug]))
    return context


def _markdown(source: str) -> str:
    from merumaga.publishing.markdown import render

    return render(source) if source.strip() else ""


def archive_slug(mailing: Mailing) -> str:
    return f"{mailing.kind}-{mailing.pk}"


def compile_mailing(
    mailing: Mailing,
    language: str,
    *,
    test: bool = False,
    web: bool = False,
    track: bool = False,
    interests: frozenset[int] = frozenset(),
) -> Compiled:
    """The mailing in `language`; `web`: the archive's copy, written for a page, not a mail
    (no reader's address or links, no attachment, sign-up and event pages instead); `track`: as
    sent to readers, its links counted through /c/… (mailings/clicks.py). Previews and test sends
    are not tracked: an editor's clicks are not readers' clicks. `interests`: the tags of the
    readers it is for, whose articles a weekly report puts first."""
    name = TEMPLATES[mailing.kind]
    sender = sender_identity()
    context = {
        # Tracked links are short already (/c/…) and lead straight to the page.
        **content_context(mailing, interests, short_links=not track),
        "institute": sender,
        "topic_name": mailing.topic.localized_name(language),
        "personal": {key: marker(key) for key in PERSONAL},
        "reader": True,
        "web": web,
    }
    with translation.override(language):
        subject = " ".join(render_to_string(f"mailings/mail/{name}_subject.txt", context).split())
        if test:
            subject = _("[テスト] %(subject)s") % {"subject": subject}
        text: str = render_to_string(f"mailings/mail/{name}_body.txt", context)
        page: str = _inliner.inline(render_to_string(f"mailings/mail/{name}_body.html", context))
    per_reader = False
    if track:
        per_reader = records_clicks_per_reader()
        text, page = clicks.track_links(
            mailing,
            text,
            page,
            reader_marker=marker("clicker") if per_reader else "",
            articles=_article_urls(context),
        )
    text = wrap_text(text)  # after tracking: the short tracked links decide where lines end
    return Compiled(
        mailing=mailing,
        language=language,
        subject=subject,
        text=text,
        html=page,
        sender=sender,
        attachments=_attachments(mailing),
        clicks_per_reader=per_reader,
    )


def _article_urls(context: dict[str, Any]) -> dict[str, int]:
    """Article URL → article id, for the clicks per article of a weekly report."""
    urls = {entry["url"]: entry["article"].pk for entry in context.get("articles", [])}
    if "article" in context:
        urls[context["article_url"]] = context["article"].pk
    return urls


def _attachments(mailing: Mailing) -> list[mime.Attachment]:
    found = []
    if mailing.kind == Mailing.Kind.EVENT_INVITATION and mailing.event is not None:
        found.append(
            mime.Attachment(
                filename="event.ics",
                content_type="text/calendar",
                data=ics.event_calendar(mailing.event),
                # The calendar is UTF-8 whatever the mail's charset (RFC 5545), and says so.
                params={"method": "PUBLISH", "charset": "utf-8"},
            )
        )
    report = mailing.report
    if mailing.attach_pdf and report is not None and report.pdf:
        try:
            size = report.pdf.size
        except OSError:
            size = None
        if size is not None and size <= settings.ATTACH_PDF_MAX_MB * 1024 * 1024:
            with report.pdf.open("rb") as handle:
                found.append(
                    mime.Attachment(f"{report.slug}.pdf", "application/pdf", handle.read())
                )
    return found


def greeting(subscriber: MailReader | None, language: str) -> str:
    with translation.override(language):
        if subscriber is not None and subscriber.name:
            return _("%(name)s 様") % {"name": subscriber.name}
        return _("読者の皆様")


def personal_values(compiled: Compiled, subscriber: MailReader) -> dict[str, str]:
    mailing = compiled.mailing
    values = {
        "greeting": greeting(subscriber, compiled.language),
        "email": subscriber.email or "",
        "preferences_url": absolute_url(
            reverse("preferences", args=[tokens.make_token(subscriber, tokens.PREFERENCES)])
        ),
        "unsubscribe_url": unsubscribe_url(subscriber, mailing.topic.key, mailing.pk),
        "rsvp_url": rsvp_link_url(subscriber, mailing.event) if mailing.event else "",
        "clicker": (
            clicks.reader_token(mailing.pk, subscriber.pk) if compiled.clicks_per_reader else ""
        ),
    }
    return values


def unsubscribe_url(subscriber: tokens.TokenHolder, topic_key: str, mailing_id: int) -> str:
    """The reader's one-click unsubscribe link in a mailing; `?m=` says which mailing it came
    from, so that unsubscribes are counted per mailing."""
    token = tokens.make_token(subscriber, tokens.UNSUBSCRIBE, topic_key)
    return absolute_url(reverse("unsubscribe", args=[token])) + f"?m={mailing_id}"


def fill(template: str, values: dict[str, str], escape: bool) -> str:
    for key, value in values.items():
        template = template.replace(marker(key), html.escape(value) if escape else value)
    return template


def envelope_from(mailing: Mailing, subscriber: tokens.TokenHolder) -> str:
    token = tokens.address_token("bounce", mailing.pk, subscriber.pk)
    return f"bounce+{token}@{settings.BOUNCE_DOMAIN}"


def list_headers(
    compiled: Compiled, subscriber: tokens.TokenHolder, values: dict[str, str]
) -> list[tuple[str, str]]:
    mailing = compiled.mailing
    mailto_token = tokens.address_token("unsubscribe", subscriber.pk, mailing.topic_id)
    topic = mailing.topic
    return [
        *outgoing.list_unsubscribe(
            values["unsubscribe_url"], f"unsubscribe+{mailto_token}@{settings.BOUNCE_DOMAIN}"
        ),
        ("List-Id", f"{topic.name_en or topic.key} <{topic.key}.{settings.LIST_ID_DOMAIN}>"),
        ("Feedback-ID", f"{mailing.pk}:{topic.key}:{mailing.kind}:merumaga"),
        ("Precedence", "bulk"),
    ]


def build(
    compiled: Compiled,
    subscriber: MailReader,
    *,
    date: datetime | None = None,
    message_id: str | None = None,
) -> outgoing.Built:
    """The bytes of this mailing for this reader (the reference every faster path must match):
    the reader's parts filled in, then built as every mail is (merumaga.outgoing.build)."""
    values = personal_values(compiled, subscriber)
    mail = outgoing.Mail(
        kind="mailing",
        sender_name=compiled.sender.organisation_name,
        sender_address=compiled.sender.from_email,
        to=subscriber.email or "",
        subject=compiled.subject,
        text=fill(compiled.text, values, escape=False),
        html=fill(compiled.html, values, escape=True),
        preferred_charset=subscriber.charset,
        headers=list_headers(compiled, subscriber, values),
        attachments=compiled.attachments,
        envelope_from=envelope_from(compiled.mailing, subscriber),
        about=f"reader {subscriber.pk} of mailing {compiled.mailing.pk}",
    )
    return outgoing.build(mail, date=date, message_id=message_id)


_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.DOTALL)


def render_for_web(mailing: Mailing, language: str = "ja") -> str:
    """The archive copy: what goes inside a page of the site (the body of the mail's HTML, its
    styles inlined), written for the web, with a general greeting and nobody's data."""
    compiled = compile_mailing(mailing, language, web=True)
    values = {key: "" for key in PERSONAL}
    values["greeting"] = greeting(None, language)
    page = fill(compiled.html, values, escape=True)
    body = _BODY.search(page)
    return body.group(1).strip() if body else page


# Plain-text layout.

_WIDTH = 70  # display columns: a Japanese character counts two, so 35 per line
_NO_LINE_START = set("、。，．,.）)」』】〕！？!?ー々ゝゞっゃゅょぁぃぅぇぉッャュョァィゥェォ")


def _columns(character: str) -> int:
    return 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1


def wrap_text(text: str, width: int = _WIDTH) -> str:
    """Wrap long lines of Japanese text for readers of plain-text mail.

    Lines break between characters (Japanese has no spaces), never inside a run of ASCII without
    spaces (a URL, an English word), and never before a closing bracket or punctuation (禁則).
    """
    return "\n".join(
        wrapped for line in text.split("\n") for wrapped in _wrap_line(line.rstrip(), width)
    )


# A reader's part (marker) glues to the link it ends: /c/12-ab/<clicker>/ is never broken.
_ASCII_RUN = re.compile(r"[\x21-\x7e\ue000\ue001]+|.", re.DOTALL)


def _wrap_line(line: str, width: int) -> list[str]:
    if sum(_columns(c) for c in line) <= width:
        return [line]
    lines, current, used = [], "", 0
    for piece in _ASCII_RUN.findall(line):
        size = sum(_columns(c) for c in piece)
        fits = used + size <= width
        if not fits and current and piece[0] not in _NO_LINE_START:
            lines.append(current.rstrip())
            current, used = piece.lstrip(), size if piece != " " else 0
        else:
            current += piece
            used += size
    if current:
        lines.append(current.rstrip())
    return lines
