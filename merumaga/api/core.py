"""What every operation of the API shares: the token check, the error body, cursor pages."""

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Path, Schema
from ninja.security import HttpBearer
from pydantic import AfterValidator, Field, field_validator

from merumaga import audit
from merumaga.api import services
from merumaga.api.models import ApiToken

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# Ids and counts as the database holds them: a larger number is a 422, not an overflow.
BIGGEST_ID = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=BIGGEST_ID)]
PAGE_DEFAULT = 50
PAGE_MOST = 100
M = TypeVar("M", bound=Model)


def _moment(value: datetime) -> datetime:
    """A time as the database can hold and compare it: naive is Japan time (the site's zone),
    and anything else is taken to UTC. An offset beyond any real zone's (±18 hours), or a year
    outside 1900–9998 (no offset then takes it past what a date holds), is no time anyone
    means: refused (PostgreSQL would refuse it worse)."""
    if value.tzinfo is None:
        value = timezone.make_aware(value)
    offset = value.utcoffset() or timedelta(0)
    if abs(offset) > timedelta(hours=18):
        raise ValueError("the time zone offset must be within ±18:00")
    if not 1900 <= value.year <= 9998:
        raise ValueError("the year must be between 1900 and 9998")
    return value.astimezone(UTC)


When = Annotated[datetime, AfterValidator(_moment)]


class ApiError(Exception):
    """Answered as {"error": {"code", "message", "fields"?}} with `status`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields, self.headers = fields, headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return {"error": error}


def invalid_form(form) -> ApiError:
    """A model form's errors (the admin's own checks) as the API's 422, field by field."""
    return ApiError(
        422,
        "invalid",
        _("入力に誤りがあります。"),
        fields={name: [str(m) for m in errors] for name, errors in form.errors.items()},
    )


class ErrorDetail(Schema):
    code: str = Field(description="A stable word for programs: not_found, invalid, …")
    message: str = Field(description="What went wrong, for a person (Japanese or English).")
    fields: dict[str, list[str]] | None = Field(None, description="Per input field, if any.")


class ErrorBody(Schema):
    error: ErrorDetail


# What any operation may answer besides its success: in the schema, so that clients (and the
# fuzzer) know every status they can meet.
CLIENT_ERRORS = frozenset({400, 401, 403, 404, 409, 413, 415, 422, 429})


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


class In(Schema):
    """A request body. No text we store may hold NUL (PostgreSQL refuses it; no field of ours
    means it): refused here, with the other input errors."""

    @field_validator("*", mode="after")
    @classmethod
    def refuse_nul(cls, value: Any) -> Any:
        if _holds_nul(value):
            raise ValueError("text must not contain NUL (\\u0000)")
        return value


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>` with `scope`, from an account holding `permission` now;
    counted against the token's rate limit. The request then acts as the token's account: the
    audit log names it, "via api" (the context is the request's: AuditActorMiddleware)."""

    def __init__(self, scope: str | None, permission: str | None) -> None:
        super().__init__()
        self.scope, self.permission = scope, permission

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        found = services.find(token)
        if found is None:
            raise ApiError(
                401,
                "invalid_token",
                _("トークンが正しくないか、期限切れか、取り消されています。"),
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        # Counted before the scope and role checks: refused requests count too.
        refusal = services.count_request(found)
        if refusal is not None:
            raise ApiError(
                429,
                "rate_limited",
                _("リクエストが多すぎます。%(seconds)d秒後にもう一度お試しください。")
                % {"seconds": refusal.retry_after},
                headers={"Retry-After": str(refusal.retry_after)},
            )
        if self.scope is not None and self.scope not in found.scopes:
            raise ApiError(
                403,
                "insufficient_scope",
                _("このトークンには「%(scope)s」のスコープがありません。") % {"scope": self.scope},
            )
        if self.permission is not None and not found.user.has_perm(self.permission):
            raise ApiError(
                403,
                "permission_denied",
                _("このアカウントの役割では、この操作はできません。"),
            )
        request.user = found.user
        audit.current_actor.set(audit.Actor(found.user, "api"))
        return found


def account(request: HttpRequest) -> "User":
    """The account the request's token acts for."""
    token: ApiToken = request.auth  # type: ignore[attr-defined]  # set by ninja from TokenAuth
    return token.user


def needs(scope: str | None, permission: str | None = None) -> TokenAuth:
    return TokenAuth(scope, permission)


# Cursor pages: ordered by id, the cursor names the last id seen. An insert while a client walks
# the pages never makes it see a row twice or skip one that was there when it began.


class PageQuery(Schema):
    cursor: str | None = Field(None, max_length=40, description="`next` of the previous page.")
    limit: int = Field(PAGE_DEFAULT, ge=1, le=PAGE_MOST)


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _sep, value = text.partition(":")
        last = int(value) if kind == "id" and value.isascii() and value.isdigit() else -1
    except (binascii.Error, UnicodeDecodeError, ValueError):
        last = -1
    if not 0 <= last <= BIGGEST_ID:
        raise ApiError(422, "invalid_cursor", _("cursor が正しくありません。"))
    return last


def page(queryset: QuerySet[M], query: PageQuery) -> tuple[Sequence[M], str | None]:
    """One page of `queryset` by id, and the cursor of the next (None on the last page)."""
    if query.cursor:
        queryset = queryset.filter(pk__gt=_decode_cursor(query.cursor))
    rows = list(queryset.order_by("pk")[: query.limit + 1])
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        return rows, encode_cursor(rows[-1].pk)
    return rows, None
