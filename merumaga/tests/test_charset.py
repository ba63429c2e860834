"""Tests for the faithful ISO-2022-JP mapping and the per-mail charset choice."""

import unicodedata

import pytest

from merumaga.charset import FAITHFUL, choose, encode_jis, is_jis, to_jis, uncarried


def _round_trip_jis(text: str) -> str:
    return encode_jis(text).decode("iso2022_jp")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # Enclosed numbers.
        ("①②⑩⑳", "(1)(2)(10)(20)"),
        ("㉑㊿", "(21)(50)"),
        # Parenthesised and circled ideographs.
        ("㈱", "(株)"),
        ("㈲㈹", "(有)(代)"),
        ("㊤㊙", "(上)(秘)"),
        # Roman numerals keep their case.
        ("ⅠⅡⅢⅣⅨⅫ", "IIIIIIIVIXXII"),
        ("Ⅳ章", "IV章"),
        ("ⅰⅱⅲⅻ", "iiiiiixii"),
        # Abbreviations and units.
        ("№1", "No.1"),
        ("℡03", "TEL03"),
        ("㏍", "K.K."),
        ("㎝㎜㎞㎏㎎㏄", "cmmmkmkgmgcc"),
        ("100㎡", "100平方メートル"),
        ("㍉㌔㌢㍍㌘㌧㌃㌶㍑㍗", "ミリキロセンチメートルグラムトンアールヘクタールリットルワット"),
        ("㌍㌦㌣㌫㍊㌻", "カロリードルセントパーセントミリバールページ"),
        # Era squares.
        ("㍻㍼㍽㍾㋿", "平成昭和大正明治令和"),
        # The same JIS character under its cp932 code point.
        ("10～20", "10〜20"),
        ("－5", "−5"),
        ("￠￡￢", "¢£¬"),
        ("a∥b", "a‖b"),
        ("A—B", "A―B"),
        ("＂引用＂＇", '"引用"\''),
    ],
)
def test_mapping_groups(source: str, expected: str) -> None:
    mapped, missing = to_jis(source)
    assert (mapped, missing) == (expected, [])
    assert _round_trip_jis(mapped) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("ｶﾀｶﾅ", "カタカナ"),
        ("ｶﾞｷﾞｸﾞｹﾞｺﾞ ﾊﾟﾋﾟﾌﾟ ｳﾞ", "ガギグゲゴ パピプ ヴ"),
        ("ﾊﾟｰﾃｨｰ", "パーティー"),
        ("｢ﾃｽﾄ｣｡､･", "「テスト」。、・"),
        # No precomposed form: the voiced mark stays visible as the spacing mark.
        ("ｱﾞ", "ア゛"),
        ("ｵﾟ", "オ゜"),
        # Decomposed (NFD) kana, as in macOS file names, compose to the same character.
        ("か\u3099き\u3099", "がぎ"),
    ],
)
def test_halfwidth_and_decomposed_kana(source: str, expected: str) -> None:
    assert to_jis(source) == (expected, [])


def test_nfkc_is_applied_to_halfwidth_runs_only() -> None:
    # NFKC on the whole text would turn Ａ into A and ㈱ into (株) in one go; full-width
    # Latin letters are JIS characters and must stay as written.
    assert to_jis("Ａ１ｶ") == ("Ａ１カ", [])


@pytest.mark.parametrize(
    ("name", "variant"), [("髙橋", "髙"), ("山﨑", "﨑"), ("𠮷野", "𠮷"), ("德川", "德")]
)
def test_variant_kanji_in_names_are_reported_not_mapped(name: str, variant: str) -> None:
    mapped, missing = to_jis(f"{name}様 ①")
    # ① is still mapped, but the name is kept exactly as written (not 高, 崎, 吉, 徳) and reported.
    assert mapped == f"{name}様 (1)"
    assert missing == [variant]


def test_uncarried_lists_each_character_once_in_order() -> None:
    assert uncarried("😀髙😀﨑 髙") == ["😀", "髙", "﨑"]
    assert uncarried("ふつうの日本語") == []


def test_escape_cannot_be_carried() -> None:
    # The codec accepts ESC, but a reader would take it for an escape sequence.
    assert not is_jis("a\x1bb")
    assert to_jis("a\x1b(Bb")[1] == ["\x1b"]
    with pytest.raises(ValueError):
        encode_jis("\x1b$B")


def test_encode_jis_raises_instead_of_replacing() -> None:
    with pytest.raises(ValueError, match="髙"):
        encode_jis("髙橋")


def test_every_mapping_goes_from_outside_jis_to_inside() -> None:
    # to_jis returns encodable text unchanged; that is only right if no key is a JIS character.
    for source, target in FAITHFUL.items():
        assert not is_jis(source), source
        assert is_jis(target), (source, target)


