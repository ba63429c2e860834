"""Tests for the message builder: parse the bytes back with the standard library and compare."""

import email
import email.header
import email.policy
import hashlib
import re
from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from merumaga.charset import FAITHFUL, choose
from merumaga.mime import Attachment, build_message

TOKYO = ZoneInfo("Asia/Tokyo")
DATE = datetime(2025, 4, 7, 8, 0, tzinfo=TOKYO)
LONG_URL = "https://merumaga.example.jp/unsubscribe/" + "a1b2c3d4" * 8  # 104 characters
EXTRA_HEADERS = [
    ("List-Unsubscribe", f"<{LONG_URL}>, <mailto:unsubscribe+a1b2c3d4@merumaga.example.jp>"),
    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ("List-Id", "Weekly report <weekly.merumaga.example.jp>"),
    ("Feedback-ID", "42:weekly:merumaga"),
    ("X-Mailing", "weekly-2025-15"),
]
TEXT = (
    "未来技術研究所 週報 第12号\n"
    "\n"
    "自動運転の社会実装に向けた最新の研究動向を要約しました。\n"
    "原典: https://example.org/paper/123\n"
    "配信停止: https://merumaga.example.jp/u/abc\n"
)
HTML = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
    + '<p style="margin:0 0 1em">自動運転の社会実装に向けた最新の研究動向を要約しました。</p>' * 20
    + "</body></html>"
)
ICS = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
    b"SUMMARY:\xe7\xa0\x94\xe7\xa9\xb6\xe4\xbc\x9a\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
PDF_NAME = "研究レポート_2025年春号_自動運転の社会実装_コンパクト版.pdf"


def _build(**overrides: object) -> bytes:
    arguments: dict[str, object] = {
        "charset": "utf-8",
        "from_name": "未来技術研究所 広報室",
        "from_address": "news@merumaga.example.jp",
        "to_address": "reader@example.com",
        "subject": "【週報】自動運転の最新研究動向と社会実装に向けた課題 第12号",
        "text": TEXT,
        "html": HTML,
        "headers": EXTRA_HEADERS,
        "date": DATE,
        "message_id": "<20250407.1.weekly@merumaga.example.jp>",
    }
    arguments.update(overrides)
    return build_message(**arguments)


def _parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def _attachments() -> list[Attachment]:
    return [
        Attachment("invite.ics", "text/calendar", ICS, {"method": "REQUEST", "charset": "utf-8"}),
        Attachment(PDF_NAME, "application/pdf", PDF),
    ]


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n")


def _header_lines(raw: bytes) -> list[str]:
    """The physical header lines of the message and of every MIME part."""
    lines = raw.decode("ascii", "replace").split("\r\n")
    boundaries = set(re.findall(r'boundary="([^"]+)"', raw.decode("ascii", "replace")))
    result, in_headers = [], True
    for line in lines:
        if in_headers and line == "":
            in_headers = False
        elif in_headers:
            result.append(line)
        elif any(line == f"--{b}" for b in boundaries):
            in_headers = True
    return result


CHARSETS = ["utf-8", "iso-2022-jp"]


@pytest.mark.parametrize("charset", CHARSETS)
def test_headers_decode_to_the_input(charset: str) -> None:
    msg = _parse(_build(charset=charset))
    assert msg["Subject"] == "【週報】自動運転の最新研究動向と社会実装に向けた課題 第12号"
    (sender,) = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "未来技術研究所 広報室",
        "news@merumaga.example.jp",
    )
    assert msg["To"] == "reader@example.com"
    assert msg["Message-ID"] == "<20250407.1.weekly@merumaga.example.jp>"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Date"] == "Mon, 07 Apr 2025 08:00:00 +0900"
    assert msg["Date"].datetime == DATE


def test_header_order() -> None:
    msg = _parse(_build())
    assert msg.keys() == [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        *[name for name, _ in EXTRA_HEADERS],
        "Content-Type",
    ]


@pytest.mark.parametrize("charset", CHARSETS)
def test_extra_headers_unchanged_after_unfolding(charset: str) -> None:
    raw = _build(charset=charset)
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for name, value in EXTRA_HEADERS:
        # Unfolding removes the CRLFs; leading whitespace is not part of the value.
        assert re.sub(r"\r\n(?=[ \t])", "", msg[name]).lstrip() == value


