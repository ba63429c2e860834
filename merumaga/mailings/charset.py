"""Japanese text for readers whose mail software only understands ISO-2022-JP.

ISO-2022-JP (RFC 1468; Python's ``iso2022_jp`` codec) carries ASCII, JIS X 0201 Roman and
JIS X 0208. Text written on Windows or macOS often contains characters outside that set
(cp932/NEC extensions such as ① ㈱ ㍻, half-width katakana, the cp932 code points for ～ and －).

``to_jis`` replaces such characters only where the replacement means exactly the same thing
(a different code point or a spelled-out form of a typographic ligature). Anything else —
above all variant kanji in names (髙, 﨑, 𠮷) — is left alone and reported, and ``choose``
then sends that mail as UTF-8 instead. No character is ever dropped or guessed.
"""

from __future__ import annotations

import re
import unicodedata

UTF8 = "utf-8"
ISO2022JP = "iso-2022-jp"
CHARSETS = (UTF8, ISO2022JP)

_CODEC = "iso2022_jp"
# ESC is ASCII, so the codec "encodes" it, but in ISO-2022-JP it starts an escape sequence:
# a reader would misinterpret the following bytes. It cannot be carried.
_ESC = "\x1b"


def _nfkc(char: str) -> str:
    return unicodedata.normalize("NFKC", char)


def _chars(first: int, last: int) -> list[str]:
    return [chr(code) for code in range(first, last + 1)]


# --- Enclosed numbers and ideographs -------------------------------------------------------
# The circle or parentheses are typography around a number or a single ideograph; writing the
# enclosure as ASCII parentheses is the customary plain-text form and keeps the meaning
# (a list item "①", a company form "㈱" = 株式会社).
_CIRCLED_NUMBERS = {
    char: f"({_nfkc(char)})"
    for char in _chars(0x2460, 0x2473)  # ① .. ⑳
    + _chars(0x3251, 0x325F)  # ㉑ .. ㉟
    + _chars(0x32B1, 0x32BF)  # ㊱ .. ㊿
}
# NFKC of ㈠ .. ㉃ is already "(一)" .. "(至)" with ASCII parentheses.
_PARENTHESISED_IDEOGRAPHS = {char: _nfkc(char) for char in _chars(0x3220, 0x3243)}
# ㊀ .. ㊰ (㊤ 上, ㊙ 秘 …): NFKC drops the circle, so put parentheses back.
_CIRCLED_IDEOGRAPHS = {char: f"({_nfkc(char)})" for char in _chars(0x3280, 0x32B0)}

# --- Roman numerals ------------------------------------------------------------------------
# Ⅻ is a ligature of the Latin letters XII; case is kept (ⅲ → iii).
_ROMAN_NUMERALS = {char: _nfkc(char) for char in _chars(0x2160, 0x217F)}

# --- Abbreviation and unit squares ---------------------------------------------------------
# Each square is the word or abbreviation itself set in one cell; spelling it out is the same
# text. ㎡ would become "m2" under NFKC, which reads differently, and "m²" is not in JIS, so it
# becomes the Japanese spelled-out form.
_ABBREVIATIONS = {
    "№": "No.",
    "℡": "TEL",
    "㏍": "K.K.",
    "㎜": "mm",
    "㎝": "cm",
    "㎞": "km",
    "㎎": "mg",
    "㎏": "kg",
    "㏄": "cc",
    "㎡": "平方メートル",
}
# ㌀ .. ㍗: katakana words (㍉ ミリ, ㌔ キロ, ㌻ ページ …); NFKC spells them out in JIS katakana.
_KATAKANA_SQUARES = {char: _nfkc(char) for char in _chars(0x3300, 0x3357)}
# Japanese era names set as one square.
_ERA_SQUARES = {
    "㍻": "平成",
    "㍼": "昭和",
    "㍽": "大正",
    "㍾": "明治",
    "㋿": "令和",
}

# --- The same JIS character under another code point ---------------------------------------
# Windows (cp932) decodes these JIS X 0208 characters to different Unicode code points than the
# JIS mapping Python's codec uses; the character on paper is the same.
_CP932_TWINS = {
    "～": "〜",  # U+FF5E FULLWIDTH TILDE -> U+301C WAVE DASH (JIS 1-01-33)
    "－": "−",  # U+FF0D FULLWIDTH HYPHEN-MINUS -> U+2212 MINUS SIGN (JIS 1-01-61)
    "￠": "¢",  # U+FFE0 -> U+00A2 (JIS 1-01-81)
    "￡": "£",  # U+FFE1 -> U+00A3 (JIS 1-01-82)
    "￢": "¬",  # U+FFE2 -> U+00AC (JIS 1-02-44)
    "∥": "‖",  # U+2225 PARALLEL TO -> U+2016 DOUBLE VERTICAL LINE (JIS 1-01-34)
    "—": "―",  # U+2014 EM DASH -> U+2015 HORIZONTAL BAR (JIS 1-01-29, named EM DASH in JIS)
}
# Full-width forms JIS has no full-width cell for: the ASCII character is the same character
# at another width (their NFKC form).
_FULLWIDTH_WITHOUT_JIS_CELL = {
    "＂": '"',
    "＇": "'",
}

