from datetime import timedelta

import pytest
from django.utils import timezone

from merumaga.publishing import services, signals
from merumaga.publishing.models import Article, Status
from merumaga.testing import make_article

pytestmark = pytest.mark.django_db


def test_slug_keeps_japanese_and_is_made_unique():
    first = make_article("中国のEV電池 2026", published=False)
    second = make_article("中国のEV電池 2026", published=False)
    assert first.slug == "中国のev電池-2026"
    assert second.slug == "中国のev電池-2026-2"


def test_slug_of_a_title_with_only_symbols_falls_back():
    assert make_article("!!!", published=False).slug == "article"


def test_an_article_without_digest_cannot_be_published():
    article = make_article(published=False, digest="  ")
    with pytest.raises(services.PublishingError, match="要約"):
        services.publish_article(article)
    article.refresh_from_db()
    assert article.status == Status.DRAFT and article.published_at is None


def test_publish_now_announces_once_after_commit(django_capture_on_commit_callbacks):
    article = make_article(published=False)
    received = []

    def listener(sender, instance, **kwargs):
        received.append(instance.pk)

    signals.article_published.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.publish_article(article)
            services.publish_article(article)  # a second click changes nothing
    finally:
        signals.article_published.disconnect(listener)
    article.refresh_from_db()
    assert article.status == Status.PUBLISHED and article.published_at <= timezone.now()
    assert received == [article.pk]


def test_scheduled_article_is_published_when_due():
    article = make_article(published=False)
    later = timezone.now() + timedelta(hours=1)
    services.publish_article(article, at=later)
    article.refresh_from_db()
    assert article.status == Status.SCHEDULED
    assert services.publish_due() == 0
    Article.objects.filter(pk=article.pk).update(published_at=timezone.now() - timedelta(seconds=1))
    assert services.publish_due() == 1
    article.refresh_from_db()
    assert article.status == Status.PUBLISHED


def test_a_scheduled_article_is_not_on_the_site_before_its_time(client):
    article = make_article(published=False)
    services.publish_article(article, at=timezone.now() + timedelta(days=1))
    assert client.get(article.get_absolute_url()).status_code == 404


def test_one_scheduled_item_that_fails_does_not_keep_the_others_unpublished(monkeypatch):
    from merumaga.publishing.models import Article

    first = make_article("先", published=False)
    second = make_article("後", published=False)
    earlier = timezone.now() - timedelta(minutes=1)
    Article.objects.filter(pk__in=[first.pk, second.pk]).update(
        status=Status.SCHEDULED, published_at=earlier
    )
    publish = services._publish

    def failing_for_first(item, at, signal):
        if item.pk == first.pk:
            raise RuntimeError("disk full")
        return publish(item, at, signal)

    monkeypatch.setattr(services, "_publish", failing_for_first)
    assert services.publish_due() == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.status == Status.PUBLISHED and first.status == Status.SCHEDULED


def test_a_scheduled_item_whose_date_was_cleared_is_published_not_forgotten():
    article = make_article("日付を消した記事", published=False)
    Article.objects.filter(pk=article.pk).update(status=Status.SCHEDULED, published_at=None)
    assert services.publish_due() == 1
    article.refresh_from_db()
    assert article.status == Status.PUBLISHED and article.published_at is not None
