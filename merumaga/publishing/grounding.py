"""Is a machine-written draft supported by the article? Every number, date, percentage and
proper noun in the draft must occur in the article, after width and number normalisation
(ＡＢＣ = ABC, ３０％ = 30%, 1,000 = 1000, 三割 = 3割, 二〇二六年 = 2026年). What does not
is returned with its place in the draft, to be named in a retry and marked for the editor —
never passed over.

What counts as a proper noun, without a list of names:
- Latin letters and digits in a Japanese text (BYD, R1, GPT-4o, the A of A社);
- in English, capitalised words and words with digits;
- a katakana word the dictionary does not know as one common noun (ファーウェイ, not コスト);
- a run of kanji holding a word the dictionary (unidic-lite, through fugashi) tags as a proper
  noun or does not know (上海, 寧徳時代, 曾毓群). Such a run is supported when it, or its core
  without the common nouns and suffixes that follow (王伝福 of 王伝福氏), is in the article.
"""

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any

# A number with what changes its meaning: 30% is not 30割, 2026年 not 2026日, 100億 not 100万.
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:%|割|年|月|日|倍|万|億|兆)?")
_LATIN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-.&][A-Za-z0-9]+)*")
_KATAKANA = re.compile(r"[ァ-ヺー・]{2,}")
_KANJI = re.compile(r"[\u3400-\u9fff々〆]+")
_INITIALS = re.compile(r"\b([A-Z])\.(?=[A-Z])")  # U.S. → US.
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


@dataclass(frozen=True)
class Unsupported:
    text: str  # as written in the draft
    start: int  # its place in the draft
    end: int


def normalise(text: str) -> tuple[str, list[int]]:
    """NFKC per character (full-width letters and digits to ASCII), kanji numerals before a
    unit as digits, thousands separators dropped; with, for each character, its place in
    `text`."""
    characters: list[str] = []
    places: list[int] = []
    for place, character in enumerate(text):
        for piece in unicodedata.normalize("NFKC", character):
            characters.append(piece)
            places.append(place)
    characters, places = _kanji_numbers(characters, places)
    joined = "".join(characters)
    kept = [i for i in range(len(joined)) if not _thousands_separator(joined, i)]
    return "".join(joined[i] for i in kept), [places[i] for i in kept]


# Kanji numerals where a unit follows (三割, 二〇二六年, 三十五%), so that 三割 is 3割: only
# there, where they cannot be words (一方, 一部, 十分).
_KANJI_NUMBER = re.compile(r"[〇一二三四五六七八九十百千]+(?=[%割年月日倍万億兆])")
_KANJI_DIGITS = {c: n for n, c in enumerate("〇一二三四五六七八九")}
_KANJI_POWERS = {"十": 10, "百": 100, "千": 1000}


def _kanji_value(numeral: str) -> int:
    """二〇二六 → 2026 (digit by digit); 三十五 → 35, 千五百 → 1500 (with 十百千)."""
    if not any(c in _KANJI_POWERS for c in numeral):
        return int("".join(str(_KANJI_DIGITS[c]) for c in numeral))
    total, digit = 0, 0
    for c in numeral:
        if c in _KANJI_POWERS:
            total += (digit or 1) * _KANJI_POWERS[c]
            digit = 0
        else:
            digit = digit * 10 + _KANJI_DIGITS[c]
    return total + digit


def _kanji_numbers(characters: list[str], places: list[int]) -> tuple[list[str], list[int]]:
    joined = "".join(characters)
    if not _KANJI_NUMBER.search(joined):
        return characters, places
    out: list[str] = []
    out_places: list[int] = []
    at = 0
    for match in _KANJI_NUMBER.finditer(joined):
        out += characters[at : match.start()]
        out_places += places[at : match.start()]
        digits = str(_kanji_value(match[0]))
        span = places[match.start() : match.end()]
        out += list(digits)  # each digit keeps a place inside the numeral it came from
        out_places += [span[min(i, len(span) - 1)] for i in range(len(digits))]
        at = match.end()
    return out + characters[at:], out_places + places[at:]


def _thousands_separator(text: str, i: int) -> bool:
    return (
        text[i] == ","
        and 0 < i < len(text) - 3
        and text[i - 1].isdigit()
        and text[i + 1 : i + 4].isdigit()
        and not text[i + 4 : i + 5].isdigit()
    )


@dataclass(frozen=True)
class _Word:
    surface: str
    start: int
    pos1: str  # unidic's part of speech: 名詞, 接尾辞 …
    pos2: str  # and its kind: 固有名詞, 普通名詞 …
    unknown: bool  # not in the dictionary


