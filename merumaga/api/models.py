from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class ApiToken(models.Model):
    """A key another system sends as `Authorization: Bearer …`, acting for its account within
    its scopes. Only a hash is kept: the token itself is shown once, when made."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("アカウント"),
        on_delete=models.CASCADE,
        related_name="api_tokens",
    )
    name = models.CharField(_("用途"), max_length=100, blank=True)
    # The token's first characters: enough to recognise it in a list, useless to guess it.
    prefix = models.CharField(_("先頭"), max_length=16, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(_("スコープ"), default=list)
    created_at = models.DateTimeField(_("作成日時"), default=timezone.now)
    expires_at = models.DateTimeField(_("有効期限"))
    revoked_at = models.DateTimeField(_("取消日時"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("最終使用"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("APIトークン")
        verbose_name_plural = pgettext_lazy("plural", "APIトークン")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    def usable(self, now) -> bool:
        user = self.user
        return (
            self.revoked_at is None and now < self.expires_at and user.is_active and user.is_staff
        )
