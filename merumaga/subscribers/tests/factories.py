from merumaga.subscribers.models import ConsentRecord, Subscriber, Subscription, Topic

ALL_TOPICS = ["weekly", "articles", "reports", "events"]


def make_subscriber(
    email="reader@example.jp", status=Subscriber.Status.CONFIRMED, topics=ALL_TOPICS, **fields
) -> Subscriber:
    subscriber = Subscriber.objects.create(email=email, status=status, **fields)
    for topic in Topic.objects.filter(key__in=topics):
        Subscription.objects.create(subscriber=subscriber, topic=topic)
    ConsentRecord.objects.create(
        subscriber=subscriber, email=email, action="subscribe", source="admin", topics=list(topics)
    )
    return subscriber


def subscribed_keys(subscriber: Subscriber) -> set[str]:
    return set(
        Subscription.objects.filter(subscriber=subscriber, subscribed=True).values_list(
            "topic__key", flat=True
        )
    )
