"""/api/v1/mailings: compose an announcement, preview it, test-send it, start, pause, resume,
and read where it stands. Every change goes through mailings.services, as in the admin."""

from datetime import datetime
from typing import Literal

from django import forms
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status
from pydantic import Field

from merumaga.api.core import (
    CLIENT_ERRORS,
    ApiError,
    ErrorBody,
    Id,
    In,
    PageQuery,
    When,
    account,
    invalid_form,
    needs,
    page,
)
from merumaga.mailings import previews, services
from merumaga.mailings.audience import deliverable
from merumaga.mailings.models import Mailing
from merumaga.subscribers.models import Subscriber, Topic

router = Router(tags=["mailings"])


class MailingOut(Schema):
    id: int
    kind: str
    topic: str
    subject: str
    preheader: str
    intro: str
    status: str
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    recipients: int
    sent: int
    failed: int
    approved: bool = Field(description="approved by a second account, as it stands now")
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_topic(mailing: Mailing) -> str:
        return mailing.topic.key

    @staticmethod
    def resolve_approved(mailing: Mailing) -> bool:
        return bool(mailing.approved_by_id) and (
            mailing.approved_content == services.content_fingerprint(mailing)
        )


class MailingPage(Schema):
    items: list[MailingOut]
    next: str | None


class MailingFilter(PageQuery):
    status: Literal["draft", "scheduled", "sending", "paused", "sent", "cancelled"] | None = None
    kind: str | None = Field(None, max_length=20)
    topic: str | None = Field(None, max_length=40)
    created_after: When | None = None
    created_before: When | None = None


class MailingIn(In):
    topic: str = Field(max_length=40, description="the key of the topic whose readers get it")
    subject: str = Field(max_length=200)
    preheader: str = Field("", max_length=200)
    intro: str = Field("", max_length=20000, description="the announcement (Markdown)")


class PreviewQuery(Schema):
    reader: int | None = Field(
        None, ge=1, le=2**63 - 1, description="as this reader gets it (default: the first)"
    )
    charset: Literal["utf-8", "iso-2022-jp"] | None = None


class PreviewOut(Schema):
    reader: int | None = Field(description="the reader it was built for; null: a stand-in")
    subject: str
    text: str | None
    html: str | None
    recipients: int


class TestSendIn(In):
    addresses: list[str] = Field(min_length=1, max_length=previews.TEST_SEND_MAX)


class TestSendOut(Schema):
    sent: list[str]
    refused: list[str]
    relay_error: str


class StartIn(In):
    at: When | None = Field(None, description="a time to come: scheduled; none: now")


def _mailing(mailing_id: int) -> Mailing:
    return get_object_or_404(Mailing.objects.select_related("topic"), pk=mailing_id)


def _changed(change, mailing: Mailing, *args) -> Mailing:
    try:
        return change(mailing, *args)
    except services.MailingError as error:
        raise ApiError(409, "conflict", str(error)) from None


@router.get(
    "/mailings",
    response={200: MailingPage, CLIENT_ERRORS: ErrorBody},
    auth=needs("mailings:send", "mailings.view_mailing"),
)
def list_mailings(request: HttpRequest, filters: Query[MailingFilter]):
    mailings = Mailing.objects.select_related("topic")
    if filters.status:
        mailings = mailings.filter(status=filters.status)
    if filters.kind:
        mailings = mailings.filter(kind=filters.kind)
    if filters.topic:
        mailings = mailings.filter(topic__key=filters.topic)
    if filters.created_after:
        mailings = mailings.filter(created_at__gte=filters.created_after)
    if filters.created_before:
        mailings = mailings.filter(created_at__lt=filters.created_before)
    rows, cursor = page(mailings, filters)
    return {"items": rows, "next": cursor}


