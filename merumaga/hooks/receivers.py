"""Which happenings become which webhook events (connected in HooksConfig.ready)."""

from django.db import transaction
from django.db.models.signals import post_save

from merumaga.bounces.models import BounceEvent, Kind
from merumaga.bounces.signals import events_recorded
from merumaga.hooks import services, tasks
from merumaga.hooks.models import Endpoint
from merumaga.mailings.models import Click, Link, Mailing, StatusChange
from merumaga.mailings.signals import clicks_recorded
from merumaga.subscribers.models import ConsentRecord
from merumaga.subscribers.signals import consent_recorded_in_bulk

# A consent record holds the reader's topics after the act: it is the reader event. A sign-up
# through the form is "subscribed" (pending); its confirmation, "confirmed".
READER_EVENTS: dict[str, str] = {
    ConsentRecord.Action.SUBSCRIBE: "reader.subscribed",
    ConsentRecord.Action.CONFIRM: "reader.confirmed",
    ConsentRecord.Action.UNSUBSCRIBE: "reader.unsubscribed",
    ConsentRecord.Action.ERASE: "reader.erased",
}


BOUNCE_EVENTS: dict[str, str] = {Kind.HARD: "bounce.hard", Kind.COMPLAINT: "complaint"}


def consent_recorded(sender, instance: ConsentRecord, created: bool, **kwargs) -> None:
    if created and instance.action in READER_EVENTS:
        _reader_event(instance, None)


def consents_recorded(sender, records: list[ConsentRecord], **kwargs) -> None:
    """Readers added in bulk (an import, the API with consent held elsewhere): the endpoints
    read once, and nothing more when none is registered."""
    endpoints = services.active_endpoints()
    if endpoints:
        # A savepoint: a failure here rolls back only these deliveries, not the readers'
        # chunk around it (the sender logs it).
        with transaction.atomic():
            for record in records:
                _reader_event(record, endpoints)


def _reader_event(record: ConsentRecord, endpoints: list[Endpoint] | None) -> None:
    event = READER_EVENTS.get(record.action)
    if event is None:
        return
    data = {
        "reader": record.subscriber_id,
        "topics": record.topics,
        "source": record.source,
        "at": record.created_at.isoformat(),
    }
    if event != "reader.erased":  # the address is gone with the reader's data
        data["email"] = record.email
    tasks.send(event, data, endpoints)


def bounces_recorded(sender, events: list[BounceEvent], **kwargs) -> None:
    """A batch of bounces (record_events writes them in bulk): the endpoints read once, and
    nothing more when none is registered."""
    wanted = [bounce for bounce in events if bounce.kind in BOUNCE_EVENTS]
    endpoints = services.active_endpoints() if wanted else []
    if not endpoints:
        return
    for bounce in wanted:
        tasks.send(
            BOUNCE_EVENTS[bounce.kind],
            {
                "reader": bounce.subscriber_id,
                "mailing": bounce.mailing_id,
                "domain": bounce.domain,
                "reason": bounce.reason,
                "status": bounce.status,
                "at": bounce.created_at.isoformat(),
            },
            endpoints,
        )


def clicks_written(sender, clicks: list[Click], **kwargs) -> None:
    """A batch of clicks: the endpoints read once, the links once, nothing more when no
    endpoint wants clicks. The reader is named by id, when clicks are kept per reader."""
    endpoints = [e for e in services.active_endpoints() if e.wants("link.clicked")]
    if not endpoints:
        return
    links = {
        link.pk: link
        for link in Link.objects.filter(pk__in={click.link_id for click in clicks}).only(
            "url", "mailing_id"
        )
    }
    for click in clicks:
        link = links.get(click.link_id)
        if link is not None:
            tasks.send(
                "link.clicked",
                {
                    "mailing": link.mailing_id,
                    "url": link.url,
                    "reader": click.subscriber_id,
                    "at": click.at.isoformat(),
                },
                endpoints,
            )


def status_changed(sender, instance: StatusChange, created: bool, **kwargs) -> None:
    if not created:
        return
    started = instance.to_status == Mailing.Status.SENDING and instance.from_status in (
        Mailing.Status.DRAFT,
        Mailing.Status.SCHEDULED,
    )
    finished = instance.to_status == Mailing.Status.SENT
    if started or finished:
        event = "mailing.started" if started else "mailing.finished"
        # Read once committed: the transition saves the mailing's counts after this row.
        transaction.on_commit(lambda: _mailing_event(event, instance.mailing_id, instance.at))


def _mailing_event(event: str, mailing_id: int, at) -> None:
    mailing = Mailing.objects.filter(pk=mailing_id).first()
    if mailing is not None:
        tasks.send(
            event,
            {
                "mailing": mailing.pk,
                "kind": mailing.kind,
                "subject": mailing.subject,
                "sent": mailing.sent,
                "failed": mailing.failed,
                "at": at.isoformat(),
            },
        )


def connect() -> None:
    post_save.connect(consent_recorded, sender=ConsentRecord, dispatch_uid="hooks-consent")
    consent_recorded_in_bulk.connect(consents_recorded, dispatch_uid="hooks-bulk-consent")
    events_recorded.connect(bounces_recorded, dispatch_uid="hooks-bounces")
    post_save.connect(status_changed, sender=StatusChange, dispatch_uid="hooks-status")
    clicks_recorded.connect(clicks_written, dispatch_uid="hooks-clicks")
