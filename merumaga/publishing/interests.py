"""Readers' research fields (ReaderInterest), read by the preference centre, the weekly report's
renderers and the delivery workers; nothing here changes anything."""

from collections.abc import Collection

from merumaga.publishing.models import ReaderInterest


def chosen_tags(subscriber_id: int) -> set[int]:
    return set(
        ReaderInterest.objects.filter(subscriber_id=subscriber_id).values_list("tag_id", flat=True)
    )


def interests_of(
    subscriber_ids: Collection[int], tags: Collection[int]
) -> dict[int, frozenset[int]]:
    """Each reader's fields among `tags` (a weekly report's): readers with the same answer get
    the same body. One query for a batch of readers."""
    found: dict[int, set[int]] = {}
    rows = ReaderInterest.objects.filter(subscriber_id__in=subscriber_ids, tag_id__in=tags)
    for subscriber_id, tag_id in rows.values_list("subscriber_id", "tag_id"):
        found.setdefault(subscriber_id, set()).add(tag_id)
    return {
        subscriber_id: frozenset(found.get(subscriber_id, ())) for subscriber_id in subscriber_ids
    }
