"""Related articles: the published articles nearest to one by content (title and digest),
computed offline when the page is made (the page cache keeps it until content changes)."""

from collections.abc import Collection

from merumaga.publishing import similarity
from merumaga.publishing.models import Article

CANDIDATES = 500  # the latest published articles compared: a few ms for short texts
SHOWN = 3
LEAST_SIMILARITY = 0.05  # below this, an article is no more related than any other


def related_articles(article: Article, count: int = SHOWN) -> list[Article]:
    return related_to_each([article], count)[article.pk]


def related_to_each(
    articles: list[Article], count: int = SHOWN, leave_out: Collection[int] = ()
) -> dict[int, list[Article]]:
    """For each of `articles`, the `count` published articles nearest to it, none of
    `articles` nor `leave_out`. One query; the similarities cost |articles| × 500 cosines."""
    mine = {article.pk for article in articles} | set(leave_out)
    others = [
        item
        for item in Article.objects.published()
        .only("id", "title", "slug", "digest", "published_at", "source_name", "source_detail")
        .order_by("-published_at", "-id")[: CANDIDATES + len(mine)]
        if item.pk not in mine
    ][:CANDIDATES]
    if not others:
        return {article.pk: [] for article in articles}
    texts = [f"{item.title}\n{item.digest}" for item in [*articles, *others]]
    vectors = similarity.weighted([similarity.terms(text) for text in texts])
    theirs = vectors[len(articles) :]
    found = {}
    for article, vector in zip(articles, vectors, strict=False):
        scored = sorted(
            (
                (similarity.cosine(vector, other), item)
                for other, item in zip(theirs, others, strict=True)
            ),
            key=lambda pair: -pair[0],
        )
        found[article.pk] = [item for score, item in scored[:count] if score >= LEAST_SIMILARITY]
    return found
