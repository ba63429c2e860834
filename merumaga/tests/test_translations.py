"""The English catalog: complete, compiled from the current .po, and used by pages and mail.

The msgids are the Japanese text; English comes from locale/en/LC_MESSAGES/django.po, compiled
to django.mo (both committed, so nobody needs gettext installed to run the site).
Regenerate with `makemessages -l en --no-obsolete` and `compilemessages -l en` from merumaga/.
"""

import ast
import gettext
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import django_otp_webauthn
import pytest
import unfold
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import translation

from merumaga.subscribers.mail import build_reader_mail
from merumaga.testing import make_subscriber

CATALOG_DIR = Path(django_settings.BASE_DIR) / "locale" / "en" / "LC_MESSAGES"
PO_FILE = CATALOG_DIR / "django.po"
MO_FILE = CATALOG_DIR / "django.mo"

# Kana, CJK ideographs and full-width forms: none may be left in an English page or mail.
JAPANESE = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]")
ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


@dataclass
class Entry:
    line: int
    flags: set[str] = field(default_factory=set)
    msgctxt: str | None = None
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"django.po line {self.line}: {self.msgid!r}"


def _unquote(text: str) -> str:
    text = text.strip()
    assert text.startswith('"') and text.endswith('"'), text
    return re.sub(r"\\(.)", lambda match: ESCAPES.get(match.group(1), match.group(1)), text[1:-1])


def parse_po(path: Path) -> list[Entry]:
    """Every live entry of a .po file (obsolete `#~` entries are skipped), header included."""
    entries: list[Entry] = []
    entry: Entry | None = None
    target: tuple[str, int] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            entry, target = None, None
            continue
        if line.startswith("#~"):
            continue
        if entry is None:
            entry = Entry(line=number)
            entries.append(entry)
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            assert target is not None, f"line {number}: continuation without a keyword"
            keyword, index = target
            if keyword == "msgstr":
                entry.msgstr[index] += _unquote(line)
            else:
                setattr(entry, keyword, getattr(entry, keyword) + _unquote(line))
        else:
            keyword, _, value = line.partition(" ")
            plural = re.fullmatch(r"msgstr\[(\d+)\]", keyword)
            if plural or keyword == "msgstr":
                index = int(plural.group(1)) if plural else 0
                entry.msgstr[index] = _unquote(value)
                target = ("msgstr", index)
            elif keyword in ("msgctxt", "msgid", "msgid_plural"):
                setattr(entry, keyword, _unquote(value))
                target = (keyword, 0)
            else:
                raise AssertionError(f"line {number}: unexpected {raw!r}")
    return entries


@pytest.fixture(scope="module")
def po_entries() -> list[Entry]:
    return parse_po(PO_FILE)


def messages(entries: list[Entry]) -> list[Entry]:
    return [entry for entry in entries if entry.msgid]


def test_catalog_has_a_non_fuzzy_english_header(po_entries):
    header = po_entries[0]
    assert header.msgid == "" and "fuzzy" not in header.flags
    assert "Language: en\n" in header.msgstr[0]
    assert "charset=UTF-8" in header.msgstr[0]


def test_every_entry_is_translated_and_not_fuzzy(po_entries):
    entries = messages(po_entries)
    assert len(entries) > 150, "the catalog looks truncated"
    untranslated = [e.label for e in entries if not all(s.strip() for s in e.msgstr.values())]
    fuzzy = [e.label for e in entries if "fuzzy" in e.flags]
    assert not untranslated, untranslated
    assert not fuzzy, fuzzy
    for entry in entries:
        expected = 2 if entry.msgid_plural is not None else 1
        assert len(entry.msgstr) == expected, entry.label


def test_translations_keep_every_placeholder(po_entries):
    for entry in messages(po_entries):
        wanted = sorted(PLACEHOLDER.findall(entry.msgid))
        for english in entry.msgstr.values():
            assert sorted(PLACEHOLDER.findall(english)) == wanted, entry.label


def test_compiled_catalog_matches_the_po_file(po_entries):
    """A .mo compiled from an older .po fails here: recompile with compilemessages."""
    with MO_FILE.open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    for entry in messages(po_entries):
        if entry.msgid_plural is not None:
            if entry.msgctxt is not None:
                one = compiled.npgettext(entry.msgctxt, entry.msgid, entry.msgid_plural, 1)
                many = compiled.npgettext(entry.msgctxt, entry.msgid, entry.msgid_plural, 2)
            else:
                one = compiled.ngettext(entry.msgid, entry.msgid_plural, 1)
                many = compiled.ngettext(entry.msgid, entry.msgid_plural, 2)
            assert (one, many) == (entry.msgstr[0], entry.msgstr[1]), entry.label
        elif entry.msgctxt is not None:
            assert compiled.pgettext(entry.msgctxt, entry.msgid) == entry.msgstr[0], entry.label
        else:
            assert compiled.gettext(entry.msgid) == entry.msgstr[0], entry.label


