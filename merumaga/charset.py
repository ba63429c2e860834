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
from collections.abc import Iterable
from dataclasses import dataclass

UTF8 = "utf-8"
ISO2022JP = "iso-2022-jp"
CHARSETS = (UTF8, ISO2022JP)

JIS_CODEC = "iso2022_jp"
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
        text.encode(JIS_CODEC)
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
    return text.encode(JIS_CODEC)


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


# --- Finding them while the editor writes ---------------------------------------------------
# What an editor would write instead of a character ISO-2022-JP cannot carry: variant kanji in
# names (髙 → 高), and the simplified Chinese characters that digests of Chinese sources bring
# along (华为 → 華為). Every key is outside JIS X 0208 and every value inside it (tested).
# These are suggestions shown to the editor, never applied by themselves: only the editor knows
# whether 髙 is a name that must stay as it is.
_SUGGESTIONS_TABLE = (
    "髙高 﨑崎 𠮷吉 德徳 瀨瀬 栁柳 濵浜 圳セン 华華 为為 发発 车車 电電 "
    "动動 腾騰 讯訊 东東 亚亜 宁寧 时時 长長 节節 汤湯 旷曠 视視 线線 "
    "纪紀 谱譜 兴興 联聯 驾駕 驶駛 锂リチウム 钠ナトリウム 储儲 络絡 务務 "
    "业業 产産 经経 济済 际際 开開 门門 关関 们們 这這 对対 说説 还還 "
    "进進 过過 应応 问問 题題 么麼 两両 实実 现現 头頭 样様 义義 认認 "
    "识識 让譲 计計 设設 导導 话話 语語 领領 规規 术術 场場 报報 质質 "
    "书書 习習 间間 资資 众衆 优優 传伝 专専 丝糸 严厳 丰豊 临臨 举挙 "
    "乐楽 乡郷 买買 亿億 仅僅 侧側 兰蘭 养養 农農 刘劉 创創 劳労 势勢 "
    "协協 单単 卖売 卫衛 历歴 压圧 县県 变変 启啓 员員 响響 团団 园園 "
    "围囲 图図 圆円 圣聖 块塊 处処 备備 复復 夺奪 奋奮 妇婦 孙孫 宽寛 "
    "寻尋 层層 岁歳 岛島 币幣 帅帥 师師 带帯 帮幇 库庫 庙廟 庆慶 废廃 "
    "异異 张張 弹弾 强強 归帰 录録 彻徹 忆憶 态態 总総 恶悪 惊驚 惯慣 "
    "战戦 户戸 扩拡 扫掃 执執 扬揚 护護 拟擬 拥擁 择択 损損 换換 挥揮 "
    "敌敵 显顕 暂暫 杂雑 权権 杨楊 极極 构構 标標 树樹 桥橋 检検 欢歓 "
    "毕畢 汇匯 汉漢 沟溝 沪滬 泽沢 洁潔 测測 浓濃 涂塗 润潤 涨漲 渐漸 "
    "满満 滚滾 滨浜 灭滅 灵霊 灾災 热熱 爱愛 猎猟 环環 畅暢 疗療 监監 "
    "盘盤 矿鉱 码碼 础礎 确確 离離 种種 积積 稳穏 穷窮 竞競 笔筆 签簽 "
    "简簡 类類 紧緊 纳納 纵縦 纷紛 组組 细細 织織 终終 结結 绕繞 绘絵 "
    "给給 统統 继継 续続 维維 综綜 绿緑 编編 缓緩 缩縮 罗羅 职職 聪聡 "
    "肃粛 胜勝 脑脳 舰艦 艺芸 药薬 获獲 营営 萨薩 虽雖 补補 见見 观観 "
    "览覧 觉覚 讨討 议議 记記 讲講 许許 论論 证証 评評 诉訴 词詞 译訳 "
    "试試 诚誠 询詢 该該 详詳 误誤 请請 诸諸 读読 课課 调調 谈談 谋謀 "
    "谢謝 贝貝 负負 贡貢 财財 责責 败敗 货貨 贯貫 贵貴 费費 贸貿 赛賽 "
    "赞賛 赢贏 赵趙 趋趨 跃躍 轨軌 转転 轮輪 软軟 轻軽 载載 较較 辅輔 "
    "辆輛 输輸 边辺 达達 迁遷 运運 远遠 违違 连連 迟遅 适適 选選 递逓 "
    "逻邏 遗遺 邮郵 邻隣 郑鄭 酱醤 释釈 针針 钟鐘 钢鋼 钱銭 铁鉄 铜銅 "
    "银銀 销銷 锁鎖 锅鍋 错錯 键鍵 镇鎮 闭閉 闯闖 闲閑 闻聞 阅閲 队隊 "
    "阳陽 阶階 陆陸 陈陳 险険 隐隠 难難 雾霧 韩韓 页頁 顶頂 项項 顺順 "
    "须須 顾顧 顿頓 预預 频頻 颜顔 额額 风風 飞飛 饭飯 馆館 驱駆 验験 "
    "鱼魚 鲁魯 鸟鳥 鸡鶏 齐斉 龙竜 龟亀"
)
SUGGESTIONS: dict[str, str] = {pair[0]: pair[1:] for pair in _SUGGESTIONS_TABLE.split()}
# Words written in katakana in Japanese, where one character alone has no Japanese form.
WORD_SUGGESTIONS: dict[str, str] = {"深圳": "深セン"}


@dataclass(frozen=True)
class JisProblem:
    """One character ISO-2022-JP readers would not get as written, where it first appears."""

    where: str  # the field, in the editor's words ("件名", "記事「…」の要約")
    character: str
    line: int  # 1-based, in that field
    column: int  # 1-based
    excerpt: str  # the text around it, so that the editor finds it
    occurrences: int
    replacement: str  # what to write instead; "" when there is no suggestion
    automatic: bool  # True: sent as `replacement` by itself; False: the reader gets UTF-8


def jis_problems(fields: Iterable[tuple[str, str]]) -> list[JisProblem]:
    """Each character of each (where, text) that ISO-2022-JP readers would not get as written.

    Characters with a faithful equivalent (① → (1)) are listed as replaced automatically;
    the others make those readers' mail UTF-8, which old phones may show garbled, so a
    replacement is suggested where one is known (髙 → 高, 深圳 → 深セン, 华 → 華).
    """
    problems = []
    for where, text in fields:
        if not text or is_jis(text):
            continue
        seen: dict[str, list[int]] = {}
        for position, char in enumerate(text):
            if not is_jis(char):
                seen.setdefault(char, []).append(position)
        for char, positions in seen.items():
            first = positions[0]
            line = text.count("\n", 0, first) + 1
            column = first - (text.rfind("\n", 0, first) + 1) + 1
            mapped, missing = to_jis(char)
            automatic = not missing
            problems.append(
                JisProblem(
                    where=where,
                    character=char,
                    line=line,
                    column=column,
                    excerpt=text[max(0, first - 12) : first + 13].replace("\n", " "),
                    occurrences=len(positions),
                    replacement=mapped if automatic else _suggestion(text, first, char),
                    automatic=automatic,
                )
            )
    return problems


def _suggestion(text: str, position: int, char: str) -> str:
    for word, replacement in WORD_SUGGESTIONS.items():
        start = position - word.index(char) if char in word else -1
        if start >= 0 and text.startswith(word, start):
            return replacement
    return SUGGESTIONS.get(char, "")
