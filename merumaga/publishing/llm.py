"""One chat-completions request to an OpenAI-compatible endpoint (OpenAI, DeepSeek, a local
server), with an explicit timeout and retries, and failures said in words.

Hand-written with urllib: it is one JSON POST. The OpenAI SDK would bring httpx, anyio and
their dependencies for that one call, and its retries and errors would still need wording here.
The API key goes only into the Authorization header: never into a message, a log line or a page.
"""

import http.client
import json
import logging
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.utils.translation import gettext as _

log = logging.getLogger(__name__)
RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}  # worth another try after a pause
pause = time.sleep  # between tries; the tests count the pauses instead of waiting them


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect with the Authorization header, to any host and scheme:
    the key must go to the configured endpoint only, so a redirect is an error."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


class LlmError(Exception):
    """The endpoint could not give an answer; the message says why, for the editor."""


def configured() -> bool:
    return bool(settings.LLM_BASE_URL)


def _redacted(text: str) -> str:
    key = settings.LLM_API_KEY
    return text.replace(key, "***") if key else text


def _refusal(error: urllib.error.HTTPError) -> str:
    if 300 <= error.code < 400:
        return _(
            "LLMの接続先が別のアドレスへ転送しようとしました (HTTP %(status)s)。"
            "MERUMAGA_LLM_BASE_URL を確認してください。"
        ) % {"status": error.code}
    if error.code in (401, 403):  # the body may quote part of the key: never shown
        return _(
            "LLMの接続先が認証を拒否しました (HTTP %(status)s)。APIキーを確認してください。"
        ) % {"status": error.code}
    try:
        detail = json.loads(error.read(4096) or b"{}").get("error", {})
        detail = detail.get("message", "") if isinstance(detail, dict) else str(detail)
    except (ValueError, AttributeError, OSError):
        detail = ""
    return _redacted(
        _("LLMの接続先がエラーを返しました (HTTP %(status)s) %(detail)s")
        % {"status": error.code, "detail": detail[:200]}
    ).strip()


def _read_within(response: http.client.HTTPResponse, seconds: float) -> bytes:
    """The body, or TimeoutError once `seconds` have passed: the socket's timeout bounds each
    wait, not the whole, and a server that trickles bytes would hold a task thread for ever."""
    deadline = time.monotonic() + seconds
    chunks = []
    while chunk := response.read1(65536):
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise TimeoutError
    if response.length:  # the connection ended before the Content-Length it announced
        raise http.client.IncompleteRead(b"".join(chunks), response.length)
    return b"".join(chunks)


def complete(messages: list[dict[str, str]]) -> str:
    """The assistant's answer to `messages`. Tries 1 + LLM_RETRIES times on a timeout, a refused
    connection, 429 or 5xx, pausing 1, 2, 4 … s between tries; raises LlmError with the reason."""
    body = json.dumps(
        {"model": settings.LLM_MODEL, "messages": messages, "temperature": 0.2}
    ).encode()
    headers = {"Content-Type": "application/json"}
    if settings.LLM_API_KEY:
        headers["Authorization"] = f"Bearer {settings.LLM_API_KEY}"
    url = f"{settings.LLM_BASE_URL}/chat/completions"
    reason = ""
    for attempt in range(settings.LLM_RETRIES + 1):
        if attempt:
            pause(2 ** (attempt - 1))
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with _opener.open(request, timeout=settings.LLM_TIMEOUT) as response:
                answer = json.loads(_read_within(response, settings.LLM_TIMEOUT))
            text = answer["choices"][0]["message"]["content"]
            if not isinstance(text, str) or not text.strip():
                raise LlmError(_("LLMの応答に本文がありませんでした。"))
            return text.strip()
        except urllib.error.HTTPError as error:
            reason = _refusal(error)
            if error.code not in RETRY_STATUSES:
                break
        except (OSError, http.client.HTTPException) as error:  # refused, reset, TLS, timeout …
            cause = getattr(error, "reason", error)
            if isinstance(cause, TimeoutError) or isinstance(error, TimeoutError):
                reason = _("LLMの接続先が%(seconds)s秒以内に応答しませんでした。") % {
                    "seconds": f"{settings.LLM_TIMEOUT:g}"
                }
            else:
                reason = _("LLMの接続先に接続できませんでした (%(reason)s)。") % {
                    "reason": _redacted(str(cause))[:200]
                }
        except (ValueError, KeyError, IndexError, TypeError):
            reason = _("LLMの応答を読めませんでした (chat completions の形式ではありません)。")
            break
        log.warning("LLM request failed (try %d): %s", attempt + 1, reason)
    raise LlmError(reason)
