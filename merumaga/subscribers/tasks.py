"""Background work for the subscriber lifecycle, queued once its transaction commits."""

from django.urls import reverse
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from merumaga import outgoing
from merumaga.subscribers import throttle, tokens
from merumaga.subscribers.mail import absolute_url, send_reader_mail
from merumaga.subscribers.models import Subscriber, Topic


def _reader(subscriber_id: int) -> Subscriber | None:
    # The reader may have erased their data between the request and this task.
    return Subscriber.objects.filter(pk=subscriber_id, email__isnull=False).first()


@db_task(retries=3, retry_delay=60, priority=outgoing.TASK_PRIORITY)
def send_confirmation_mail(subscriber_id: int, topic_keys: list[str] | None = None) -> None:
    """The link to confirm; it carries the mailings asked for, which the confirmation page
    offers (a reader who left keeps their own settings until they confirm)."""
    subscriber = _reader(subscriber_id)
    if subscriber is None or subscriber.status not in (
        Subscriber.Status.PENDING,
        Subscriber.Status.UNSUBSCRIBED,
    ):
        return
    scope = ",".join(topic_keys) if topic_keys else tokens.ALL_TOPICS
    token = tokens.make_token(subscriber, tokens.CONFIRM, scope)
    send_reader_mail(
        subscriber, "confirm", {"confirm_url": absolute_url(reverse("confirm", args=[token]))}
    )


@db_task(retries=3, retry_delay=60, priority=outgoing.TASK_PRIORITY)
def send_welcome_mail(subscriber_id: int) -> None:
    subscriber = _reader(subscriber_id)
    if subscriber is None or subscriber.status != Subscriber.Status.CONFIRMED:
        return
    topics = Topic.objects.filter(
        subscription__subscriber=subscriber, subscription__subscribed=True
    )
    names = [topic.localized_name(subscriber.language) for topic in topics.order_by("position")]
    send_reader_mail(subscriber, "welcome", {"topics": names})


@db_task(retries=3, retry_delay=60, priority=outgoing.TASK_PRIORITY)
def send_stop_link_mail(subscriber_id: int) -> None:
    subscriber = _reader(subscriber_id)
    if subscriber is None or subscriber.status != Subscriber.Status.CONFIRMED:
        return
    send_reader_mail(subscriber, "stop_link")


@db_task(retries=3, retry_delay=60, priority=outgoing.TASK_PRIORITY)
def send_address_confirmation_mail(subscriber_id: int, new_email: str) -> None:
    """To the new address: its owner confirms it before any mail of ours goes there."""
    subscriber = _reader(subscriber_id)
    if subscriber is None:
        return
    token = tokens.make_token(subscriber, tokens.ADDRESS, new_email)
    url = absolute_url(reverse("confirm_address", args=[token]))
    send_reader_mail(
        subscriber, "address_confirm", {"confirm_url": url, "new_email": new_email}, to=new_email
    )


@db_task(retries=3, retry_delay=60, priority=outgoing.TASK_PRIORITY)
def send_address_changed_mail(subscriber_id: int, old_email: str) -> None:
    """To the old address: a change nobody asked for must not go unnoticed."""
    subscriber = _reader(subscriber_id)
    if subscriber is None:
        return
    send_reader_mail(subscriber, "address_changed", {"old_email": old_email}, to=old_email)


@db_task(retries=3, retry_delay=60, priority=outgoing.TASK_PRIORITY)
def send_already_subscribed_mail(subscriber_id: int) -> None:
    subscriber = _reader(subscriber_id)
    if subscriber is None or subscriber.status != Subscriber.Status.CONFIRMED:
        return
    send_reader_mail(subscriber, "already_subscribed")


@db_periodic_task(crontab(minute="7"))
def forget_old_rate_counters() -> int:
    return throttle.forget_old_windows()
