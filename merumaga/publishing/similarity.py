"""How alike two texts are, with nothing to download: character bigrams for Japanese (no
spaces to split on; a dictionary tokenizer would need one), lower-cased words for English,
weighted by rarity across the texts compared. Digest drafts and related articles use it."""

import math
import re
import unicodedata
from collections import Counter

_WORD = re.compile(r"[a-z0-9]+")


def terms(text: str) -> Counter[str]:
    normal = unicodedata.normalize("NFKC", text).lower()
    words = _WORD.findall(normal)
    non_ascii = re.sub(r"[\x00-\x7f]", "", normal)
    grams = [non_ascii[i : i + 2] for i in range(len(non_ascii) - 1)]
    return Counter(words + grams)


def weighted(counts: list[Counter[str]]) -> list[dict[str, float]]:
    """Each text's terms weighted by how rare they are among these texts (TF-IDF)."""
    documents = Counter(term for count in counts for term in count)
    n = len(counts)
    return [
        {term: tf * math.log(1 + n / documents[term]) for term, tf in count.items()}
        for count in counts
    ]


def cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    dot = sum(weight * b.get(term, 0.0) for term, weight in a.items())
    norms = math.sqrt(sum(w * w for w in a.values())) * math.sqrt(sum(w * w for w in b.values()))
    return dot / norms if norms else 0.0
