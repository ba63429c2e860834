"""What the admin's first page costs to draw its readers' charts, on a list with history.

Loads --readers confirmed readers (as an import does: one consent record each), spread over the
last 90 days, then gives --changers of them two more acts in the window (one leaves the weekly
report, and comes back), and prints one line of key=value figures:

    .venv/bin/python bench/dashboard.py [--readers 100000] [--changers 20000]

all_ms: figures.reader_series (everyone, two GROUP BY queries); topic_ms:
figures.topic_series("weekly") (one topic, from the consent records of the readers who acted
in the window); records: consent records in the database. Best of three runs each.
"""

import argparse
import time

from _django import fresh_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--changers", type=int, default=20_000)
    args = parser.parse_args()
    fresh_database()

    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from merumaga.outcomes import figures
    from merumaga.subscribers.models import ConsentRecord, Subscriber, Subscription, Topic

    now = timezone.now()
    topics = list(Topic.objects.order_by("position"))
    keys = [topic.key for topic in topics]
    with transaction.atomic():
        for start in range(0, args.readers, 5000):
            batch = range(start, min(start + 5000, args.readers))
            joined = {n: now - timedelta(days=89 * n / args.readers) for n in batch}
            readers = Subscriber.objects.bulk_create(
                Subscriber(
                    email=f"r{n}@example.jp",
                    address_hash=f"{n:064d}",
                    status=Subscriber.Status.CONFIRMED,
                    confirmed_at=joined[n],
                )
                for n in batch
            )
            Subscription.objects.bulk_create(
                Subscription(subscriber=reader, topic=topic)
                for reader in readers
                for topic in topics
            )
            records = [
                ConsentRecord(
                    subscriber=reader,
                    email=reader.email,
                    action=ConsentRecord.Action.SUBSCRIBE,
                    source=ConsentRecord.Source.IMPORT,
                    topics=keys,
                    created_at=joined[n],
                )
                for n, reader in zip(batch, readers, strict=True)
            ]
            for n, reader in zip(batch, readers, strict=True):
                if n < args.changers:
                    for days_later, chosen in ((1, keys[1:]), (2, keys)):
                        records.append(
                            ConsentRecord(
                                subscriber=reader,
                                email=reader.email,
                                action=ConsentRecord.Action.CHANGE,
                                source=ConsentRecord.Source.FORM,
                                topics=chosen,
                                created_at=min(now, joined[n] + timedelta(days=days_later)),
                            )
                        )
            ConsentRecord.objects.bulk_create(records)

    def best(run) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            run()
            times.append((time.perf_counter() - started) * 1000)
        return min(times)

    all_ms = best(figures.reader_series)
    topic_ms = best(lambda: figures.topic_series("weekly"))
    print(
        f"readers={args.readers} changers={args.changers} "
        f"records={ConsentRecord.objects.count()} all_ms={all_ms:.0f} topic_ms={topic_ms:.0f}"
    )


if __name__ == "__main__":
    main()