def test_choose_for_utf8_readers_keeps_everything() -> None:
    parts = ["件名①", "本文 髙橋 ｶﾞ"]
    assert choose(parts, "utf-8") == ("utf-8", parts, [])


def test_choose_for_iso2022jp_readers_maps_when_everything_fits() -> None:
    parts = ["【週報】第①号", "10～20㎝ ㈱ﾃｽﾄ", "<p>№5</p>"]
    assert choose(parts, "ISO-2022-JP") == (
        "iso-2022-jp",
        ["【週報】第(1)号", "10〜20cm (株)テスト", "<p>No.5</p>"],
        [],
    )


def test_choose_falls_back_to_utf8_with_the_original_text() -> None:
    parts = ["第①号", "髙橋様 😀", "<p>山﨑様 髙</p>"]
    assert choose(parts, "iso-2022-jp") == ("utf-8", parts, ["髙", "😀", "﨑"])


def test_choose_rejects_unknown_charsets() -> None:
    with pytest.raises(ValueError):
        choose(["x"], "cp932")


SAMPLES = [
    "ASCII only, with ~ and \\ and ¥",
    "自動運転の研究動向（第12号）〜2025年春〜",
    "①②③ ㈱未来技術 Ⅳ期 №7 ℡ 03-1234 ㎡ ㌔ ㍻ ～ － ∥ ￠",
    "ﾊﾝｶｸｶﾀｶﾅ ｶﾞｯｺｳ ﾎﾟｲﾝﾄ",
    "髙橋さんと山﨑さんが𠮷野家へ 😀",
    "改行を含む\r\n本文\n です\r",
    "",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_nothing_is_lost(text: str) -> None:
    chosen, (part,), missing = choose([text], "iso-2022-jp")
    if chosen == "iso-2022-jp":
        assert missing == []
        assert _round_trip_jis(part) == part == to_jis(text)[0]
    else:
        assert part == text
        assert missing and all(char in text for char in missing)
        assert part.encode("utf-8").decode("utf-8") == text


def _documented_mapping(char: str) -> str | None:
    """What to_jis may turn one character into, or None if it must stay unmapped."""
    if is_jis(char):
        return char
    if char in FAITHFUL:
        return FAITHFUL[char]
    if "\uff61" <= char <= "\uff9f":
        return unicodedata.normalize("NFKC", char).translate(str.maketrans(FAITHFUL))
    return None


def test_nothing_is_lost_for_any_single_character() -> None:
    # Every BMP character and a few astral ones either survive ISO-2022-JP unchanged, become
    # their documented faithful replacement, or force UTF-8 with the original kept.
    astral = ["😀", "𠮷", "𩸽", "🇯🇵"]
    candidates = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF] + astral
    for char in candidates:
        chosen, (part,), missing = choose([char], "iso-2022-jp")
        expected = _documented_mapping(char)
        if expected is None:
            assert (chosen, part, missing) == ("utf-8", char, list(dict.fromkeys(char))), char
        else:
            assert (chosen, part) == ("iso-2022-jp", expected), char
            assert _round_trip_jis(part) == expected, char


# Finding them while the editor writes.


def test_each_suggestion_replaces_a_character_iso_2022_jp_cannot_carry_with_one_it_can():
    from merumaga.charset import SUGGESTIONS, WORD_SUGGESTIONS

    assert len(SUGGESTIONS) > 300
    for character, replacement in {**SUGGESTIONS, **WORD_SUGGESTIONS}.items():
        assert not is_jis(character), character
        assert is_jis(replacement), replacement


def test_problems_say_which_character_where_and_what_to_write_instead():
    from merumaga.charset import jis_problems

    text = "深圳の华为が発表。\n①新型電池\n髙橋氏によれば①"
    found = {p.character: p for p in jis_problems([("本文", text), ("件名", "普通の件名")])}
    assert set(found) == {"圳", "华", "为", "①", "髙"}
    assert (found["圳"].line, found["圳"].column, found["圳"].replacement) == (1, 2, "深セン")
    assert found["华"].replacement == "華" and not found["华"].automatic
    assert (found["髙"].line, found["髙"].column, found["髙"].replacement) == (3, 1, "高")
    circled = found["①"]
    assert circled.automatic and circled.replacement == "(1)" and circled.occurrences == 2
    assert (circled.line, circled.column) == (2, 1)
    assert "新型電池" in circled.excerpt
    assert all(p.where == "本文" for p in found.values())


def test_a_character_with_no_known_replacement_says_so():
    from merumaga.charset import jis_problems

    [problem] = jis_problems([("本文", "絵文字🚗です")])
    assert problem.character == "🚗" and problem.replacement == "" and not problem.automatic


def test_text_iso_2022_jp_carries_has_no_problems():
    from merumaga.charset import jis_problems

    assert jis_problems([("本文", "自動運転と電池の最新動向 (2026年11月)")]) == []
