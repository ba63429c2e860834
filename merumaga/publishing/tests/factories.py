from django.utils import timezone

from merumaga.publishing import services
from merumaga.publishing.models import Article, Report, Status


def make_article(title="記事", published=True, **fields) -> Article:
    article = Article(
        title=title,
        digest=fields.pop("digest", "要約の文章。"),
        body=fields.pop("body", "本文。"),
        status=Status.PUBLISHED if published else Status.DRAFT,
        published_at=fields.pop("published_at", timezone.now() if published else None),
        **fields,
    )
    services.prepare_article(article)
    article.save()
    return article


def make_report(title="レポート", published=True, **fields) -> Report:
    report = Report(
        title=title,
        summary=fields.pop("summary", "概要。"),
        pdf=fields.pop("pdf", "reports/demo.pdf"),
        status=Status.PUBLISHED if published else Status.DRAFT,
        published_at=timezone.now() if published else None,
        **fields,
    )
    services.prepare_report(report)
    report.save()
    return report