def test_encoded_words_b_and_charset_labels_in_the_raw_headers() -> None:
    utf8 = _build(charset="utf-8")
    jis = _build(charset="iso-2022-jp")
    assert b"Subject: =?utf-8?b?" in utf8
    assert b"From: =?utf-8?b?" in utf8
    assert b"Subject: =?iso-2022-jp?b?" in jis
    assert b"From: =?iso-2022-jp?b?" in jis
    # Mostly ASCII: Python's default for UTF-8 would pick Q here; B is asked for.
    mostly_ascii = _build(subject="Weekly research report No. 12 第12号")
    assert b"Subject: =?utf-8?b?" in mostly_ascii
    long_subject = "自動運転の社会実装に向けた最新の研究動向と課題についての特集号のお知らせです"
    long_ones = [_build(charset=c, subject=long_subject) for c in CHARSETS]
    for raw in (utf8, jis, *long_ones):
        lowered = raw.lower()
        assert b"cp932" not in lowered and b"shift_jis" not in lowered
        for word in re.findall(rb"=\?[^?]+\?[bq]\?[^?]*\?=", raw, re.IGNORECASE):
            assert len(word) <= 75  # RFC 2047


@pytest.mark.parametrize(
    ("charset", "text_cte", "html_cte"),
    [("utf-8", "base64", "base64"), ("iso-2022-jp", "7bit", "base64")],
)
def test_parts_charsets_and_transfer_encodings(charset: str, text_cte: str, html_cte: str) -> None:
    msg = _parse(_build(charset=charset))
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert plain.get_param("charset") == html.get_param("charset") == charset
    assert plain["Content-Transfer-Encoding"] == text_cte
    assert html["Content-Transfer-Encoding"] == html_cte


@pytest.mark.parametrize("charset", CHARSETS)
def test_bodies_decode_to_the_input(charset: str) -> None:
    msg = _parse(_build(charset=charset))
    plain, html = msg.get_payload()
    # Text is sent in canonical form (CRLF); apart from line endings it is exact.
    assert _lf(plain.get_content()) == TEXT
    assert _lf(html.get_content()) == HTML


@pytest.mark.parametrize("charset", CHARSETS)
@pytest.mark.parametrize("attachments", [[], _attachments()])
def test_crlf_and_line_lengths(charset: str, attachments: list[Attachment]) -> None:
    raw = _build(charset=charset, attachments=attachments)
    assert raw.endswith(b"\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n") == raw.count(b"\r")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    for line in _header_lines(raw):
        # Longer only when a single word (a URL) stands alone on a continuation line.
        assert len(line) <= 78 or re.fullmatch(r" \S+", line), line


def test_long_list_unsubscribe_folds_only_between_urls() -> None:
    raw = _build()
    header = raw.split(b"List-Unsubscribe: ", 1)[1].split(b"\r\nList-Unsubscribe-Post")[0]
    lines = header.decode("ascii").split("\r\n")
    # The URL is too long for the first line, so it gets a line of its own (after "Name: ").
    assert lines == [
        "",
        f" <{LONG_URL}>,",
        " <mailto:unsubscribe+a1b2c3d4@merumaga.example.jp>",
    ]


def test_short_list_unsubscribe_stays_on_one_line() -> None:
    value = "<https://example.jp/u/abc>, <mailto:u+abc@example.jp>"
    raw = _build(headers=[("List-Unsubscribe", value)])
    assert f"\r\nList-Unsubscribe: {value}\r\n".encode() in raw


def test_long_ascii_subject_folds_at_spaces() -> None:
    subject = " ".join(["Weekly research digest"] * 8)
    raw = _build(subject=subject, charset="iso-2022-jp")
    assert _parse(raw)["Subject"] == subject
    folded = raw.split(b"Subject: ", 1)[1].split(b"\r\nDate:")[0]
    assert b"\r\n " in folded and b"=?" not in folded


def test_ascii_sender_name_is_quoted_when_needed() -> None:
    msg = _parse(_build(from_name="Institute, Inc. (News)"))
    (sender,) = msg["From"].addresses
    assert sender.display_name == "Institute, Inc. (News)"


