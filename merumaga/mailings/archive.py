"""The web copy of a sent mailing, for the public archive: no reader's data in it."""

from merumaga.mailings import rendering
from merumaga.mailings.models import Mailing
from merumaga.publishing.models import ArchivedMailing

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
    if mailing.finished_at is None:  # the archive copy is made once it has been sent
        raise ValueError(f"mailing {mailing.pk} has not finished sending")
    ArchivedMailing.objects.update_or_create(
        slug=rendering.archive_slug(mailing),
        defaults={
            "title": mailing.subject,
            "topic_name": mailing.topic.name,
            "html": rendering.render_for_web(mailing),
            "sent_at": mailing.finished_at,
        },
    )
