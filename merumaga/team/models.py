from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from merumaga.shown import minute


class AuditEntry(models.Model):
    """One change a person or an API client made: who, when, to what, and the fields before and
    after (personal data shown only as changed). Append-only, as consent records are."""

    at = models.DateTimeField(_("日時"), default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("担当者"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
    )
    username = models.CharField(_("ユーザー名"), max_length=150, blank=True)
    via = models.CharField(_("経路"), max_length=12)
    action = models.CharField(_("操作"), max_length=60, db_index=True)
    object_type = models.CharField(_("対象の種類"), max_length=60, blank=True, db_index=True)
    object_id = models.CharField(_("対象のID"), max_length=40, blank=True)
    object_repr = models.CharField(_("対象"), max_length=200, blank=True)
    changes = models.JSONField(_("変更内容"), default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("操作記録")
        verbose_name_plural = pgettext_lazy("plural", "操作記録")
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{minute(self.at)} {self.username or '—'} {self.action} {self.object_repr}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("The audit log is append-only.")