# --- Voiced sound marks --------------------------------------------------------------------
# A combining (semi-)voiced mark that could not be composed with the kana before it
# (e.g. ｱﾞ, or a lone ﾞ) is shown as the spacing mark; JIS has the spacing ones.
_SPACING_SOUND_MARKS = {
    "\u3099": "\u309b",  # COMBINING KATAKANA-HIRAGANA VOICED SOUND MARK -> ゛
    "\u309a": "\u309c",  # COMBINING ... SEMI-VOICED SOUND MARK -> ゜
}

FAITHFUL: dict[str, str] = {
    **_CIRCLED_NUMBERS,
    **_PARENTHESISED_IDEOGRAPHS,
    **_CIRCLED_IDEOGRAPHS,
    **_ROMAN_NUMERALS,
    **_ABBREVIATIONS,
    **_KATAKANA_SQUARES,
    **_ERA_SQUARES,
    **_CP932_TWINS,
    **_FULLWIDTH_WITHOUT_JIS_CELL,
    **_SPACING_SOUND_MARKS,
}
"""Character -> faithful JIS replacement. Every key is outside JIS, every value inside."""

_TRANSLATION = str.maketrans(FAITHFUL)

# Half-width katakana (U+FF61-U+FF9F) are JIS X 0201 Kana, which ISO-2022-JP does not allow.
# NFKC turns a run into full-width kana and joins ｶﾞ into ガ; it is applied to these runs only,
# because on the whole text it would also change characters that are fine as they are.
_HALFWIDTH_KANA_RUN = re.compile("[\uff61-\uff9f]+")
# Kana followed by a combining voiced mark, as in decomposed (NFD) text from macOS: NFC gives
# the precomposed kana, which is the canonically equivalent, identical character.
_KANA_WITH_COMBINING_MARK = re.compile("[\u3041-\u30ff][\u3099\u309a]")


def _nfkc_run(match: re.Match[str]) -> str:
    return unicodedata.normalize("NFKC", match.group())


def _nfc_pair(match: re.Match[str]) -> str:
    return unicodedata.normalize("NFC", match.group())


def is_jis(text: str) -> bool:
    """True when ISO-2022-JP can carry ``text`` unchanged."""
    if text.isascii():
        return _ESC not in text
    try:
        text.encode(_CODEC)
    except UnicodeEncodeError:
        return False
    return _ESC not in text


def uncarried(text: str) -> list[str]:
    """The distinct characters of ``text`` that ISO-2022-JP cannot carry, in order of appearance."""
    if is_jis(text):
        return []
    return [char for char in dict.fromkeys(text) if not is_jis(char)]


def to_jis(text: str) -> tuple[str, list[str]]:
    """Map ``text`` towards ISO-2022-JP using only faithful replacements.

    Returns the mapped text and the characters that still cannot be carried (empty when the
    mapped text encodes). Text that already encodes is returned unchanged: every mapping
    applies only to characters outside JIS.
    """
    if is_jis(text):
        return text, []
    mapped = _HALFWIDTH_KANA_RUN.sub(_nfkc_run, text)
    mapped = _KANA_WITH_COMBINING_MARK.sub(_nfc_pair, mapped)
    mapped = mapped.translate(_TRANSLATION)
    return mapped, uncarried(mapped)


def encode_jis(text: str) -> bytes:
    """Encode ``text`` as ISO-2022-JP bytes; ValueError if any character cannot be carried.

    Never replaces a character: the caller decides (via ``choose``) what to send.
    """
    missing = uncarried(text)
    if missing:
        raise ValueError(f"ISO-2022-JP cannot carry {''.join(missing)!r}")
    return text.encode(_CODEC)


def choose(text_parts: list[str], preferred: str) -> tuple[str, list[str], list[str]]:
    """Pick the charset for one mail from all its text (subject, bodies, from-name …).

    Returns ``(charset, parts, uncarried_characters)``:

    - a UTF-8 reader gets ``("utf-8", parts unchanged, [])``;
    - an ISO-2022-JP reader gets ``("iso-2022-jp", mapped parts, [])`` when the faithful
      mapping makes every part encodable;
    - otherwise ``("utf-8", the ORIGINAL parts, characters that forced UTF-8)``, so that the
      caller can log why (e.g. "sent as UTF-8 because of 髙").
    """
    preferred = preferred.lower()
    if preferred not in CHARSETS:
        raise ValueError(f"unknown charset {preferred!r}; expected one of {CHARSETS}")
    parts = list(text_parts)
    if preferred == UTF8:
        return UTF8, parts, []
    mapped: list[str] = []
    missing: dict[str, None] = {}  # an ordered set
    for part in parts:
        mapped_part, part_missing = to_jis(part)
        mapped.append(mapped_part)
        missing.update(dict.fromkeys(part_missing))
    if missing:
        return UTF8, parts, list(missing)
    return ISO2022JP, mapped, []
