"""/api/v1/readers and /api/v1/topics: the same services as the forms and the admin."""

from datetime import datetime
from typing import Literal

from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status
from pydantic import Field, IPvAnyAddress

from merumaga.api.core import (
    CLIENT_ERRORS,
    ApiError,
    ErrorBody,
    Id,
    In,
    PageQuery,
    When,
    account,
    needs,
    page,
)
from merumaga.subscribers import services
from merumaga.subscribers.models import ConsentRecord, Subscriber, Subscription, Topic

router = Router(tags=["readers"])

ReaderStatus = Literal["pending", "confirmed", "unsubscribed", "erased"]
Language = Literal["ja", "en"]
Charset = Literal["utf-8", "iso-2022-jp"]


class ReaderOut(Schema):
    id: int
    email: str | None = Field(description="null once the reader's data is erased")
    name: str
    organisation: str
    language: str
    charset: str
    status: str
    topics: list[str] = Field(description="keys of the topics the reader receives")
    created_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None


class ReaderPage(Schema):
    items: list[ReaderOut]
    next: str | None = Field(description="the cursor of the next page; null on the last")


class ReaderFilter(PageQuery):
    status: ReaderStatus | None = None
    topic: str | None = Field(None, max_length=40, description="readers receiving this topic")
    created_after: When | None = None
    created_before: When | None = None


class Consent(In):
    basis: str = Field(
        min_length=1,
        max_length=300,
        description="How and when the reader agreed, as your system recorded it "
        "(e.g. 'event registration form, 2026-12-01, consent box ticked').",
    )


class ReaderIn(In):
    email: str = Field(max_length=320)
    topics: list[str] = Field(min_length=1, max_length=20)
    name: str = Field("", max_length=100)
    organisation: str = Field("", max_length=200, description="with `consent` only")
    language: Language = "ja"
    charset: Charset | None = Field(None, description="with `consent` only")
    consent: Consent | None = Field(
        None,
        description="Only when your system holds the reader's consent: the reader is then "
        "confirmed at once. Without it, a confirmation mail goes out (double opt-in).",
    )
    ip_address: IPvAnyAddress | None = Field(
        None, description="The reader's own IP address, if the sign-up came from them."
    )


class SignupOut(Schema):
    outcome: Literal["confirmation_sent", "reminder_sent", "mail_withheld"]
    message: str


class PreferencesIn(In):
    topics: list[str] = Field(max_length=20, description="exactly these; none: unsubscribed")
    language: Language | None = None
    charset: Charset | None = None
    name: str | None = Field(None, max_length=100)
    consent: Consent | None = Field(
        None,
        description="Needed to add a topic the reader does not receive now: how they agreed.",
    )


class UnsubscribeIn(In):
    topic: str | None = Field(None, max_length=40, description="one topic; null: everything")


class TopicOut(Schema):
    key: str
    name: str
    name_en: str
    description: str
    description_en: str
    is_active: bool


def _out(readers: list[Subscriber]) -> list[dict]:
    """Readers with their topics: one query for the topics of the whole page. Plain dicts:
    ninja checks the answer against ReaderOut once (a model here would be checked twice, the
    larger part of a page's time)."""
    topics: dict[int, list[str]] = {reader.pk: [] for reader in readers}
    rows = Subscription.objects.filter(subscriber_id__in=topics, subscribed=True).values_list(
        "subscriber_id", "topic__key"
    )
    for subscriber_id, key in rows.order_by("topic__position", "topic_id"):
        topics[subscriber_id].append(key)
    return [
        {
            "id": reader.pk,
            "email": reader.email,
            "name": reader.name,
            "organisation": reader.organisation,
            "language": reader.language,
            "charset": reader.charset,
            "status": reader.status,
            "topics": topics[reader.pk],
            "created_at": reader.created_at,
            "confirmed_at": reader.confirmed_at,
            "unsubscribed_at": reader.unsubscribed_at,
        }
        for reader in readers
    ]


def _evidence(request: HttpRequest, ip_address: object = None) -> services.Evidence:
    token = request.auth  # type: ignore[attr-defined]  # set by ninja from TokenAuth
    return services.Evidence(
        source=ConsentRecord.Source.API,
        ip_address=str(ip_address) if ip_address else None,
        user_agent=f"api {token.prefix} ({account(request).get_username()})",
    )


def _reader(reader_id: int) -> Subscriber:
    return get_object_or_404(Subscriber, pk=reader_id)


@router.get(
    "/readers",
    response={200: ReaderPage, CLIENT_ERRORS: ErrorBody},
    auth=needs("readers:read", "subscribers.view_subscriber"),
)
def list_readers(request: HttpRequest, filters: Query[ReaderFilter]):
    """Readers by id, a page at a time; filtered by status, topic and sign-up time."""
    readers = Subscriber.objects.all()
    if filters.status:
        readers = readers.filter(status=filters.status)
    if filters.topic:
        receiving = Subscription.objects.filter(
            subscriber=OuterRef("pk"), topic__key=filters.topic, subscribed=True
        )
        readers = readers.filter(Exists(receiving))
    if filters.created_after:
        readers = readers.filter(created_at__gte=filters.created_after)
    if filters.created_before:
        readers = readers.filter(created_at__lt=filters.created_before)
    rows, cursor = page(readers, filters)
    return {"items": _out(list(rows)), "next": cursor}


@router.get(
    "/readers/{reader_id}",
    response={200: ReaderOut, CLIENT_ERRORS: ErrorBody},
    auth=needs("readers:read", "subscribers.view_subscriber"),
)
def get_reader(request: HttpRequest, reader_id: Id):
    return _out([_reader(reader_id)])[0]


