"""Digest drafts by a large language model, checked against the article before anyone sees them.

1. The model is asked for a digest of about the budget, in the article's language, using only
   the article's facts.
2. Every number, date, percentage and proper noun in its answer must occur in the article
   (publishing.grounding). If any does not, the model is asked once more, with those parts
   named; what is still unsupported after that is marked in the draft, never dropped in silence.
3. Each sentence of the draft is linked to the article's sentence most like it, so the editor
   checks it in one click.
4. If the endpoint cannot answer (down, too slow, refusing the key), the editor gets the
   offline draft instead, with the reason.
"""

from collections.abc import Callable

from django.utils.translation import gettext as _

from merumaga.publishing import digest, grounding, llm, similarity

ASKING, RETRYING = "asking", "retrying"


def _language_is_english(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(c.isascii() for c in letters) > 0.8 * len(letters)


def _request(title: str, text: str, budget: int, what: str) -> list[dict[str, str]]:
    if _language_is_english(text):
        system = (
            "You are an editor at a research institute. Write the requested text in English, "
            f"about {budget} characters, in plain sentences without headings or lists. Use only "
            "facts stated in the source: every number, date and name must appear there."
        )
        ask = {"digest": "a digest of this article", "preface": "a short preface"}[what]
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": f"Write {ask}.\n\nTitle: {title}\n\n{text}"},
        ]
    system = (
        "あなたは研究所の編集者です。指示された文章を日本語で、"
        f"約{budget}文字、見出しや箇条書きを使わない平文で書いてください。"
        "数字・日付・固有名詞は、元の文章にあるものだけを使ってください。"
    )
    ask = {"digest": "この記事の要約（3文程度）", "preface": "週報の冒頭に置く短い前書き"}[what]
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"{ask}を書いてください。\n\nタイトル: {title}\n\n{text}"},
    ]


def _retry(failures: list[grounding.Unsupported], english: bool) -> dict[str, str]:
    named = ", ".join(dict.fromkeys(f.text for f in failures))
    if english:
        content = (
            f"These do not appear in the source: {named}. Rewrite the text using only "
            "the source's facts, at the same length."
        )
    else:
        content = (
            f"次の語句は元の文章にありません: {named}。"
            "元の文章にある事実だけで、同じ長さで書き直してください。"
        )
    return {"role": "user", "content": content}


def _checked(answer: str, text: str, source: str) -> digest.Draft:
    """The answer as sentences, each linked to the sentence of `text` most like it (its place
    in `text`), with the parts `source` (the title and text) does not support."""
    article = digest.split_sentences(text)
    written = digest.split_sentences(answer) or [digest.Sentence(answer.strip(), 0, len(answer))]
    vectors = similarity.weighted(
        [similarity.terms(s.text) for s in article] + [similarity.terms(s.text) for s in written]
    )
    sentences = []
    for index, sentence in enumerate(written):  # sentences × article sentences: a few hundred
        vector = vectors[len(article) + index]
        nearest = max(
            range(len(article)),
            key=lambda i: similarity.cosine(vector, vectors[i]),
            default=None,
        )
        start, end = (
            (article[nearest].start, article[nearest].end) if nearest is not None else (0, 0)
        )
        missing = grounding.unsupported(sentence.text, source)
        sentences.append(
            digest.Sentence(
                sentence.text, start, end, unsupported=tuple((m.start, m.end) for m in missing)
            )
        )
    joiner = " " if _language_is_english(answer) else ""
    return digest.Draft(joiner.join(s.text for s in sentences), sentences, backend="llm")


def _failures(found: digest.Draft) -> list[grounding.Unsupported]:
    return [
        grounding.Unsupported(s.text[a:b], a, b) for s in found.sentences for a, b in s.unsupported
    ]


def draft(
    text: str,
    budget: int = 200,
    title: str = "",
    *,
    what: str = "digest",
    on_progress: Callable[[str], None] = lambda state: None,
) -> digest.Draft:
    """A draft by the configured model (`what`: a "digest" of an article, or a "preface" to
    the week's articles given as `text`), or the offline digest if the model cannot answer."""
    source = f"{title}\n\n{text}" if title else text
    messages = _request(title, text, budget, what)
    on_progress(ASKING)
    try:
        answer = llm.complete(messages)
    except llm.LlmError as error:
        fallback = digest.draft(text, budget)
        notice = _(
            "LLMで作成できなかったため、オフラインの下書きを表示しています。理由: %(reason)s"
        )
        return digest.Draft(
            fallback.digest, fallback.sentences, "offline", notice % {"reason": error}
        )
    found = _checked(answer, text, source)
    failures = _failures(found)
    if not failures:
        return found
    on_progress(RETRYING)
    messages += [
        {"role": "assistant", "content": answer},
        _retry(failures, _language_is_english(text)),
    ]
    try:
        found = _checked(llm.complete(messages), text, source)
    except llm.LlmError as error:
        notice = _(
            "記事にない語句があったため書き直しを依頼しましたが、失敗しました (%(reason)s)。"
            "印の箇所を必ず確認してください。"
        )
        return digest.Draft(found.digest, found.sentences, "llm", notice % {"reason": error})
    if _failures(found):
        notice = _(
            "記事にない語句があったため1回書き直させましたが、まだ記事で確認できない語句が"
            "あります（印の箇所）。使う前に必ず確認してください。"
        )
    else:
        notice = _("最初の下書きに記事にない語句があったため、1回書き直させました。")
    return digest.Draft(found.digest, found.sentences, "llm", notice)


def as_json(found: digest.Draft) -> dict:
    """What DraftRequest.result and `merumaga digest --json` hold."""
    return {
        "digest": found.digest,
        "backend": found.backend,
        "notice": found.notice,
        "sentences": [
            {
                "text": s.text,
                "start": s.start,
                "end": s.end,
                "unsupported": [list(part) for part in s.unsupported],
            }
            for s in found.sentences
        ],
    }


def from_json(result: dict) -> digest.Draft:
    sentences = [
        digest.Sentence(
            s["text"], s["start"], s["end"], unsupported=tuple(tuple(p) for p in s["unsupported"])
        )
        for s in result["sentences"]
    ]
    return digest.Draft(result["digest"], sentences, result["backend"], result["notice"])


def marked_pieces(sentence: digest.Sentence) -> list[tuple[str, bool]]:
    """The sentence as (text, unsupported) pieces, for marking the unsupported ones."""
    pieces, at = [], 0
    for first, end in sorted(sentence.unsupported):
        start = max(first, at)  # spans never overlap; this keeps each character once anyway
        if start >= end:
            continue
        if start > at:
            pieces.append((sentence.text[at:start], False))
        pieces.append((sentence.text[start:end], True))
        at = end
    if at < len(sentence.text):
        pieces.append((sentence.text[at:], False))
    return pieces
