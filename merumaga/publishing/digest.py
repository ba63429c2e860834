"""Offline digest drafts: the sentences that carry an article's main content, within a budget
of characters, in the article's order — a draft the editor edits, never a digest by itself.

How (LexRank-style, extractive, no model to download):
1. The text is read as the editor wrote it (Markdown): headings, tables, code, list markers and
   URLs are left out, link text kept. Each sentence keeps its span in the original text.
2. Sentences end at 。！？!? (and . ! ? followed by a space in English), or at the end of a
   paragraph — never inside 「」『』（）() or quotation marks.
3. A sentence is a bag of character bigrams (Japanese has no spaces; a dictionary tokenizer
   would need a download, bigrams need nothing) or of lower-cased words for English, weighted
   by how rare they are across the article's sentences.
4. Score: the stationary distribution of the sentences' cosine-similarity graph (power
   iteration), plus a prior for the lead (the first sentences of a news article carry most)
   and a smaller one for each paragraph's first sentence.
5. Selection: the best sentence first, then each next by centrality minus its similarity to
   what is already chosen (maximal marginal relevance), while the budget allows. A connective
   (また、ただし、…) that would dangle without the sentence before it is dropped.
"""

import re
from dataclasses import dataclass

from merumaga.publishing import similarity

OPENING = "「『（(“‘【〔［["
CLOSING = "」』）)”’】〕］]"
_JAPANESE_END = "。！？!?"
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"https?://\S+")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
# A sentence opening with one of these leans on the one before; without it, the word dangles.
_CONNECTIVE = re.compile(
    r"^(?:また|一方で?|その一方で|ただし|ただ|さらに|このため|そのため|しかし|そこで|特に|実際"
    r"|それでも|なお|もっとも|加えて|つまり)、"
)
_ABBREVIATION = re.compile(r"\b[A-Z][a-z]?\.$")  # "Mr.", "U.S.": no end of a sentence
# The weights were chosen on bench/digests/ (`bench/digests.py`); a prior for sentences like
# the title and a softer lead prior (1/√position) were tried there and did worse.
LEAD_WEIGHT = 0.5  # how much the position prior (1/position) counts against centrality
REDUNDANCY = 0.9  # MMR: how much similarity to the chosen sentences costs
PARAGRAPH_WEIGHT = 0.1  # a paragraph's first sentence tends to state its topic
# Sentences weighed at most (the first ones): the graph costs n², and a 5,000-character article
# has about 100. Anything longer gets its draft from its first 400 sentences, in bounded time.
MOST_SENTENCES = 400


@dataclass(frozen=True)
class Sentence:
    text: str  # cleaned: as it goes into the digest
    start: int  # its span in the original text
    end: int
    opens_paragraph: bool = False  # a paragraph's first sentence, often its topic
    # Parts a machine-written sentence states that the article does not (publishing.grounding):
    # (start, end) within `text`.
    unsupported: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Draft:
    digest: str
    sentences: list[Sentence]
    backend: str = "offline"
    notice: str = ""  # what the editor must know about how it was made, in words


def _prose_lines(source: str) -> list[tuple[int, str]]:
    """(offset, line) for each line of running text: no headings, tables, code or rules."""
    lines, offset, in_code = [], 0, False
    for line in source.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            in_code = not in_code
        elif not (
            in_code
            or not stripped
            or stripped.startswith(("#", "|", ">", "<!--"))
            or set(stripped) <= set("-*_= ")
        ):
            lines.append((offset, line.rstrip("\r\n")))
        else:
            lines.append((offset, ""))  # a paragraph break
        offset += len(line)
    return lines


def _clean(text: str) -> str:
    text = _LINK.sub(r"\1", text)
    text = _URL.sub("", text)
    text = _EMPHASIS.sub("", text)
    return re.sub(r"\s+", " ", text).strip()