@pytest.mark.parametrize("charset", CHARSETS)
def test_long_japanese_sender_name_keeps_the_address_whole(charset: str) -> None:
    name = "未来技術研究所 自動運転・モビリティ研究部門 ニュースレター編集担当"
    raw = _build(charset=charset, from_name=name)
    msg = _parse(raw)
    (sender,) = msg["From"].addresses
    assert sender.addr_spec == "news@merumaga.example.jp"
    assert b"<news@merumaga.example.jp>\r\n" in raw
    # The name needs several encoded words. RFC 2047 says the space between adjacent encoded
    # words is not part of the text; email.header follows that, but the address parser of
    # policy.default puts a space there, so compare with the RFC 2047 decoding.
    folded = email.message_from_bytes(raw, policy=email.policy.compat32)["From"]
    decoded = str(email.header.make_header(email.header.decode_header(folded)))
    assert decoded == f"{name} <news@merumaga.example.jp>"
    assert sender.display_name.replace(" ", "") == name.replace(" ", "")


def test_iso2022jp_messages_are_7bit_clean() -> None:
    raw = _build(charset="iso-2022-jp", attachments=_attachments())
    assert all(byte < 128 for byte in raw)


def test_iso2022jp_text_lines_end_in_ascii() -> None:
    # RFC 1468: every line ends in the ASCII state, so a line read alone decodes.
    raw = _build(charset="iso-2022-jp")
    body_lines = [line for line in raw.split(b"\r\n") if b"\x1b" in line]
    assert body_lines
    for line in body_lines:
        last_escape = line[line.rindex(b"\x1b") :]
        assert last_escape.startswith(b"\x1b(B"), line


def test_iso2022jp_falls_back_to_base64_for_a_line_over_998_bytes() -> None:
    text = "長い行" * 200 + "\n2行目\n"  # 600 characters: 1,200 bytes of JIS on one line
    msg = _parse(_build(charset="iso-2022-jp", text=text))
    plain = msg.get_payload()[0]
    assert plain["Content-Transfer-Encoding"] == "base64"
    assert plain.get_param("charset") == "iso-2022-jp"
    assert _lf(plain.get_content()) == text


