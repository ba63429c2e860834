"""The simple sending path: one task per mailing, one SMTP connection, one reader at a time.

Each mail is recorded (SentMessage) right after the relay's reply, so a task that stops (crash,
pause, restart) and runs again skips whoever was mailed: at most the one mail in flight can go
twice. The delivery engine replaces this path for large audiences.
"""

import logging
import smtplib

from django.conf import settings
from django.db.models import Count, Q

from merumaga.mailings import audience, rendering, services
from merumaga.mailings.models import Mailing, SentMessage
from merumaga.publishing.models import ArchivedMailing

logger = logging.getLogger(__name__)


class RelayUnavailable(Exception):
    """The relay could not be reached or answered 4xx: try the whole task again later."""


def open_relay() -> smtplib.SMTP:
    relay_class = smtplib.SMTP_SSL if settings.EMAIL_USE_SSL else smtplib.SMTP
    relay = relay_class(settings.EMAIL_HOST, settings.EMAIL_PORT, timeout=settings.EMAIL_TIMEOUT)
    if settings.EMAIL_USE_TLS:
        relay.starttls()
    if settings.EMAIL_HOST_USER:
        relay.login(settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD)
    return relay


def send_mailing(mailing_id: int) -> None:
    mailing = Mailing.objects.select_related("topic", "article", "report", "event").get(
        pk=mailing_id
    )
    compiled: dict[str, rendering.Compiled] = {}
    try:
        relay = open_relay()
    except (OSError, smtplib.SMTPException) as error:
        raise RelayUnavailable(str(error)) from error
    with relay:
        while True:
            # Pause and cancel take effect between batches.
            if Mailing.objects.filter(pk=mailing.pk).values_list("status", flat=True)[0] != (
                Mailing.Status.SENDING
            ):
                return
            to_mail, suppressed = audience.next_batch(mailing, settings.SEND_BATCH_SIZE)
            SentMessage.objects.bulk_create(
                SentMessage(mailing=mailing, subscriber=reader, accepted=False, reply="suppressed")
                for reader in suppressed
            )
            if not to_mail and not suppressed:
                break
            for reader in to_mail:  # per reader: one MIME build, one SMTP transaction, one INSERT
                if reader.language not in compiled:
                    compiled[reader.language] = rendering.compile_mailing(mailing, reader.language)
                _send_one(relay, mailing, compiled[reader.language], reader)
    _record_counts(mailing)
    services.finish(mailing)
    archive(mailing)


def _send_one(relay, mailing, compiled, reader) -> None:
    outgoing = rendering.build(compiled, reader)
    if outgoing.uncarried:
        logger.info(
            "mailing %s to subscriber %s: sent as UTF-8, ISO-2022-JP cannot carry %s",
            mailing.pk,
            reader.pk,
            "".join(outgoing.uncarried),
        )
    try:
        relay.sendmail(outgoing.envelope_from, [outgoing.to], outgoing.data)
    except smtplib.SMTPRecipientsRefused as error:
        code, message = error.recipients[outgoing.to]
        if code < 500:
            raise RelayUnavailable(f"{code} {message!r}") from error
        _record(mailing, reader, outgoing, False, f"{code} {message.decode(errors='replace')}")
        return
    except smtplib.SMTPResponseException as error:
        if error.smtp_code < 500:
            raise RelayUnavailable(f"{error.smtp_code} {error.smtp_error!r}") from error
        _record(mailing, reader, outgoing, False, f"{error.smtp_code}")
        return
    except (OSError, smtplib.SMTPException) as error:
        raise RelayUnavailable(str(error)) from error
    _record(mailing, reader, outgoing, True, "250")


def _record(mailing, reader, outgoing, accepted: bool, reply: str) -> None:
    SentMessage.objects.create(
        mailing=mailing,
        subscriber=reader,
        accepted=accepted,
        reply=reply[:300],
        charset=outgoing.charset,
    )


def _record_counts(mailing: Mailing) -> None:
    counts = SentMessage.objects.filter(mailing=mailing).aggregate(
        sent=Count("id", filter=Q(accepted=True)),
        failed=Count("id", filter=Q(accepted=False) & ~Q(reply="suppressed")),
        total=Count("id"),
    )
    Mailing.objects.filter(pk=mailing.pk).update(
        sent=counts["sent"], failed=counts["failed"], recipients=counts["total"]
    )


ARCHIVED_KINDS = {
    Mailing.Kind.WEEKLY,
    Mailing.Kind.ARTICLE,
    Mailing.Kind.REPORT,
    Mailing.Kind.EVENT_INVITATION,
    Mailing.Kind.CUSTOM,
}


def archive(mailing: Mailing) -> None:
    """The web copy of a sent mailing, for the public archive: no reader's data in it."""
    if mailing.kind not in ARCHIVED_KINDS:
        return
    mailing.refresh_from_db()
    ArchivedMailing.objects.update_or_create(
        slug=rendering.archive_slug(mailing),
        defaults={
            "title": mailing.subject,
            "topic_name": mailing.topic.name,
            "html": rendering.render_for_web(mailing),
            "sent_at": mailing.finished_at,
        },
    )
