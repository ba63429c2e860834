from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from merumaga.mailings.models import Mailing
from merumaga.subscribers.models import Subscriber


class Delivery(models.Model):
    """One mailing to one reader: created before any send, ends sent, failed, skipped or cancelled.

    `available_at` says when a worker may take the row: now for a queued row, the retry time for a
    deferred one, and the end of the lease for one being sent — so a worker that dies leaves its
    rows to be taken again when the lease runs out, with no sweeper.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("待機中")
        SENDING = "sending", _("送信中")
        SENT = "sent", _("送信済み")
        DEFERRED = "deferred", _("再送待ち")
        FAILED = "failed", _("失敗")
        SKIPPED = "skipped", _("配信停止のため除外")
        CANCELLED = "cancelled", _("中止")

    mailing = models.ForeignKey(Mailing, on_delete=models.CASCADE, related_name="deliveries")
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    available_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=64, blank=True)
    reply = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("配信先")
        verbose_name_plural = pgettext_lazy("plural", "配信先")
        constraints = [
            models.UniqueConstraint(
                fields=["mailing", "subscriber"], name="one_delivery_per_reader"
            )
        ]
        indexes = [
            # Only the rows still to send, in claiming order: claims stay as fast at the end of
            # a million-reader mailing as at its start (sent rows leave this index).
            models.Index(
                fields=["mailing", "id"],
                name="claimable",
                condition=models.Q(status__in=["queued", "deferred", "sending"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mailing_id} → {self.subscriber_id}: {self.status}"