def test_text_that_the_charset_cannot_carry_raises() -> None:
    with pytest.raises(ValueError):
        _build(charset="iso-2022-jp", text="髙橋様")
    with pytest.raises(ValueError):
        _build(charset="iso-2022-jp", subject="①")
    with pytest.raises(ValueError):
        _build(charset="iso-2022-jp", from_name="山﨑")
    with pytest.raises(ValueError):
        _build(charset="utf-8", html="\ud800")  # a lone surrogate is not text
    with pytest.raises(ValueError):
        _build(charset="cp932")


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Evil", "ok\r\nBcc: victim@example.com")],
        [("X-Evil", "ok\nBcc: victim@example.com")],
        [("X-Evil", "ok\rBcc: victim@example.com")],
        [("X-Evil", "日本語")],
        [("X-Evil", "nul\x00")],
        [("X-Evil: x", "value")],
        [("X Evil", "value")],
        [("Subject", "second subject")],
        [("content-type", "text/plain")],
    ],
)
def test_header_injection_raises(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(ValueError):
        _build(headers=headers)


@pytest.mark.parametrize(
    "override",
    [
        {"subject": "件名\r\nBcc: victim@example.com"},
        {"from_name": "名前\nBcc: victim@example.com"},
        {"to_address": "reader@example.com\r\nBcc: victim@example.com"},
        {"from_address": "news@example.jp>, <other@example.jp"},
        {"to_address": "読者@例え.jp"},
        {"message_id": "<a@b>\r\nBcc: x@y"},
    ],
)
def test_injection_through_the_other_fields_raises(override: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        _build(**override)


@pytest.mark.parametrize("charset", CHARSETS)
def test_attachments_come_back_intact(charset: str) -> None:
    msg = _parse(_build(charset=charset, attachments=_attachments()))
    assert msg.get_content_type() == "multipart/mixed"
    alternative, ics, pdf = msg.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    assert _lf(alternative.get_payload()[0].get_content()) == TEXT

    assert ics.get_content_type() == "text/calendar"
    assert ics.get_param("method") == "REQUEST"
    assert ics.get_content_disposition() == "attachment"
    assert ics.get_filename() == "invite.ics"
    assert ics["Content-Transfer-Encoding"] == "base64"
    assert ics.get_payload(decode=True) == ICS

    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_content_disposition() == "attachment"
    assert pdf.get_filename() == PDF_NAME  # RFC 2231, continued over several lines
    assert pdf["Content-Type"].params["name"] == PDF_NAME  # RFC 2047, for older clients
    assert pdf.get_payload(decode=True) == PDF


def test_multipart_mixed_only_with_attachments() -> None:
    assert _parse(_build()).get_content_type() == "multipart/alternative"
    assert b"multipart/mixed" not in _build()
    assert _parse(_build(attachments=_attachments())).get_content_type() == "multipart/mixed"


def test_attachment_parameters_are_checked() -> None:
    with pytest.raises(ValueError):
        _build(attachments=[Attachment("a.ics", "text/calendar", b"", {"method": "X\r\nY"})])
    with pytest.raises(ValueError):
        _build(attachments=[Attachment("a.eml", "message/rfc822", b"")])
    with pytest.raises(ValueError):
        _build(attachments=[Attachment("a\r\n.pdf", "application/pdf", b"")])


@pytest.mark.parametrize("charset", CHARSETS)
def test_same_inputs_give_the_same_bytes(charset: str) -> None:
    first = _build(charset=charset, attachments=_attachments())
    assert _build(charset=charset, attachments=_attachments()) == first
    other = _build(charset=charset, attachments=_attachments(), message_id="<2@example.jp>")
    assert other != first


def test_boundary_is_derived_from_the_message_id() -> None:
    digest = hashlib.sha1(b"<20250407.1.weekly@merumaga.example.jp>").hexdigest()[:24]
    assert f'boundary="=_{digest}_a"'.encode() in _build()


def test_boundary_never_appears_in_a_7bit_body() -> None:
    digest = hashlib.sha1(b"<20250407.1.weekly@merumaga.example.jp>").hexdigest()[:24]
    text = f"罠\n--=_{digest}_a\n--=_{digest}_a--\n終わり\n"
    msg = _parse(_build(charset="iso-2022-jp", text=text))
    plain, html = msg.get_payload()
    assert plain["Content-Transfer-Encoding"] == "7bit"
    assert _lf(plain.get_content()) == text
    assert _lf(html.get_content()) == HTML


def test_date_must_be_aware_and_reads_tokyo_time() -> None:
    raw = _build(date=datetime(2025, 1, 1, 0, 0, tzinfo=TOKYO))
    assert _parse(raw)["Date"].endswith("+0900")
    with pytest.raises(ValueError):
        _build(date=datetime(2025, 1, 1, 0, 0))  # noqa: DTZ001 (naive: refused)


def test_message_id_gets_angle_brackets() -> None:
    assert _parse(_build(message_id="abc@example.jp"))["Message-ID"] == "<abc@example.jp>"


def test_round_trip_of_every_mapped_character_as_iso2022jp() -> None:
    all_mapped = "".join(FAITHFUL) + " ﾊﾝｶｸ ｶﾞｯｺｳ ﾎﾟｲﾝﾄ"
    subject = "【ご案内】①㈱ﾃｽﾄ ～㍻～"
    text = "\n".join(all_mapped[i : i + 30] for i in range(0, len(all_mapped), 30)) + "\n"
    html = f"<p>{all_mapped}</p>"
    chosen, (subject_j, text_j, html_j, name_j), missing = choose(
        [subject, text, html, "㈱未来技術"], "iso-2022-jp"
    )
    assert (chosen, missing) == ("iso-2022-jp", [])
    raw = _build(charset=chosen, subject=subject_j, text=text_j, html=html_j, from_name=name_j)
    assert all(byte < 128 for byte in raw)
    msg = _parse(raw)
    plain, html_part = msg.get_payload()
    assert plain["Content-Transfer-Encoding"] == "7bit"
    assert msg["Subject"] == subject_j == "【ご案内】(1)(株)テスト 〜平成〜"
    assert msg["From"].addresses[0].display_name == "(株)未来技術"
    assert _lf(plain.get_content()) == text_j
    assert html_part.get_content() == html_j
