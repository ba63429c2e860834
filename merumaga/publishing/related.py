"""Related articles: the published articles nearest to one by content (title and digest),
computed offline when the page is made (the page cache keeps it until content changes)."""

from merumaga.publishing import similarity
from merumaga.publishing.models import Article

CANDIDATES = 500  # the latest published articles compared: a few ms for short texts
SHOWN = 3
LEAST_SIMILARITY = 0.05  # below this, an article is no more related than any other


def related_articles(article: Article, count: int = SHOWN) -> list[Article]:
    others = list(
        Article.objects.published()
        .exclude(pk=article.pk)
        .only("id", "title", "slug", "digest", "published_at", "source_name", "source_detail")
        .order_by("-published_at", "-id")[:CANDIDATES]
    )
    if not others:
        return []
    texts = [f"{item.title}\n{item.digest}" for item in [article, *others]]
    mine, *theirs = similarity.weighted([similarity.terms(text) for text in texts])
    scored = sorted(
        (
            (similarity.cosine(mine, vector), item)
            for vector, item in zip(theirs, others, strict=True)
        ),
        key=lambda pair: -pair[0],
    )
    return [item for score, item in scored[:count] if score >= LEAST_SIMILARITY]
