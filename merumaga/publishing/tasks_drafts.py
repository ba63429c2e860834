"""Drafts asked of the language model, made in the background: the request can take a minute,
longer than a web request should wait. The editor's page polls the DraftRequest."""

import logging

from django.utils.translation import gettext as _
from huey.contrib.djhuey import db_task

from merumaga.publishing import digest, drafting
from merumaga.publishing.models import DraftRequest

log = logging.getLogger(__name__)


@db_task()
def make_draft(pk: int) -> None:
    request = DraftRequest.objects.filter(pk=pk, state=DraftRequest.State.QUEUED).first()
    if request is None:
        return  # given up on while it waited, or forgotten

    def progress(state: str) -> None:
        DraftRequest.objects.filter(pk=pk).update(state=state)

    try:
        found = drafting.draft(
            request.text, request.budget, request.title, what=request.what, on_progress=progress
        )
    except Exception:  # a bug here must not leave the editor waiting: say so, offer offline
        log.exception("draft %s failed", pk)
        offline = digest.draft(request.text, request.budget)
        notice = _("下書きの作成中に内部エラーが起きたため、オフラインの下書きを表示しています。")
        found = digest.Draft(offline.digest, offline.sentences, "offline", notice)
    DraftRequest.objects.filter(pk=pk).update(
        state=DraftRequest.State.DONE, result=drafting.as_json(found)
    )
