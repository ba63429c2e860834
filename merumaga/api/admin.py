from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin

from merumaga.admin_site import RecordAdmin
from merumaga.api import services
from merumaga.api.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(RecordAdmin, ModelAdmin):
    """Tokens are made with `merumaga api-token create` (the token is printed once and kept only
    as a hash); here they are seen, and revoked."""

    list_display = ("prefix", "user", "name", "scope_list", "expires_at", "last_used_at", "state")
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "user__username", "name")
    fields = (
        "prefix",
        "user",
        "name",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    list_select_related = ("user",)
    actions = ["revoke_tokens"]

    @admin.display(description=_("スコープ"))
    def scope_list(self, token: ApiToken) -> str:
        return ", ".join(token.scopes)

    @admin.display(description=_("状態"))
    def state(self, token: ApiToken) -> str:
        if token.revoked_at:
            return str(_("取消済み"))
        return str(_("有効")) if token.usable(timezone.now()) else str(_("期限切れ"))

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("api.change_apitoken")

    @admin.action(description=_("選択したトークンを取り消す"), permissions=["revoke"])
    def revoke_tokens(self, request: HttpRequest, queryset) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            services.revoke(token)
        messages.success(request, _("トークンを取り消しました。使っていた連携は止まります。"))
