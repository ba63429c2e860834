"""/api/v1/articles, /reports, /events: checked by the admin's own model forms, saved and
published by publishing.services."""

from datetime import datetime
from typing import Any

from django import forms
from django.db.models import Field as DbField
from django.db.models import Model, URLField
from django.forms.models import model_to_dict
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from ninja import File, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from merumaga.api.core import (
    CLIENT_ERRORS,
    ApiError,
    ErrorBody,
    Id,
    In,
    When,
    account,
    invalid_form,
    needs,
)
from merumaga.publishing import services
from merumaga.publishing.models import Article, Event, Report, Tag

router = Router(tags=["content"])

ARTICLE_FIELDS = (
    "title",
    "slug",
    "digest",
    "body",
    "source_name",
    "source_detail",
    "source_url",
    "author",
    "tags",
    "notify_subscribers",
)
REPORT_FIELDS = ("title", "slug", "summary", "full_version_url", "notify_subscribers")
EVENT_FIELDS = (
    "title",
    "slug",
    "description",
    "starts_at",
    "ends_at",
    "venue",
    "online_url",
    "capacity",
    "registration_deadline",
    "reminder_days",
    "notify_subscribers",
)


class Published(Schema):
    id: int
    title: str
    slug: str
    status: str
    published_at: datetime | None
    notify_subscribers: bool
    updated_at: datetime


class ArticleOut(Published):
    digest: str
    body: str
    source_name: str
    source_detail: str
    source_url: str
    author: str
    tags: list[str]

    @staticmethod
    def resolve_tags(article: Article) -> list[str]:
        return [tag.name for tag in article.tags.all()]


class ReportOut(Published):
    summary: str
    full_version_url: str
    has_pdf: bool

    @staticmethod
    def resolve_has_pdf(report: Report) -> bool:
        return bool(report.pdf)


class EventOut(Published):
    description: str
    starts_at: datetime
    ends_at: datetime
    venue: str
    online_url: str
    capacity: int | None
    registration_deadline: datetime | None
    reminder_days: int | None


class ArticleIn(In):
    title: str | None = Field(None, max_length=200)
    slug: str | None = Field(None, max_length=200)
    digest: str | None = Field(None, max_length=20000)
    body: str | None = Field(None, max_length=500000)
    source_name: str | None = Field(None, max_length=200)
    source_detail: str | None = Field(None, max_length=300)
    source_url: str | None = Field(None, max_length=200)
    author: str | None = Field(None, max_length=100)
    tags: list[str] | None = Field(None, max_length=50, description="names of existing tags")
    notify_subscribers: bool | None = None


class ReportIn(In):
    title: str | None = Field(None, max_length=200)
    slug: str | None = Field(None, max_length=200)
    summary: str | None = Field(None, max_length=20000)
    full_version_url: str | None = Field(None, max_length=200)
    notify_subscribers: bool | None = None


class EventIn(In):
    title: str | None = Field(None, max_length=200)
    slug: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=100000)
    starts_at: When | None = None
    ends_at: When | None = None
    venue: str | None = Field(None, max_length=300)
    online_url: str | None = Field(None, max_length=200)
    capacity: int | None = Field(None, ge=0, le=2**31 - 1)
    registration_deadline: When | None = None
    reminder_days: int | None = Field(None, ge=0, le=60)
    notify_subscribers: bool | None = None


class PublishIn(In):
    at: When | None = Field(None, description="a time to come: scheduled; none: now")


def _save(
    request: HttpRequest,
    model: type[Model],
    fields: tuple[str, ...],
    given: dict[str, Any],
    instance: Any = None,
) -> Any:
    """Check `given` (over what `instance` holds) with the admin's model form for these fields,
    then save through publishing.services.save_item; 422 with each field's messages."""
    # As in the admin, where the switch is read-only for them: whether publishing mails the
    # readers is for those who may start mailings, on or off.
    was = bool(getattr(instance, "notify_subscribers", False))
    changes_notice = "notify_subscribers" in given and bool(given["notify_subscribers"]) != was
    if changes_notice and not account(request).has_perm("mailings.send_mailing"):
        raise ApiError(
            403,
            "permission_denied",
            _("公開時に読者へ通知するには、配信を開始できる役割が必要です。"),
        )
    if "tags" in given:
        names = given["tags"] or []  # null: no tags
        found = dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))
        unknown = [name for name in names if name not in found]
        if unknown:
            raise ApiError(422, "invalid", _("不明なタグです。"), fields={"tags": unknown})
        given = {**given, "tags": [found[name] for name in names]}
    data = model_to_dict(instance, fields) if instance is not None else {}
    if "tags" in data:
        data["tags"] = [tag.pk for tag in data["tags"]]
    data.update(given)
    form_class = forms.modelform_factory(model, fields=fields, formfield_callback=_https_by_default)
    form = form_class(data=data, instance=instance)
    if not form.is_valid():
        raise invalid_form(form)
    item: Any = form.save(commit=False)
    services.save_item(item, form.changed_data if instance is not None else ())
    form.save_m2m()
    return item


