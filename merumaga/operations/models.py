from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from merumaga.shown import minute


class DoctorRun(models.Model):
    """What `merumaga doctor` found, kept so that the admin shows the last answer."""

    ran_at = models.DateTimeField(_("実行日時"), default=timezone.now, db_index=True)
    ok = models.PositiveSmallIntegerField(_("問題なし"), default=0)
    warn = models.PositiveSmallIntegerField(_("注意"), default=0)
    fail = models.PositiveSmallIntegerField(_("要対応"), default=0)
    findings = models.JSONField(_("結果"), default=list)

    class Meta:
        ordering = ["-ran_at", "-id"]
        verbose_name = _("送信設定の診断")
        verbose_name_plural = pgettext_lazy("plural", "送信設定の診断")

    def __str__(self) -> str:
        return f"{minute(self.ran_at)}: ok {self.ok}, warn {self.warn}, fail {self.fail}"
