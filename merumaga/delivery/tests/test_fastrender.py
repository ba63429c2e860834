"""The byte template gives exactly the reference renderer's bytes, for every kind and reader."""

import dataclasses
import types
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from merumaga.delivery import fastrender
from merumaga.delivery.fastrender import READER_FIELDS, FastTemplate, Reader
from merumaga.institute.models import SiteSettings
from merumaga.institute.services import sender_identity
from merumaga.mailings import rendering
from merumaga.subscribers import tokens
from merumaga.subscribers.models import Subscriber
from merumaga.testing import (
    KINDS,
    mailing_of,
    make_article,
    make_report,
    make_seminar,
    make_subscriber,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sender", "frozen_clock")]

TOKYO = ZoneInfo("Asia/Tokyo")
DATE = datetime(2025, 4, 7, 8, 0, tzinfo=TOKYO)
JIS = Subscriber.Charset.ISO2022JP
UTF8 = Subscriber.Charset.UTF8
# Mappable to ISO-2022-JP: circled digit, cp932 tilde, half-width katakana.
MAPPABLE = "①休業日～のお知らせ ｶﾀｶﾅ ｶﾞｲﾄﾞ"


@pytest.fixture
def frozen_clock(monkeypatch):
    """signing.dumps puts the current second into every token: one second for both renderers."""
    clock = types.SimpleNamespace(time=lambda: 1_775_000_000.25)
    monkeypatch.setattr("django.core.signing.time", clock)
    monkeypatch.setattr(fastrender, "time", clock)


def readers(language: str) -> list[Subscriber]:
    specs = [
        ("utf8@example.jp", "山田 花子", UTF8),
        ("jis@example.jp", "佐藤 一郎", JIS),
        ("jis-mapped@example.jp", "ｻﾄｳ ｲﾁﾛｳ ①", JIS),  # mapped: サトウ イチロウ (1)
        ("jis-uncarried@example.jp", "髙橋 﨑子", JIS),  # 髙 﨑: sent as UTF-8
        ("noname-utf8@example.jp", "", UTF8),
        ("noname-jis@example.jp", "", JIS),
        ("long-utf8@example.jp", "長い名前" * 25, UTF8),
        ("long-jis@example.jp", "長い名前" * 25, JIS),
        ("html-utf8@example.jp", "<b>&\"'", UTF8),
        ("html-jis@example.jp", "<b>&\"' 太郎", JIS),
        ("english@example.com", "Taro Yamada", UTF8),
        ("very.long.address." + "x" * 40 + "@sub.example.co.jp", "長井", JIS),
    ]
    return [
        make_subscriber(email, name=name, charset=charset, language=language)
        for email, name, charset in specs
    ]


def assert_same(compiled, reader, message_id="20250407.1.m@example.jp", date=DATE):
    fast = FastTemplate(compiled).render(reader, date=date, message_id=message_id)
    reference = rendering.build(compiled, reader, date=date, message_id=message_id)
    assert fast.data == reference.data, (reader.name, reader.charset)
    assert fast == reference
    return fast


def light(subscriber: Subscriber) -> Reader:
    row = Subscriber.objects.values(*READER_FIELDS).get(pk=subscriber.pk)
    return Reader(**row)


@pytest.mark.parametrize("clicks", ["untracked", "counted", "per_reader"])
@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_every_reader_gives_the_reference_bytes(kind, language, clicks, monkeypatch):
    # Every one of these readers takes the fast path, not the fallback to rendering.build.
    monkeypatch.setattr(FastTemplate, "_reference", None)
    SiteSettings.objects.create(clicks_per_reader=clicks == "per_reader")
    mailing = mailing_of(kind)
    compiled = rendering.compile_mailing(mailing, language, track=clicks != "untracked")
    assert compiled.clicks_per_reader == (clicks == "per_reader")
    template = FastTemplate(compiled)
    charsets = set()
    for number, reader in enumerate(readers(language)):
        message_id = f"20250407.{number}.{kind}@example.jp"
        fast = template.render(reader, date=DATE, message_id=message_id)
        reference = rendering.build(compiled, reader, date=DATE, message_id=message_id)
        assert fast.data == reference.data, (kind, reader.name, reader.charset)
        assert fast == reference
        # A light row gives the same mail as the model instance.
        assert template.render(light(reader), date=DATE, message_id=message_id) == fast
        charsets.add((reader.charset, fast.charset))
    assert charsets == {(UTF8, "utf-8"), (JIS, "iso-2022-jp"), (JIS, "utf-8")}


@pytest.mark.parametrize("language", ["ja", "en"])
def test_weekly_with_several_articles_a_report_and_an_event(language):
    for number in range(4):
        make_article(
            f"記事{number} ①～ｶﾀｶﾅ" if number == 2 else f"記事{number}",
            published_at=timezone.now() - timedelta(hours=number + 2),
            digest="電池メーカー各社が量産ラインを立ち上げた。" * (number + 1),
            source_name="架空新聞",
        )
    make_report("新しいレポート")
    make_seminar()
    mailing = mailing_of("weekly")
    assert mailing.articles.count() == 5
    compiled = rendering.compile_mailing(mailing, language)
    assert "新しいレポート" in compiled.text and "公開セミナー" in compiled.text
    template = FastTemplate(compiled)
    for reader in readers(language):
        fast = template.render(reader, date=DATE, message_id="1.weekly@example.jp")
        assert fast == rendering.build(
            compiled, reader, date=DATE, message_id="1.weekly@example.jp"
        )


@pytest.mark.parametrize("kind", KINDS)
def test_mappable_characters_in_the_text_and_the_sender(kind):
    SiteSettings.objects.update(organisation_name="テスト研究所㈱")
    mailing = mailing_of(kind)
    mailing.intro = MAPPABLE
    mailing.save()
    compiled = rendering.compile_mailing(mailing, "ja", test=True)
    for reader in readers("ja"):
        fast = assert_same(compiled, reader)
        if reader.email == "jis-mapped@example.jp":
            assert fast.charset == "iso-2022-jp" and max(fast.data) < 128


def test_uncarried_characters_in_the_text_make_every_jis_reader_utf8():
    mailing = mailing_of("custom")
    mailing.intro = "髙島屋と﨑陽軒 ①"
    mailing.save()
    compiled = rendering.compile_mailing(mailing, "ja")
    for reader in readers("ja"):
        fast = assert_same(compiled, reader)
        assert fast.charset == "utf-8"
    jis = assert_same(compiled, Subscriber.objects.get(email="jis-uncarried@example.jp"))
    assert jis.uncarried == ("髙", "﨑")


def test_an_uncarried_sender_name_makes_every_jis_reader_utf8():
    SiteSettings.objects.update(organisation_name="髙山研究所")
    compiled = rendering.compile_mailing(mailing_of("article"), "ja")
    for reader in readers("ja"):
        assert assert_same(compiled, reader).charset == "utf-8"


def test_report_with_the_pdf_attached(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    mailing = mailing_of("report")
    report = mailing.report
    report.pdf.save("report.pdf", ContentFile(b"%PDF-1.4\n" + bytes(range(256)) * 20))
    mailing.attach_pdf = True
    mailing.save()
    compiled = rendering.compile_mailing(mailing, "ja")
    assert [a.content_type for a in compiled.attachments] == ["application/pdf"]
    for reader in readers("ja"):
        assert_same(compiled, reader)


def test_event_invitation_carries_the_ics():
    compiled = rendering.compile_mailing(mailing_of("event_invitation"), "ja")
    assert [a.content_type for a in compiled.attachments] == ["text/calendar"]
    fast = assert_same(compiled, make_subscriber(charset=JIS, name="佐藤"))
    assert b"\r\nContent-Type: text/calendar; method=PUBLISH" in fast.data


def test_a_subscriber_and_its_light_row_give_the_same_mail():
    subscriber = make_subscriber(name="山田 花子", charset=JIS)
    template = FastTemplate(rendering.compile_mailing(mailing_of("event_invitation"), "ja"))
    row = light(subscriber)
    assert isinstance(row, Reader) and row.pk == subscriber.pk
    assert template.render(row, date=DATE, message_id="1@example.jp") == template.render(
        subscriber, date=DATE, message_id="1@example.jp"
    )


def test_personal_values_are_the_references():
    compiled = rendering.compile_mailing(mailing_of("event_invitation"), "en")
    template = FastTemplate(compiled)
    for reader in readers("en"):
        assert template.personal_values(reader) == rendering.personal_values(compiled, reader)
    reader = Subscriber.objects.get(email="utf8@example.jp")
    url, mailing = template.personal_values(reader)["unsubscribe_url"].split("?m=")
    assert mailing == str(compiled.mailing.pk)  # which mailing the reader left from
    assert tokens.read_token(url.rstrip("/").rsplit("/", 1)[1], tokens.UNSUBSCRIBE) == (
        reader,
        compiled.mailing.topic.key,
    )


def test_tokens_follow_the_clock(monkeypatch):
    compiled = rendering.compile_mailing(mailing_of("event_invitation"), "ja")
    template = FastTemplate(compiled)
    reader = make_subscriber(name="山田")
    seen = set()
    for now in (1_775_000_000.0, 1_775_000_000.9, 1_775_000_001.0, 1_775_003_600.5):
        clock = types.SimpleNamespace(time=lambda now=now: now)
        monkeypatch.setattr("django.core.signing.time", clock)
        monkeypatch.setattr(fastrender, "time", clock)
        values = template.personal_values(reader)
        assert values == rendering.personal_values(compiled, reader)
        seen.add(values["rsvp_url"])
    assert len(seen) == 3


def test_odd_primary_keys_and_nonces_are_serialised_as_json_does():
    compiled = rendering.compile_mailing(mailing_of("event_invitation"), "ja")
    template = FastTemplate(compiled)
    for pk, nonce in [(7, 'ab"c\\d'), ("7", "é漢"), (7, None)]:
        reader = Reader(pk, "odd@example.jp", "名前", "ja", "utf-8", nonce)
        assert template.personal_values(reader) == rendering.personal_values(compiled, reader)


@pytest.mark.parametrize(
    ("email", "error"),
    [
        ("テスト@例え.jp", ValueError),  # SMTPUTF8: mime.py writes no raw UTF-8 headers
        ("test@例え.jp", ValueError),
        ("not-an-address", ValueError),
        (None, ValueError),  # an erased reader: set aside like any bad address
    ],
)
@pytest.mark.parametrize("charset", [UTF8, JIS])
def test_addresses_the_reference_refuses_are_refused_alike(email, error, charset):
    compiled = rendering.compile_mailing(mailing_of("weekly"), "ja")
    reader = Reader(1, email, "名前", "ja", charset, "nonce")
    with pytest.raises(error) as fast:
        FastTemplate(compiled).render(reader, date=DATE, message_id="1@example.jp")
    with pytest.raises(error) as reference:
        rendering.build(compiled, reader, date=DATE, message_id="1@example.jp")
    assert str(fast.value) == str(reference.value)


def test_a_punycode_domain_is_an_ordinary_address():
    compiled = rendering.compile_mailing(mailing_of("weekly"), "ja")
    for charset in (UTF8, JIS):
        assert_same(compiled, Reader(1, "test@xn--r8jz45g.jp", "名前", "ja", charset, "n"))


@pytest.mark.parametrize(
    ("date", "message_id", "charset"),
    [
        (DATE, "<bad id>", UTF8),
        (datetime(2025, 4, 7, 8, 0), "1@example.jp", UTF8),  # noqa: DTZ001 (naive, refused)
        (DATE, "1@example.jp", "shift_jis"),
    ],
)
def test_bad_arguments_are_refused_alike(date, message_id, charset):
    compiled = rendering.compile_mailing(mailing_of("article"), "ja")
    reader = Reader(1, "a@example.jp", "名前", "ja", charset, "nonce")
    with pytest.raises(ValueError) as fast:
        FastTemplate(compiled).render(reader, date=date, message_id=message_id)
    with pytest.raises(ValueError) as reference:
        rendering.build(compiled, reader, date=date, message_id=message_id)
    assert str(fast.value) == str(reference.value)


def test_dates_in_other_zones_and_changing_dates():
    compiled = rendering.compile_mailing(mailing_of("article"), "ja")
    template = FastTemplate(compiled)
    reader = make_subscriber(name="山田")
    for date in [DATE, DATE.astimezone(ZoneInfo("UTC")), DATE.replace(hour=9), DATE]:
        fast = template.render(reader, date=date, message_id="1@example.jp")
        assert fast == rendering.build(compiled, reader, date=date, message_id="1@example.jp")


def test_a_static_header_the_reference_refuses_is_refused_for_every_reader():
    mailing = mailing_of("article")
    mailing.topic.name_en = "週報"  # List-Id must be ASCII
    compiled = rendering.compile_mailing(mailing, "ja")
    reader = make_subscriber(name="山田")
    with pytest.raises(ValueError, match="List-Id") as fast:
        FastTemplate(compiled).render(reader, date=DATE, message_id="1@example.jp")
    with pytest.raises(ValueError, match="List-Id") as reference:
        rendering.build(compiled, reader, date=DATE, message_id="1@example.jp")
    assert str(fast.value) == str(reference.value)


# --- Pieces the shortcuts must not get wrong: compiled texts made by hand ----------------------


def hand_compiled(text: str, html: str = "", subject: str = "件名") -> rendering.Compiled:
    mailing = mailing_of("custom")
    return rendering.Compiled(
        mailing=mailing,
        language="ja",
        subject=subject,
        text=text,
        html=html or f"<p>{text}</p>",
        sender=sender_identity(),
    )


GREETING = rendering.marker("greeting")
EMAIL = rendering.marker("email")
UNSUBSCRIBE = rendering.marker("unsubscribe_url")
RSVP = rendering.marker("rsvp_url")  # empty: the hand-made mailing has no event


@pytest.mark.parametrize(
    "text",
    [
        f"ｶ{GREETING}ﾞ",  # half-width run across a boundary: ｶ + name + ﾞ
        f"か{GREETING}\n",
        f"{GREETING}\u3099です",  # combining mark after the greeting's last kana
        f"漢字{GREETING}漢字{EMAIL}漢字",  # both sides of a boundary in kanji state
        f"{EMAIL} 漢字{GREETING} 漢字",
        f"¥{GREETING}¥",  # JIS X 0201 Roman state
        f"{GREETING}\n" + "長" * 600 + f"\n{UNSUBSCRIBE}",  # a 7bit line too long: base64
        f"{GREETING} " + "長" * 490 + "\n",  # too long only with the greeting before it
        "\n" + "長" * 490 + f"{GREETING}",  # … or after it, on the last line
        "長" * 490 + f"\n{GREETING}\n",  # 986 bytes: 7bit
        f"漢{GREETING}" + "長" * 600,  # kanji meets kanji, and a line too long
        f"{GREETING}\n\x00",  # NUL: never 7bit
        f"{GREETING}\r\n{EMAIL}\r{UNSUBSCRIBE}\n",  # every newline becomes CRLF
        f"\ue000{GREETING}\ue001 {EMAIL}",  # stray marker characters: reference path
        f"ｶ{RSVP}ﾞ",  # an empty value joins the static pieces
        f"{GREETING}\r{RSVP}\n",  # … into one CRLF
        "",
        f"{GREETING}",
    ],
)
@pytest.mark.parametrize(
    "name",
    [
        "ﾞ佐藤ｶ",
        "ゆき",
        "\u3099さくら",
        "¥円",
        "髙橋",
        "",
        "abc",
        "㈱ｶ\u309a",
        "太郎\n次郎",
        "\ue000email\ue001",
    ],
)
def test_piece_boundaries_map_and_encode_like_the_whole_text(text, name):
    compiled = hand_compiled(text)
    for charset in (JIS, UTF8):
        assert_same(compiled, Reader(5, "a@example.jp", name, "ja", charset, "n"))


def test_a_boundary_string_in_a_7bit_body_moves_the_boundary():
    message_id = "<1@example.jp>"
    taken = fastrender.mime.make_boundary(message_id, "alternative", [])
    compiled = hand_compiled(f"{GREETING}\n{taken}\n")
    fast = assert_same(compiled, Reader(5, "a@example.jp", "佐藤", "ja", JIS, "n"), message_id)
    assert f'boundary="{taken}"'.encode() not in fast.data


def test_reader_is_a_frozen_row():
    reader = Reader(1, "a@example.jp", "", "ja", "utf-8", "n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        reader.name = "x"
    # The database's fields, and the research fields the worker adds for a weekly report.
    assert {f.name for f in dataclasses.fields(Reader)} == {*READER_FIELDS, "interests"}


def test_folding_words_folds_as_mime_does():
    for first in range(1, 160):
        for second in range(1, 90, 7):
            words = ["<" + "u" * first + ">,", "<mailto:" + "m" * second + ">"]
            assert fastrender._fold_words("List-Unsubscribe", words) == (
                fastrender.mime.fold_ascii("List-Unsubscribe", " ".join(words))
            )
    with pytest.raises(ValueError, match="longer than 998") as fast:
        fastrender._fold_words("List-Unsubscribe", ["<" + "u" * 1000 + ">,", "<mailto:m>"])
    with pytest.raises(ValueError, match="longer than 998") as reference:
        fastrender.mime.fold_ascii("List-Unsubscribe", "<" + "u" * 1000 + ">, <mailto:m>")
    assert str(fast.value) == str(reference.value)


def test_whitespace_in_the_site_url_is_folded_by_mime(settings):
    settings.SITE_URL = "https://example.jp/mail magazine"
    compiled = rendering.compile_mailing(mailing_of("article"), "ja")
    for reader in readers("ja"):
        assert_same(compiled, reader)
