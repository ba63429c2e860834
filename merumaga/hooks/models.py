import secrets

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from merumaga.shown import minute

EVENTS = [
    ("reader.subscribed", _("登録申込")),
    ("reader.confirmed", _("登録確認")),
    ("reader.unsubscribed", _("配信停止")),
    ("reader.erased", _("データ削除")),
    ("bounce.hard", _("不達 (宛先なし)")),
    ("complaint", _("迷惑メール報告")),
    ("mailing.started", _("配信開始")),
    ("mailing.finished", _("配信完了")),
    ("link.clicked", _("リンクのクリック")),
]
TEST_EVENT = "test"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class Endpoint(models.Model):
    """An address that is told, by a signed POST, of the events it chose."""

    url = models.URLField(_("送信先URL"), max_length=500)
    description = models.CharField(_("説明"), max_length=200, blank=True)
    events = models.JSONField(
        _("イベント"), default=list, blank=True, help_text=_("空欄: すべてのイベント")
    )
    secret = models.CharField(_("署名の鍵"), max_length=64, default=new_secret, editable=False)
    active = models.BooleanField(_("有効"), default=True)
    created_at = models.DateTimeField(_("登録日時"), default=timezone.now)

    class Meta:
        ordering = ["id"]
        verbose_name = _("Webhook 送信先")
        verbose_name_plural = pgettext_lazy("plural", "Webhook 送信先")

    def __str__(self) -> str:
        return self.url

    def wants(self, event: str) -> bool:
        if event == TEST_EVENT:  # sent to one endpoint on purpose, active or not
            return True
        return self.active and (not self.events or event in self.events)


class WebhookDelivery(models.Model):
    """One event for one endpoint: tried until it is taken, for a day, each try recorded."""

    class Status(models.TextChoices):
        PENDING = "pending", _("送信待ち")
        DELIVERED = "delivered", _("送信済み")
        FAILED = "failed", _("失敗")

    endpoint = models.ForeignKey(
        Endpoint, verbose_name=_("送信先"), on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(_("イベント"), max_length=40)
    payload = models.JSONField(_("内容"))
    status = models.CharField(
        _("状態"), max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(_("試行回数"), default=0)
    next_at = models.DateTimeField(_("次の試行"), null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(_("最後の応答"), null=True, blank=True)
    last_error = models.CharField(_("最後のエラー"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("作成日時"), default=timezone.now, db_index=True)
    delivered_at = models.DateTimeField(_("送信日時"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("Webhook の送信")
        verbose_name_plural = pgettext_lazy("plural", "Webhook の送信")

    def __str__(self) -> str:
        return f"{minute(self.created_at)} {self.event} → {self.endpoint}"