def split_sentences(source: str) -> list[Sentence]:
    """The article's sentences, each with its span in `source`."""
    sentences: list[Sentence] = []
    depth = 0
    paragraph_start = True
    buffer: list[tuple[int, str]] = []  # (offset in source, character)

    def close() -> None:
        nonlocal depth, paragraph_start
        while buffer and buffer[-1][1].isspace():  # the line break after a last sentence
            buffer.pop()
        if buffer:
            text = _clean("".join(character for _o, character in buffer))
            if len(text) >= 2:
                sentences.append(Sentence(text, buffer[0][0], buffer[-1][0] + 1, paragraph_start))
                paragraph_start = False
        buffer.clear()
        depth = 0

    for offset, line in _prose_lines(source):
        if not line.strip():
            close()
            paragraph_start = True
            continue
        marker = _LIST_MARKER.match(line)
        skip = marker.end() if marker else 0
        if marker:
            close()  # a list item is a sentence of its own
        for index, character in enumerate(line[skip:], start=skip):
            if character.isspace() and not buffer:
                continue
            buffer.append((offset + index, character))
            if character in OPENING:
                depth += 1
            elif character in CLOSING and depth:
                depth -= 1
            elif depth == 0 and (
                character in _JAPANESE_END
                or (
                    character == "."
                    and (index + 1 == len(line) or line[index + 1] == " ")
                    and not _ABBREVIATION.search("".join(c for _o, c in buffer[-4:]))
                )
            ):
                close()
        if buffer:
            buffer.append((offset + len(line), " "))  # a line break inside a paragraph
    close()
    return sentences


def draft(source: str, budget: int = 200) -> Draft:
    """A digest of at most `budget` characters (one sentence at least, if there is one)."""
    sentences = split_sentences(source)[:MOST_SENTENCES]
    if not sentences:
        return Draft("", [])
    vectors = similarity.weighted([similarity.terms(sentence.text) for sentence in sentences])
    n = len(sentences)
    # n × n similarities: an article has tens to a couple of hundred sentences.
    similar = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            similar[i][j] = similar[j][i] = similarity.cosine(vectors[i], vectors[j])
    # Each sentence passes its weight to those like it (only the non-zero links are kept).
    links = []
    for i in range(n):
        total = sum(similar[i]) or 1.0
        links.append([(j, value / total) for j, value in enumerate(similar[i]) if value])
    centrality = [1.0 / n] * n
    for _ in range(30):  # power iteration, damped as PageRank's 0.85
        passed = [0.15 / n] * n
        for i in range(n):
            share = 0.85 * centrality[i]
            for j, weight in links[i]:
                passed[j] += share * weight
        converged = max(abs(a - b) for a, b in zip(passed, centrality, strict=True)) < 1e-6
        centrality = passed
        if converged:
            break
    top = max(centrality) or 1.0
    score = [
        (1 - LEAD_WEIGHT) * centrality[i] / top
        + LEAD_WEIGHT / (i + 1)
        + PARAGRAPH_WEIGHT * sentences[i].opens_paragraph
        for i in range(n)
    ]
    chosen: list[int] = []
    used = 0
    candidates = set(range(n))
    while candidates:
        best = max(
            candidates,
            key=lambda i: score[i] - REDUNDANCY * max((similar[i][j] for j in chosen), default=0.0),
        )
        candidates.discard(best)
        length = len(sentences[best].text)
        if chosen and used + length > budget:
            continue
        chosen.append(best)
        used += length
        if used >= budget:
            break
    picked = []
    for i in sorted(chosen):
        sentence = sentences[i]
        connective = _CONNECTIVE.match(sentence.text)
        if connective and i - 1 not in chosen:
            cut = connective.end()
            start = sentence.start
            if source.startswith(connective[0], start):  # no Markdown inside: the span shrinks
                start += cut
            sentence = Sentence(sentence.text[cut:], start, sentence.end, sentence.opens_paragraph)
        picked.append(sentence)
    joiner = "" if picked[0].text[-1] in _JAPANESE_END[:3] else " "  # 。！？: no spaces
    return Draft(joiner.join(sentence.text for sentence in picked), picked)
