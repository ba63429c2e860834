"""API tokens: made, found, revoked and counted here, for the API, the CLI and the admin."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from merumaga.api.models import ApiToken
from merumaga.subscribers import throttle

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django_stubs_ext import StrOrPromise

# Each scope, what it lets a token do, and the permission its account needs to hold it (every
# operation checks its own permission as well: a role taken away stops the token at once).
SCOPES: dict[str, tuple["StrOrPromise", str]] = {
    "readers:read": (gettext_lazy("読者を読む"), "subscribers.view_subscriber"),
    "readers:write": (
        gettext_lazy("読者の登録・配信設定・配信停止・削除"),
        "subscribers.change_subscriber",
    ),
    "content:write": (
        gettext_lazy("記事・レポート・イベントの作成・更新・公開"),
        "publishing.change_article",
    ),
    "mailings:send": (
        gettext_lazy("配信の作成・プレビュー・テスト送信・開始・一時停止"),
        "mailings.send_mailing",
    ),
    "stats:read": (gettext_lazy("配信結果と読者数を読む"), "outcomes.view_mailingreport"),
}
PREFIX = "mmg_"
LONGEST_LIFE_DAYS = 730
RATE_WINDOW = timedelta(minutes=1)
# last_used_at is written at most this often: not one more write per request.
USE_NOTED_EVERY = timedelta(minutes=1)


class TokenError(ValueError):
    """A token that cannot be made as asked; the message says why."""


def digest(raw: str) -> str:
    """The token's key in the table. A plain SHA-256 suffices: the token is 256 random bits,
    nothing a dictionary could guess, unlike a password."""
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(
    user: "User",
    scopes: list[str],
    *,
    expires_days: int | None = None,
    name: str = "",
    now: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A new token for `user`: the row, and the token itself (not kept: show it once)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise TokenError(
            _("不明なスコープです: %(scopes)s (使えるもの: %(known)s)")
            % {"scopes": ", ".join(unknown), "known": ", ".join(SCOPES)}
        )
    if not scopes:
        raise TokenError(_("スコープを一つ以上指定してください。"))
    if not (user.is_active and user.is_staff):
        raise TokenError(_("有効なスタッフアカウントにだけトークンを作成できます。"))
    lacking = [scope for scope in scopes if not user.has_perm(SCOPES[scope][1])]
    if lacking:
        raise TokenError(
            _("このアカウントの役割では、次のスコープを持てません: %(scopes)s")
            % {"scopes": ", ".join(lacking)}
        )
    days = settings.API_TOKEN_DAYS if expires_days is None else expires_days
    if not 1 <= days <= LONGEST_LIFE_DAYS:
        raise TokenError(
            _("有効期限は1日から%(days)d日までで指定してください。") % {"days": LONGEST_LIFE_DAYS}
        )
    now = now or timezone.now()
    raw = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name.strip()[:100],
        prefix=raw[:12],
        digest=digest(raw),
        scopes=sorted(set(scopes)),
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    return token, raw


def revoke(token: ApiToken, now: datetime | None = None) -> ApiToken:
    """The token stops working at once; its row stays, for the audit log's sake."""
    if token.revoked_at is None:
        token.revoked_at = now or timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def find(raw: str, now: datetime | None = None) -> ApiToken | None:
    """The usable token `raw` names (not revoked, not expired, its account active staff), else
    None."""
    if not raw.startswith(PREFIX):
        return None
    token = ApiToken.objects.select_related("user").filter(digest=digest(raw)).first()
    now = now or timezone.now()
    if token is None or not token.usable(now):
        return None
    if token.last_used_at is None or now - token.last_used_at > USE_NOTED_EVERY:
        # An update, not a save: the use of a token is no change for the audit log.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


@dataclass(frozen=True)
class Refusal:
    retry_after: int  # seconds until the window with room begins


def count_request(token: ApiToken, now: datetime | None = None) -> Refusal | None:
    """Count one request on the token; a Refusal when it is over API_RATE_LIMIT a minute. The
    count is kept in the database, so every web process and machine shares it."""
    now = now or timezone.now()
    if throttle.allow(f"api:{token.pk}", settings.API_RATE_LIMIT, RATE_WINDOW, now):
        return None
    seconds = int(RATE_WINDOW.total_seconds())
    ends = throttle.window_start(now, RATE_WINDOW) + seconds
    return Refusal(retry_after=max(1, ends - int(now.timestamp())))
