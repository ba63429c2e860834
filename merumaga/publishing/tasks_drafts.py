"""Drafts asked of the language model, made in the background: the request can take a minute,
longer than a web request should wait. The editor's page polls the DraftRequest.

A draft holds one task thread while the model answers (up to LLM_TIMEOUT a try): mails to
readers have a higher priority in the queue, and a site where many editors draft at once needs
more task threads (HUEY_WORKERS)."""

import logging

from django.utils.translation import gettext as _
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from merumaga.publishing import digest, drafting, services

log = logging.getLogger(__name__)


@db_task()
def make_draft(pk: int) -> None:
    request = services.start_draft(pk)
    if request is None:
        return  # given up on while it waited, or forgotten

    def progress(state: str) -> None:
        services.draft_progress(pk, state)

    try:
        found = drafting.draft(
            request.text, request.budget, request.title, what=request.what, on_progress=progress
        )
    except Exception:  # a bug here must not leave the editor waiting: say so, offer offline
        log.exception("draft %s failed", pk)
        offline = digest.draft(request.text, request.budget)
        notice = _("下書きの作成中に内部エラーが起きたため、オフラインの下書きを表示しています。")
        found = digest.Draft(offline.digest, offline.sentences, "offline", notice)
    services.finish_draft(pk, found)


@db_periodic_task(crontab(minute="23"))
def forget_old_drafts() -> int:
    return services.forget_old_drafts()
