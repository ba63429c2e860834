"""/api/v1/stats: the dashboard's and the mailing report's figures (outcomes.figures)."""

from datetime import date

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from pydantic import Field

from merumaga.api.core import CLIENT_ERRORS, ApiError, ErrorBody, Id, needs
from merumaga.mailings.models import Mailing
from merumaga.outcomes import figures
from merumaga.subscribers.models import Topic

router = Router(tags=["stats"])
STATS = needs("stats:read", "outcomes.view_mailingreport")


class TopicFiguresOut(Schema):
    key: str
    name: str
    readers: int = Field(description="confirmed readers receiving it now")
    joined: int = Field(description="chose it in the period")
    left: int = Field(description="left it in the period")


class DayOut(Schema):
    day: date
    readers: int
    joined: int
    left: int


class DeliverabilityOut(Schema):
    days: int
    sent: int
    hard_bounces: int
    soft_bounces: int
    complaints: int
    complaint_rate: float | None


class LinkOut(Schema):
    url: str
    article: str
    clicks: int
    clickers: int | None


class MailingFiguresOut(Schema):
    audience: int
    sent: int
    deferred: int
    failed: int
    hard_bounces: int
    soft_bounces: int
    complaints: int
    unsubscribes: int
    clicks: int
    unique_clickers: int | None = Field(description="null when clicks are not kept per reader")
    links: list[LinkOut]


class Period(Schema):
    days: int = Field(30, ge=1, le=366)


class SeriesQuery(Schema):
    days: int = Field(90, ge=1, le=366)
    topic: str | None = Field(None, max_length=40, description="one topic's readers")


@router.get(
    "/stats/readers", response={200: list[TopicFiguresOut], CLIENT_ERRORS: ErrorBody}, auth=STATS
)
def reader_figures(request: HttpRequest, query: Query[Period]):
    """Per topic: readers now, and who joined and left in the last `days` days."""
    return figures.reader_figures(days=query.days)


@router.get(
    "/stats/readers/daily", response={200: list[DayOut], CLIENT_ERRORS: ErrorBody}, auth=STATS
)
def reader_series(request: HttpRequest, query: Query[SeriesQuery]):
    """Confirmed readers per day (Japan time), all topics or one, as the dashboard draws them."""
    if query.topic is None:
        return figures.reader_series(days=query.days)
    if not Topic.objects.filter(key=query.topic).exists():
        raise ApiError(422, "invalid", _("不明な配信種別です: %(keys)s") % {"keys": query.topic})
    return figures.topic_series(query.topic, days=query.days)


@router.get(
    "/stats/deliverability", response={200: DeliverabilityOut, CLIENT_ERRORS: ErrorBody}, auth=STATS
)
def deliverability(request: HttpRequest, query: Query[Period]):
    """Mails sent in the last `days` days, and the bounces and complaints recorded then."""
    found = figures.deliverability(days=query.days)
    return DeliverabilityOut(
        days=query.days,
        sent=found.sent,
        hard_bounces=found.hard_bounces,
        soft_bounces=found.soft_bounces,
        complaints=found.complaints,
        complaint_rate=found.rate(found.complaints),
    )


@router.get(
    "/mailings/{mailing_id}/stats",
    response={200: MailingFiguresOut, CLIENT_ERRORS: ErrorBody},
    auth=STATS,
)
def mailing_figures(request: HttpRequest, mailing_id: Id):
    """The mailing report's figures: deliveries by outcome, bounces, complaints, clicks."""
    return figures.mailing_figures(get_object_or_404(Mailing, pk=mailing_id))