def _https_by_default(field: DbField, **kwargs: Any) -> forms.Field | None:
    """A URL typed without its scheme is taken as https, as Django 6 will."""
    if isinstance(field, URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


def _given(data: In) -> dict[str, Any]:
    """What the request sent: an explicit null clears a field that may be empty (a capacity,
    a deadline); a required one says so in its message."""
    return data.dict(exclude_unset=True)


def _publish(item: Any, at: datetime | None) -> Any:
    try:
        if isinstance(item, Article):
            return services.publish_article(item, at)
        if isinstance(item, Report):
            return services.publish_report(item, at)
        return services.publish_event(item, at)
    except services.PublishingError as error:
        raise ApiError(409, "conflict", str(error)) from None


WRITE = {
    Article: ("publishing.add_article", "publishing.change_article"),
    Report: ("publishing.add_report", "publishing.change_report"),
    Event: ("publishing.add_event", "publishing.change_event"),
}


def _routes(model: type[Model], name: str, fields: tuple[str, ...], out: type, given: type):
    """Create, read, update and publish for one kind of content."""
    add, change = WRITE[model]

    def create(request: HttpRequest, data: given):  # type: ignore[valid-type]
        return Status(201, _save(request, model, fields, _given(data)))

    def read(request: HttpRequest, item_id: Id):
        return get_object_or_404(model, pk=item_id)

    def update(request: HttpRequest, item_id: Id, data: given):  # type: ignore[valid-type]
        item = get_object_or_404(model, pk=item_id)
        return _save(request, model, fields, _given(data), item)

    def publish(request: HttpRequest, item_id: Id, data: PublishIn):
        return _publish(get_object_or_404(model, pk=item_id), data.at)

    responses = {CLIENT_ERRORS: ErrorBody}
    router.post(
        f"/{name}",
        response={201: out, **responses},
        auth=needs("content:write", add),
        operation_id=f"create_{name}",
    )(create)
    router.get(
        f"/{name}/{{item_id}}",
        response={200: out, **responses},
        auth=needs("content:write", change),
        operation_id=f"get_{name}",
    )(read)
    router.patch(
        f"/{name}/{{item_id}}",
        response={200: out, **responses},
        auth=needs("content:write", change),
        operation_id=f"update_{name}",
    )(update)
    router.post(
        f"/{name}/{{item_id}}/publish",
        response={200: out, **responses},
        auth=needs("content:write", change),
        operation_id=f"publish_{name}",
    )(publish)


_routes(Article, "articles", ARTICLE_FIELDS, ArticleOut, ArticleIn)
_routes(Report, "reports", REPORT_FIELDS, ReportOut, ReportIn)
_routes(Event, "events", EVENT_FIELDS, EventOut, EventIn)


@router.post(
    "/reports/{item_id}/pdf",
    response={200: ReportOut, CLIENT_ERRORS: ErrorBody},
    auth=needs("content:write", "publishing.change_report"),
)
def upload_report_pdf(request: HttpRequest, item_id: Id, pdf: File[UploadedFile]):
    """The report's PDF (multipart/form-data, field `pdf`), checked as the admin checks it."""
    report = get_object_or_404(Report, pk=item_id)
    form = forms.modelform_factory(Report, fields=("pdf",))(
        data={}, files=MultiValueDict({"pdf": [pdf]}), instance=report
    )
    if not form.is_valid():
        raise invalid_form(form)
    return services.save_item(form.save(commit=False), ("pdf",))