@router.post(
    "/mailings",
    response={201: MailingOut, CLIENT_ERRORS: ErrorBody},
    auth=needs("mailings:send", "mailings.add_mailing"),
)
def create_mailing(request: HttpRequest, data: MailingIn):
    """An announcement (お知らせ) to one topic's readers, saved as a draft."""
    topic = Topic.objects.filter(key=data.topic).first()
    form_class = forms.modelform_factory(Mailing, fields=("subject", "topic", "preheader", "intro"))
    form = form_class(
        data={**data.dict(), "topic": topic.pk if topic else None},
    )
    if not form.is_valid():
        raise invalid_form(form)
    return Status(201, services.compose_custom(form.save(commit=False), by=account(request)))


@router.get(
    "/mailings/{mailing_id}",
    response={200: MailingOut, CLIENT_ERRORS: ErrorBody},
    auth=needs("mailings:send", "mailings.view_mailing"),
)
def get_mailing(request: HttpRequest, mailing_id: Id):
    """Where it stands: its status, times and counts (sent, failed), as the worker keeps them."""
    return _mailing(mailing_id)


@router.get(
    "/mailings/{mailing_id}/preview",
    response={200: PreviewOut, CLIENT_ERRORS: ErrorBody},
    auth=needs("mailings:send", "mailings.view_mailing"),
)
def preview_mailing(request: HttpRequest, mailing_id: Id, query: Query[PreviewQuery]):
    """The mail as a reader gets it, with links that act on no reader."""
    mailing = _mailing(mailing_id)
    reader = previews.chosen_reader(mailing, str(query.reader) if query.reader else None)
    preview = previews.build_preview(
        mailing, reader, force_jis=query.charset == Subscriber.Charset.ISO2022JP
    )
    return PreviewOut(
        reader=reader.pk or None,
        subject=str(preview.message["Subject"]),
        text=preview.text,
        html=preview.html,
        recipients=deliverable(mailing).count(),
    )


@router.post(
    "/mailings/{mailing_id}/test-send",
    response={200: TestSendOut, CLIENT_ERRORS: ErrorBody, 503: ErrorBody},
    auth=needs("mailings:send", "mailings.test_send_mailing"),
)
def test_send(request: HttpRequest, mailing_id: Id, data: TestSendIn):
    """The test copy to up to 20 addresses (its links act on no reader). 503 when the relay took
    none of them."""
    mailing = _mailing(mailing_id)
    result = previews.send_tests(mailing, previews.test_addresses(data.addresses))
    if result.relay_error and not result.sent:
        raise ApiError(503, "relay_unavailable", result.relay_error)
    return TestSendOut(sent=result.sent, refused=result.refused, relay_error=result.relay_error)


@router.post(
    "/mailings/{mailing_id}/start",
    response={200: MailingOut, CLIENT_ERRORS: ErrorBody},
    auth=needs("mailings:send", "mailings.send_mailing"),
)
def start_mailing(request: HttpRequest, mailing_id: Id, data: StartIn):
    """Send now, or schedule it for `at`: the same checks as the admin's buttons (content,
    readers to send to, the two-person rule). 409 with the reason when it cannot."""
    mailing = _mailing(mailing_id)
    if data.at is not None:
        return _changed(services.schedule, mailing, data.at, account(request))
    return _changed(services.start, mailing, account(request))


@router.post(
    "/mailings/{mailing_id}/pause",
    response={200: MailingOut, CLIENT_ERRORS: ErrorBody},
    auth=needs("mailings:send", "mailings.send_mailing"),
)
def pause_mailing(request: HttpRequest, mailing_id: Id):
    return _changed(services.pause, _mailing(mailing_id), account(request))


@router.post(
    "/mailings/{mailing_id}/resume",
    response={200: MailingOut, CLIENT_ERRORS: ErrorBody},
    auth=needs("mailings:send", "mailings.send_mailing"),
)
def resume_mailing(request: HttpRequest, mailing_id: Id):
    return _changed(services.resume, _mailing(mailing_id), account(request))
