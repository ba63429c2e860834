"""A draft asked of the language model, from the editor's click to the draft on their page:
the request (a DraftRequest), the background task that asks the model (the answer can take a
minute, longer than a web request should wait), and the page's polling. Each change of a
request is one function here, called by the admin views and by the task.

A draft holds one task thread while the model answers (up to LLM_TIMEOUT a try): mails to
readers have a higher priority in the queue, and a site where many editors draft at once needs
more task threads (HUEY_WORKERS)."""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from merumaga.publishing import digest, drafting
from merumaga.publishing.models import DraftRequest

log = logging.getLogger(__name__)

# A draft request is forgotten after a day. One still queued after QUEUE_PATIENCE means no task
# process is running: the editor gets the offline draft and is told so.
DRAFT_KEPT = timedelta(days=1)
QUEUE_PATIENCE = timedelta(seconds=60)


def request_draft(user: User, what: str, title: str, text: str, budget: int) -> DraftRequest:
    """Ask the language model for a draft, in the background (make_draft)."""
    forget_old_drafts()
    request = DraftRequest.objects.create(
        requested_by=user, what=what, title=title, text=text, budget=budget
    )
    transaction.on_commit(lambda: make_draft(request.pk))
    return request


def forget_old_drafts() -> int:
    """Draft requests hold what an editor was typing: forgotten after DRAFT_KEPT."""
    old = DraftRequest.objects.filter(requested_at__lt=timezone.now() - DRAFT_KEPT)
    return old.delete()[0]


def start_draft(pk: int) -> DraftRequest | None:
    """The task takes a queued request; None if it was given up on (or forgotten) meanwhile."""
    taken = DraftRequest.objects.filter(pk=pk, state=DraftRequest.State.QUEUED).update(
        state=DraftRequest.State.ASKING
    )
    return DraftRequest.objects.get(pk=pk) if taken else None


def draft_progress(pk: int, state: str) -> None:
    """How far the model got; never over a request already done (given up on, say)."""
    DraftRequest.objects.filter(pk=pk).exclude(state=DraftRequest.State.DONE).update(state=state)


def finish_draft(pk: int, found: digest.Draft) -> bool:
    """The draft, unless the request was given up on meanwhile (its offline draft stands)."""
    done = DraftRequest.objects.filter(pk=pk).exclude(state=DraftRequest.State.DONE)
    return bool(done.update(state=DraftRequest.State.DONE, result=drafting.as_json(found)))


def _working_patience() -> timedelta:
    """How long a model may take at most: every try timing out, the pauses between them, and
    the one retry with the failures named."""
    tries = settings.LLM_RETRIES + 1
    pauses = sum(2**i for i in range(settings.LLM_RETRIES))
    return timedelta(seconds=2 * (tries * settings.LLM_TIMEOUT + pauses) + 30)


def draft_state(request: DraftRequest) -> DraftRequest:
    """The request as it stands; one that waited or worked longer than it can, given up on,
    with the offline draft and the reason."""
    waited = timezone.now() - request.requested_at
    if request.state == DraftRequest.State.DONE:
        return request
    if request.state == DraftRequest.State.QUEUED and waited > QUEUE_PATIENCE:
        reason = _(
            "バックグラウンド処理が%(seconds)d秒以上始まらないため、"
            "オフラインの下書きを表示しています。タスク処理 (merumaga run または "
            "merumaga-tasks) が動いているか確認してください。"
        ) % {"seconds": QUEUE_PATIENCE.total_seconds()}
    elif waited > _working_patience():
        reason = _(
            "LLMの応答が予定の時間内に終わらなかったため、オフラインの下書きを表示しています。"
        )
    else:
        return request
    offline = digest.draft(request.text, request.budget)
    finish_draft(request.pk, digest.Draft(offline.digest, offline.sentences, "offline", reason))
    request.refresh_from_db()
    return request


@db_task()
def make_draft(pk: int) -> None:
    request = start_draft(pk)
    if request is None:
        return  # given up on while it waited, or forgotten

    def progress(state: str) -> None:
        draft_progress(pk, state)

    try:
        found = drafting.draft(
            request.text, request.budget, request.title, what=request.what, on_progress=progress
        )
    except Exception:  # a bug here must not leave the editor waiting: say so, offer offline
        log.exception("draft %s failed", pk)
        offline = digest.draft(request.text, request.budget)
        notice = _("下書きの作成中に内部エラーが起きたため、オフラインの下書きを表示しています。")
        found = digest.Draft(offline.digest, offline.sentences, "offline", notice)
    finish_draft(pk, found)


@db_periodic_task(crontab(minute="23"))
def forget_drafts_hourly() -> int:
    return forget_old_drafts()
