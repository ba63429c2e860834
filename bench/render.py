"""Per-reader cost of the byte template (FastTemplate) against the reference renderer.

Runs on a fresh SQLite database in a temporary data dir; composes a weekly report of 10 Japanese
articles (~3,300 characters of text, ~7,600 of HTML with its inlined CSS: a ~21 KB message as
UTF-8, ~19 KB as ISO-2022-JP), loads the readers as light rows (80% UTF-8, 20% ISO-2022-JP)
and prints one line of key=value figures:

    .venv/bin/python bench/render.py [--readers 10000] [--reference-readers 1000]
                                     [--clicks untracked|counted|per_reader]

--clicks: the links as the worker sends them, counted through /c/… (the default), not tracked
(as before click tracking), or carrying each reader's token (the site keeps who clicked).

fast_us_per_msg: FastTemplate.render per reader (all --readers, best of --rounds rounds; the first
includes filling the template's base64 caches); reference_us_per_msg:
rendering.build per reader (the first --reference-readers); mismatches: readers of that sample
whose bytes differ between the two (must be 0; both sign tokens with one frozen second).
"""

import argparse
import time
import types

from _django import fresh_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=10)
    parser.add_argument("--digest-sentences", type=int, default=1)
    parser.add_argument("--readers", type=int, default=10_000)
    parser.add_argument("--reference-readers", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--clicks",
        choices=["untracked", "counted", "per_reader"],
        default="counted",
        help="links as the worker sends them (counted), not tracked, or carrying the reader",
    )
    args = parser.parse_args()

    fresh_database()
    compiled, readers = _prepare(args.articles, args.digest_sentences, args.readers, args.clicks)

    from django.core import signing

    from merumaga.delivery import fastrender
    from merumaga.mailings import rendering

    date = _tokyo_now()
    domain = compiled.sender.from_email.rsplit("@", 1)[-1]
    message_ids = [f"{n}.{compiled.mailing.pk}.bench@{domain}" for n in range(len(readers))]

    started = time.perf_counter()
    template = fastrender.FastTemplate(compiled)
    template_ms = (time.perf_counter() - started) * 1000

    # Each mail is dropped once rendered, as the sending worker does (keeping 10,000 mails of
    # 20 KB would measure the allocator too). Best of --rounds: other processes share the cores.
    sizes = {}
    rounds = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for reader, message_id in zip(readers, message_ids, strict=True):
            out = template.render(reader, date=date, message_id=message_id)
            sizes[out.charset] = len(out.data)
        rounds.append((time.perf_counter() - started) / len(readers) * 1e6)
    fast_us = min(rounds)

    sample = readers[: args.reference_readers]
    started = time.perf_counter()
    for reader, message_id in zip(sample, message_ids, strict=False):
        rendering.build(compiled, reader, date=date, message_id=message_id)
    reference_us = (time.perf_counter() - started) / len(sample) * 1e6

    # The equality check signs both sides' tokens in one frozen second.
    clock = types.SimpleNamespace(time=lambda: 1_775_000_000.0)
    signing.time = fastrender.time = clock
    frozen_template = fastrender.FastTemplate(compiled)
    mismatches = sum(
        frozen_template.render(reader, date=date, message_id=message_id)
        != rendering.build(compiled, reader, date=date, message_id=message_id)
        for reader, message_id in zip(sample, message_ids, strict=False)
    )

    print(
        f"clicks={args.clicks} readers={len(readers)} fast_us_per_msg={fast_us:.1f} "
        f"fast_us_rounds={'/'.join(f'{us:.1f}' for us in rounds)} "
        f"reference_us_per_msg={reference_us:.0f} speedup={reference_us / fast_us:.0f}x "
        f"mismatches={mismatches}/{len(sample)} template_ms={template_ms:.1f} "
        f"utf8_bytes={sizes['utf-8']} iso2022jp_bytes={sizes['iso-2022-jp']} "
        f"text_chars={len(compiled.text)} html_chars={len(compiled.html)}"
    )


def _tokyo_now():
    from django.utils import timezone

    return timezone.localtime(timezone.now())


def _prepare(articles: int, sentences: int, count: int, clicks: str):
    """A weekly report of ``articles`` articles, compiled in Japanese, and ``count`` readers."""
    from datetime import timedelta

    from django.utils import timezone

    from merumaga.delivery.fastrender import READER_FIELDS, Reader
    from merumaga.institute.models import SiteSettings
    from merumaga.mailings import rendering, services
    from merumaga.publishing import services as publishing
    from merumaga.publishing.models import Article
    from merumaga.subscribers.models import Subscriber, new_nonce

    SiteSettings.objects.create(
        clicks_per_reader=clicks == "per_reader",
        organisation_name="未来技術研究所 広報室",
        postal_address="〒100-0005 東京都千代田区丸の内0-0-0",
        contact_email="info@example.jp",
        contact_url="https://example.jp/contact/",
        contact_phone="03-0000-0000",
        from_email="news@example.jp",
    )
    now = timezone.now()
    for n in range(articles):
        article = Article(
            title=f"全固体電池の量産と自動運転の事業化 その{n + 1}",
            digest="電池メーカー各社が量産ラインを立ち上げ、歩留まりの改善が進んでいる。"
            * sentences,
            body="本文。" * 200,
            source_name="架空テック週報",
            source_detail="2026年11月号",
            published_at=now - timedelta(hours=n + 1),
        )
        publishing.prepare_article(article)
        article.save()
        publishing.publish_article(article, at=article.published_at)
    mailing = services.compose_weekly().mailing
    compiled = rendering.compile_mailing(mailing, "ja", track=clicks != "untracked")

    surnames = ["山田", "佐藤", "鈴木", "高橋", "田中", "渡辺", "伊藤", "中村", "小林", ""]
    Subscriber.objects.bulk_create(
        Subscriber(
            email=f"reader{n}@example.jp",
            name=f"{surnames[n % 10]} {'花子' if n % 3 else '一郎'}" if surnames[n % 10] else "",
            status="confirmed",
            charset="iso-2022-jp" if n % 5 == 0 else "utf-8",
            nonce=new_nonce(),
        )
        for n in range(count)
    )
    rows = Subscriber.objects.order_by("pk").values(*READER_FIELDS)
    return compiled, [Reader(**row) for row in rows]


if __name__ == "__main__":
    main()
