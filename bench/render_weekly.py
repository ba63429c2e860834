"""Time to compose a weekly report of 50 articles and render it for one reader.

Runs on a fresh SQLite database in a temporary data dir and prints one line of key=value figures:

    .venv/bin/python bench/render_weekly.py [--articles 50] [--readers 200]

compose_ms: gathering the articles and recording the mailing; compile_ms: rendering the templates
once (per language); build_ms: one reader's bytes (median over --readers builds); bytes: its size.
"""

import argparse
import statistics
import time

from _django import fresh_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=50)
    parser.add_argument("--readers", type=int, default=200)
    args = parser.parse_args()

    fresh_database()
    from datetime import timedelta

    from django.utils import timezone

    from merumaga.mailings import rendering, services
    from merumaga.publishing import services as publishing
    from merumaga.publishing.models import Article
    from merumaga.subscribers.models import Subscriber

    now = timezone.now()
    for n in range(args.articles):
        article = Article(
            title=f"中国の電池産業の動向 その{n + 1}: 全固体電池の量産と自動運転の事業化",
            digest="電池メーカー各社が量産ラインを立ち上げ、歩留まりの改善が進んでいる。" * 3,
            body="本文。" * 200,
            source_name="架空テック週報",
            source_detail="2026年11月号",
            published_at=now - timedelta(hours=n + 1),
        )
        publishing.prepare_article(article)
        article.save()
        publishing.publish_article(article, at=article.published_at)
    readers = [
        Subscriber.objects.create(
            email=f"reader{n}@example.jp",
            name=f"読者 {n}",
            status="confirmed",
            charset="iso-2022-jp" if n % 5 == 0 else "utf-8",
        )
        for n in range(args.readers)
    ]

    started = time.perf_counter()
    mailing = services.compose_weekly().mailing
    compose_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    compiled = rendering.compile_mailing(mailing, "ja")
    compile_ms = (time.perf_counter() - started) * 1000
    builds = []
    for reader in readers:
        started = time.perf_counter()
        rendering.build(compiled, reader)
        builds.append((time.perf_counter() - started) * 1000)
    utf8 = rendering.build(compiled, readers[1])
    jis = rendering.build(compiled, readers[0])
    print(
        f"articles={args.articles} compose_ms={compose_ms:.1f} compile_ms={compile_ms:.1f} "
        f"build_ms_median={statistics.median(builds):.2f} build_ms_max={max(builds):.2f} "
        f"one_reader_total_ms={compose_ms + compile_ms + builds[0]:.1f} "
        f"utf8_bytes={len(utf8.data)} iso2022jp_bytes={len(jis.data)} ({jis.charset})"
    )


if __name__ == "__main__":
    main()