@router.post(
    "/readers",
    response={201: ReaderOut, 202: SignupOut, CLIENT_ERRORS: ErrorBody},
    auth=needs("readers:write", "subscribers.add_subscriber"),
)
def create_reader(request: HttpRequest, data: ReaderIn):
    """Without `consent`: the address's owner gets a confirmation mail and is a reader only
    once they confirm (202). With `consent`: a confirmed reader at once (201), recorded with
    your basis and the source `api`; an address already known or suppressed is a 409."""
    if data.consent is not None:
        # A confirmed reader without a confirmation mail: what an import does, and as in the
        # admin, only for those who may import readers.
        if not account(request).has_perm("subscribers.import_subscriber"):
            raise ApiError(
                403,
                "permission_denied",
                _(
                    "同意を得た読者を直接登録するには、"
                    "読者の取り込み (インポート) の権限が必要です。"
                ),
            )
        reader = services.add_with_consent(
            data.email,
            data.topics,
            data.consent.basis,
            _evidence(request, data.ip_address),
            name=data.name,
            organisation=data.organisation,
            language=data.language,
            charset=data.charset or "",
        )
        return Status(201, _out([reader])[0])
    chosen_by_reader = {"organisation": data.organisation, "charset": data.charset}
    given = sorted(name for name, value in chosen_by_reader.items() if value)
    if given:  # nothing is dropped unsaid: without consent, the reader sets these themselves
        raise ApiError(
            422,
            "invalid",
            _("確認メールで登録する読者には指定できません (読者本人が設定します)。"),
            fields={name: [_("consent があるときだけ指定できます。")] for name in given},
        )
    outcome = services.request_subscription(
        data.email,
        data.topics,
        _evidence(request, data.ip_address),
        name=data.name,
        language=data.language,
    )
    messages = {
        services.SignupOutcome.CONFIRMATION_SENT: _("確認メールを送りました。"),
        services.SignupOutcome.REMINDER_SENT: _(
            "登録済みの読者です。配信設定のリンクを送りました。"
        ),
        services.SignupOutcome.MAIL_WITHHELD: _(
            "このアドレスには24時間以内にメールを送ったため、今回は送っていません。"
        ),
    }
    return Status(202, SignupOut(outcome=outcome.value, message=messages[outcome]))


@router.put(
    "/readers/{reader_id}/preferences",
    response={200: ReaderOut, CLIENT_ERRORS: ErrorBody},
    auth=needs("readers:write", "subscribers.change_subscriber"),
)
def update_preferences(request: HttpRequest, reader_id: Id, data: PreferencesIn):
    """Exactly which topics a confirmed reader receives (none: unsubscribed from all). A topic
    the reader does not receive now is added only with `consent` (and the right to import
    readers); a reader who unsubscribed comes back only by confirming themselves (POST /readers
    mails them the link)."""
    reader = _reader(reader_id)
    receiving = set(
        Subscription.objects.filter(subscriber=reader, subscribed=True).values_list(
            "topic__key", flat=True
        )
    )
    added = sorted(set(data.topics) - receiving)
    if added:
        if reader.status != Subscriber.Status.CONFIRMED:
            raise ApiError(
                409,
                "conflict",
                _(
                    "配信を停止した読者の配信を、APIから再開することはできません。"
                    "POST /readers で本人に確認メールを送ってください。"
                ),
            )
        if data.consent is None:
            raise ApiError(
                422,
                "consent_required",
                _("読者が受け取っていない配信種別を加えるには、読者の同意 (consent) が必要です。"),
                fields={"topics": added},
            )
        if not account(request).has_perm("subscribers.import_subscriber"):
            raise ApiError(
                403,
                "permission_denied",
                _("同意を得た配信種別を加えるには、読者の取り込み (インポート) の権限が必要です。"),
            )
    reader = services.update_preferences(
        reader,
        data.topics,
        _evidence(request),
        language=data.language,
        charset=data.charset,
        name=data.name,
        declared_basis=data.consent.basis if added and data.consent else "",
    )
    return _out([reader])[0]


@router.post(
    "/readers/{reader_id}/unsubscribe",
    response={200: ReaderOut, CLIENT_ERRORS: ErrorBody},
    auth=needs("readers:write", "subscribers.change_subscriber"),
)
def unsubscribe(request: HttpRequest, reader_id: Id, data: UnsubscribeIn):
    """Stop one topic, or everything; doing it again changes nothing."""
    reader = _reader(reader_id)
    if data.topic is not None and not Topic.objects.filter(key=data.topic).exists():
        raise services.InvalidInput(_("不明な配信種別です: %(keys)s") % {"keys": data.topic})
    return _out([services.unsubscribe(reader, data.topic, _evidence(request))])[0]


@router.delete(
    "/readers/{reader_id}",
    response={204: None, CLIENT_ERRORS: ErrorBody},
    auth=needs("readers:write", "subscribers.delete_subscriber"),
)
def erase_reader(request: HttpRequest, reader_id: Id):
    """Erase the reader's data (the consent records and a suppression stay, as the law asks)."""
    services.erase(_reader(reader_id), _evidence(request))
    return Status(204, None)


@router.get("/topics", response={200: list[TopicOut], CLIENT_ERRORS: ErrorBody}, auth=needs(None))
def list_topics(request: HttpRequest):
    """The topics a reader can choose (週報, 記事配信, …), with any valid token."""
    return list(Topic.objects.order_by("position", "id"))