_tagging = threading.Lock()  # one MeCab tagger per process, shared by the task threads


@cache
def _tagger() -> Any:
    import fugashi  # unidic-lite's dictionary: about 60 ms to load, once per process

    return fugashi.Tagger()


def _claims(draft: str) -> list[tuple[int, int, list[str]]]:
    """(start, end, forms that would support it) in the normalised draft."""
    claims = []
    for match in _NUMBER.finditer(draft):
        claims.append((match.start(), match.end(), [match[0]]))
    japanese = bool(_JAPANESE.search(draft))
    for match in _LATIN.finditer(draft):
        if japanese:
            claims.append(_with_kanji_after(draft, match.start(), match.end()))
            continue
        word = match[0]
        # A capital opening a sentence is checked too ("Tesla said …"); the check is case-blind,
        # so "The" or "Sales" there is found in the article in lower case.
        if word[0].isupper() or any(c.isdigit() for c in word):
            claims.append((match.start(), match.end(), [word]))
    if not japanese:
        return claims
    words, position = [], 0
    with _tagging:
        tokens = list(_tagger()(draft))
    for token in tokens:
        position = draft.index(token.surface, position)
        words.append(
            _Word(token.surface, position, token.feature.pos1, token.feature.pos2, token.is_unk)
        )
        position += len(token.surface)
    for match in _KATAKANA.finditer(draft):
        inside = [w for w in words if match.start() <= w.start < match.end()]
        one_common_word = (
            len(inside) == 1 and inside[0].pos2 == "普通名詞" and not inside[0].unknown
        )
        if not one_common_word:  # コスト is one; ファーウェイ is read as ファー + ウェイ
            claims.append(_with_kanji_after(draft, match.start(), match.end()))
    for match in _KANJI.finditer(draft):
        inside = [w for w in words if match.start() <= w.start < match.end()]
        if not any(w.pos2 == "固有名詞" or w.unknown for w in inside):
            continue
        forms = [match[0]]
        core = list(inside)
        while (
            core
            and (core[-1].pos2 == "普通名詞" or core[-1].pos1 == "接尾辞")
            and not core[-1].unknown
        ):
            core.pop()
        if core and len(core) < len(inside):
            forms.append(draft[match.start() : core[-1].start + len(core[-1].surface)])
        claims.append((match.start(), match.end(), forms))
    return claims


def _with_kanji_after(draft: str, start: int, end: int) -> tuple[int, int, list[str]]:
    """A name in letters or katakana with the kanji that follow it (ゼータ精機, C社): marked
    whole, supported if the whole or the name alone is in the article."""
    kanji = _KANJI.match(draft, end)
    if kanji and kanji.end() - end <= 4:
        return start, kanji.end(), [draft[start : kanji.end()], draft[start:end]]
    return start, end, [draft[start:end]]


def _occurs(form: str, article: str, cased_article: str) -> bool:
    if form[0].isdigit():  # 5% must not be found inside 25%, nor 2027 inside 20270
        after = r"(?!\.?\d)" if form[-1].isdigit() else ""  # 1億 in 1億2000万 is fine
        return re.search(rf"(?<![\d.]){re.escape(form)}{after}", article) is not None
    if form.isascii():
        if form.isupper() and len(form) > 1:  # US is not "us"; U.S. is US
            article, form = cased_article, form
        else:
            form = form.lower()
        return re.search(rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", article) is not None
    return form.lower() in article


def unsupported(draft: str, article: str) -> list[Unsupported]:
    """The parts of `draft` that the article does not support, in the draft's order."""
    normal_draft, places = normalise(draft)
    cased_article = _INITIALS.sub(r"\1", normalise(article)[0])
    normal_article = cased_article.lower()  # capitals find English names; the check ignores them
    found = []
    claims = sorted(_claims(normal_draft), key=lambda claim: (claim[0], -claim[1]))
    reach = 0
    for start, end, forms in claims:
        if end <= reach:  # inside a longer claim: the 4 of GPT-4o
            continue
        if start < reach:  # overlapping the one before (月上海 after 3月): only what follows it
            forms = [form[reach - start :] for form in forms if len(form) > reach - start]
            start = reach
            if not forms:
                continue
        reach = end
        if not any(_occurs(form, normal_article, cased_article) for form in forms):
            first, last = places[start], places[end - 1] + 1
            found.append(Unsupported(draft[first:last], first, last))
    return found
