"""The API's first version, at /api/v1/ (django-ninja): OpenAPI 3 at /api/v1/openapi.json,
interactive documentation at /api/v1/docs. Every error is {"error": {"code", "message",
"fields"?}}, whatever raised it."""

import logging

from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.http import Http404, HttpRequest, HttpResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from merumaga.api import content, mailings, readers, stats
from merumaga.api.core import ApiError
from merumaga.mailings.services import MailingError
from merumaga.publishing.services import PublishingError
from merumaga.subscribers.services import AlreadyKnown, InvalidInput, TooManyRequests

logger = logging.getLogger(__name__)

api = NinjaAPI(
    title="merumaga API",
    version="1",
    description=(
        "Readers, topics, content, mailings and figures of this mail magazine. Send a token "
        "made with `merumaga api-token create` as `Authorization: Bearer <token>`. Lists are "
        "paged by cursor: pass `next` as `cursor`. Every error is "
        '`{"error": {"code", "message", "fields"?}}`.'
    ),
    urls_namespace="api",
)
for part in (readers, content, mailings, stats):
    api.add_router("", part.router)


def _answer(request: HttpRequest, error: ApiError) -> HttpResponse:
    response = api.create_response(request, error.body(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


@api.exception_handler(ApiError)
def api_error(request, error: ApiError):
    return _answer(request, error)


@api.exception_handler(AuthenticationError)
def no_token(request, error):
    return _answer(
        request,
        ApiError(
            401,
            "no_token",
            _(
                "トークンを「Authorization: Bearer <トークン>」で送ってください"
                " (merumaga api-token create で作成)。"
            ),
            headers={"WWW-Authenticate": "Bearer"},
        ),
    )


@api.exception_handler(ValidationError)
def invalid_request(request, error: ValidationError):
    fields: dict[str, list[str]] = {}
    for problem in error.errors:
        place = [str(part) for part in problem.get("loc", ())]
        # ("body", <the body's parameter>, field, …), ("query", field), ("path", field)
        place = place[2:] if place[:1] == ["body"] else place[1:]
        fields.setdefault(".".join(place) or "request", []).append(problem.get("msg", ""))
    return _answer(request, ApiError(422, "invalid", _("入力に誤りがあります。"), fields))


@api.exception_handler(InvalidInput)
def invalid_input(request, error: InvalidInput):
    code = "conflict" if isinstance(error, AlreadyKnown) else "invalid"
    return _answer(request, ApiError(409 if code == "conflict" else 422, code, str(error)))


@api.exception_handler(TooManyRequests)
def too_many_sign_ups(request, error):
    return _answer(
        request,
        ApiError(
            429,
            "rate_limited",
            _(
                "このアドレス・ドメイン・IPアドレスからの登録申込が多すぎます。1時間後にお試しください。"
            ),
            headers={"Retry-After": "3600"},
        ),
    )


@api.exception_handler(MailingError)
@api.exception_handler(PublishingError)
def conflict(request, error: Exception):
    return _answer(request, ApiError(409, "conflict", str(error)))


@api.exception_handler(Http404)
def not_found(request, error):
    return _answer(request, ApiError(404, "not_found", _("見つかりません。")))


@api.exception_handler(PermissionDenied)
def denied(request, error):
    return _answer(request, ApiError(403, "permission_denied", _("この操作は許可されていません。")))


@api.exception_handler(RequestDataTooBig)
def too_big(request, error):
    return _answer(request, ApiError(413, "too_large", _("リクエストが大きすぎます。")))


# A body Django cannot read (a broken multipart upload, a connection cut while sending, too
# many fields): the client's fault, said as such, not a server error.
@api.exception_handler(SuspiciousOperation)
@api.exception_handler(BadRequest)
@api.exception_handler(MultiPartParserError)
@api.exception_handler(UnreadablePostError)
def unreadable(request, error):
    return _answer(request, ApiError(400, "bad_request", _("リクエストの形式が正しくありません。")))


@api.exception_handler(HttpError)
def http_error(request, error: HttpError):
    return _answer(request, ApiError(error.status_code, "bad_request", str(error)))


@api.exception_handler(Exception)
def server_error(request, error: Exception):
    logger.exception("API %s %s failed", request.method, request.path)
    return _answer(request, ApiError(500, "server_error", _("サーバー側でエラーが起きました。")))
