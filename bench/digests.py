"""How good are the offline digest drafts? Against the hand-written digests of bench/digests/
(twelve articles written for this evaluation: eleven Japanese, one English, 1,500–2,750
characters, each with the digest an editor wrote), for the offline summariser and a lead-3
baseline (the first three sentences):

- character ROUGE-1 and ROUGE-L F1 (characters as tokens, spaces left out: the usual ROUGE
  tokenizers drop Japanese);
- the share of draft sentences taken whole from the article;
- time and peak memory (tracemalloc) per article. No dictionary is loaded: the summariser uses
  character bigrams;
- what the grounding check of language-model drafts (publishing/grounding.py) flags in the
  hand-written digests: its false alarms on faithful paraphrase.

Each draft gets the budget of its reference digest's length.

    .venv/bin/python bench/digests.py
"""

import json
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

from _django import ROOT

HERE = Path(__file__).parent / "digests"


def characters(text: str) -> list[str]:
    return [c for c in text if not c.isspace()]


def rouge_1(draft: str, reference: str) -> float:
    a, b = Counter(characters(draft)), Counter(characters(reference))
    overlap = sum((a & b).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(a.values()), overlap / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def rouge_l(draft: str, reference: str) -> float:
    a, b = characters(draft), characters(reference)
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)
    for x in a:  # the longest common subsequence, one row at a time
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    lcs = previous[-1]
    if not lcs:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def unidic_terms():
    """Words of a morphological analyser (fugashi + unidic-lite, from PyPI), content words only:
    the alternative to character bigrams, for --compare."""
    import unicodedata

    import fugashi

    tagger = fugashi.Tagger()
    function_words = {"助詞", "助動詞", "補助記号", "記号"}

    def terms(text: str) -> Counter[str]:
        normal = unicodedata.normalize("NFKC", text).lower()
        return Counter(w.surface for w in tagger(normal) if w.feature.pos1 not in function_words)

    return terms


def compare(references: dict[str, str]) -> None:
    """ROUGE-L and time with bigrams, then with a morphological analyser's words."""
    from merumaga.publishing import digest, similarity

    articles = {name: (HERE / name).read_text(encoding="utf-8") for name in references}
    bigrams = similarity.terms
    try:
        started = time.perf_counter()
        words = unidic_terms()
        loading = time.perf_counter() - started
    except ImportError:
        raise SystemExit("--compare needs: .venv/bin/pip install fugashi unidic-lite") from None
    for label, terms in (("character bigrams", bigrams), ("unidic words (fugashi)", words)):
        similarity.terms = terms
        started = time.perf_counter()
        drafts = {
            name: digest.draft(articles[name], len(r)).digest for name, r in references.items()
        }
        each = (time.perf_counter() - started) / len(references) * 1000
        score = statistics.mean(rouge_l(drafts[n], r) for n, r in references.items())
        print(f"{label:<24} ROUGE-L {score:.3f}  {each:.1f} ms/article")
    similarity.terms = bigrams
    print(f"dictionary loading (fugashi + unidic-lite): {loading * 1000:.0f} ms")


def main() -> None:
    sys.path.insert(0, ROOT)
    from merumaga.publishing import digest

    if "--compare" in sys.argv:
        compare(json.loads((HERE / "digests.json").read_text(encoding="utf-8")))
        return

    references = json.loads((HERE / "digests.json").read_text(encoding="utf-8"))
    rows = []
    for name, reference in references.items():
        article = (HERE / name).read_text(encoding="utf-8")
        sentences = digest.split_sentences(article)
        cleaned = {sentence.text for sentence in sentences}
        lead = (
            "".join(s.text for s in sentences[:3])
            if "。" in article
            else " ".join(s.text for s in sentences[:3])
        )
        started = time.perf_counter()
        found = digest.draft(article, len(reference))
        took = time.perf_counter() - started
        tracemalloc.start()  # a second run for memory: tracing slows Python several times
        digest.draft(article, len(reference))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        whole = sum(s.text in cleaned for s in found.sentences) / max(1, len(found.sentences))
        rows.append(
            {
                "article": name,
                "chars": len(article),
                "offline_r1": rouge_1(found.digest, reference),
                "offline_rl": rouge_l(found.digest, reference),
                "lead3_r1": rouge_1(lead, reference),
                "lead3_rl": rouge_l(lead, reference),
                "whole": whole,
                "ms": took * 1000,
                "peak_mb": peak / 2**20,
            }
        )
    print(
        f"{'article':<30}{'chars':>6}{'off R1':>8}{'off RL':>8}{'lead R1':>8}{'lead RL':>8}"
        f"{'whole':>7}{'ms':>7}{'MB':>6}"
    )
    for r in rows:
        print(
            f"{r['article']:<30}{r['chars']:>6}{r['offline_r1']:>8.3f}{r['offline_rl']:>8.3f}"
            f"{r['lead3_r1']:>8.3f}{r['lead3_rl']:>8.3f}{r['whole']:>7.0%}{r['ms']:>7.1f}"
            f"{r['peak_mb']:>6.1f}"
        )
    mean = {key: statistics.mean(r[key] for r in rows) for key in rows[0] if key != "article"}
    print(
        f"{'mean':<30}{mean['chars']:>6.0f}{mean['offline_r1']:>8.3f}{mean['offline_rl']:>8.3f}"
        f"{mean['lead3_r1']:>8.3f}{mean['lead3_rl']:>8.3f}{mean['whole']:>7.0%}{mean['ms']:>7.1f}"
        f"{mean['peak_mb']:>6.1f}"
    )
    slowest, largest = max(r["ms"] for r in rows), max(r["peak_mb"] for r in rows)
    print(f"max time {slowest:.1f} ms, max peak {largest:.1f} MB; dictionary: none (bigrams)")
    # The check a language model's drafts go through, run on the editors' own digests: what it
    # flags there is what it would flag in a faithful paraphrase (its false alarms).
    from merumaga.publishing import grounding

    started = time.perf_counter()
    grounding.unsupported("辞書を読み込む。", "辞書")
    loading = time.perf_counter() - started
    flagged = {
        name: [part.text for part in grounding.unsupported(reference, (HERE / name).read_text())]
        for name, reference in references.items()
    }
    found = [(name, parts) for name, parts in flagged.items() if parts]
    print(
        f"grounding check on the hand-written digests: {sum(map(len, flagged.values()))} parts "
        f"flagged {found}; dictionary load {loading * 1000:.0f} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