@pytest.fixture
def english_sender(settings):
    """A sender identity with no Japanese in it, so any Japanese left is an untranslated string."""
    settings.ORGANISATION_NAME = "Example Institute"
    settings.POSTAL_ADDRESS = "1-1 Chiyoda, Chiyoda-ku, Tokyo 100-0001"


@pytest.mark.django_db
def test_sign_up_page_in_english(client, english_sender):
    page = client.get(reverse("subscribe"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'lang="en"' in page
    assert "Agree and subscribe" in page and "Newsletters to receive" in page
    assert "同意して登録する" not in page
    # The language switcher names Japanese in Japanese; nothing else on the page may be.
    leftover = JAPANESE.findall(page.replace(">日本語<", "><"))
    assert not leftover, "".join(leftover)


@pytest.mark.django_db
def test_sign_up_page_in_japanese(client):
    page = client.get(reverse("subscribe"), HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert 'lang="ja"' in page
    assert "同意して登録する" in page and "受け取るメールマガジン" in page
    assert "Agree and subscribe" not in page


@pytest.mark.django_db
def test_welcome_mail_in_english(english_sender):
    subscriber = make_subscriber(email="reader@example.com", language="en")
    message = build_reader_mail(subscriber, "welcome", {"topics": []})
    html = message.html
    assert message.subject == "[Example Institute] Your newsletter subscription is confirmed"
    assert "Thank you for subscribing." in message.text
    assert "You can unsubscribe at any time." in message.text
    assert "Open mail preferences" in html
    # The HTML footer separates its two links with a bare "・" (markup, not a message).
    for part in (message.subject, message.text, html.replace("</a> ・", "</a>")):
        leftover = JAPANESE.findall(part)
        assert not leftover, "".join(leftover)


@pytest.mark.django_db
def test_welcome_mail_in_japanese():
    subscriber = make_subscriber(email="reader@example.jp", language="ja")
    message = build_reader_mail(subscriber, "welcome", {"topics": []})
    assert "メールマガジンの登録が完了しました" in message.subject
    assert "メールマガジンへのご登録ありがとうございます。" in message.text


# The admin theme's own words: {% translate "…" %} in its templates, _("…") in its code.
THEME_TEMPLATE_MSGID = re.compile(r"""\{%\s*(?:trans|translate)\s+(?:"([^"]+)"|'([^']+)')""")


def theme_msgids(root: Path, files: list[Path] | None = None) -> set[str]:
    """A package's words (by default all its files, its extras in contrib/ left out)."""
    msgids = set()
    if files is None:
        files = [p for p in root.glob("**/*") if "contrib" not in p.relative_to(root).parts]
    for path in (p for p in files if p.suffix == ".html"):
        for found in THEME_TEMPLATE_MSGID.finditer(path.read_text(encoding="utf-8")):
            msgids.add(found.group(1) or found.group(2))
    for path in (p for p in files if p.suffix == ".py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "_"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                msgids.add(node.args[0].value)
    return msgids


def test_the_admin_theme_speaks_japanese():
    """Every word of the theme reads in Japanese: from Django's admin catalogue or from ours
    (theme_locale/ja). A theme upgrade that brings a new word fails here until it is added."""
    root = Path(unfold.__file__).parent
    msgids = theme_msgids(root)
    assert len(msgids) > 50  # the search still finds the theme's words
    with translation.override("ja"):
        untranslated = sorted(msgid for msgid in msgids if translation.gettext(msgid) == msgid)
    assert untranslated == []


def test_the_passkey_buttons_and_messages_speak_japanese(client):
    """django-otp-webauthn ships no Japanese: the words of its scripts (served by its JavaScript
    catalogue) and the messages its views answer with are in theme_locale/ja. An upgrade that
    brings a new one fails here until it is added."""
    root = Path(django_otp_webauthn.__file__).parent
    scripts = "".join(path.read_text() for path in (root / "static").rglob("*.js"))
    words = set(re.findall(r'gettext\("([^"]+)"\)', scripts))
    assert "Register a Passkey" in words  # the search still finds the scripts' words
    catalogue = client.get(
        reverse("otp_webauthn:js-i18n-catalog"), HTTP_ACCEPT_LANGUAGE="ja"
    ).content.decode("utf-8")
    untranslated = sorted(word for word in words if json.dumps(word) not in catalogue)
    assert untranslated == []
    messages = set()
    for name in ("views.py", "exceptions.py"):
        messages |= theme_msgids(root, [root / name])
    assert len(messages) > 5
    with translation.override("ja"):
        untranslated = sorted(m for m in messages if translation.gettext(m) == m)
    assert untranslated == []
