"""Which happenings become which webhook events (connected in HooksConfig.ready)."""

from django.db import transaction
from django.db.models.signals import post_save

from merumaga.bounces.models import BounceEvent, Kind
from merumaga.bounces.signals import events_recorded
from merumaga.hooks import services, tasks
from merumaga.mailings.models import Mailing, StatusChange
from merumaga.subscribers.models import ConsentRecord

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
    event = READER_EVENTS.get(instance.action) if created else None
    if event is None:
        return
    data = {
        "reader": instance.subscriber_id,
        "topics": instance.topics,
        "source": instance.source,
        "at": instance.created_at.isoformat(),
    }
    if event != "reader.erased":  # the address is gone with the reader's data
        data["email"] = instance.email
    tasks.send(event, data)


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
    events_recorded.connect(bounces_recorded, dispatch_uid="hooks-bounces")
    post_save.connect(status_changed, sender=StatusChange, dispatch_uid="hooks-status")
