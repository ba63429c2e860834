from django.conf import settings
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
        # The mail viewer shows readers' addresses and their working links: personal data.
        permissions = [("view_caught_mail", _("送信メール (メールキャッチャー) を見る"))]
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


class DomainHold(models.Model):
    """Sending to one receiving domain stopped: it refuses our mail for a reason that is ours (a
    blocklist, our reputation, SPF/DKIM/DMARC, a spam filter), so every mail sent to it now
    would only deepen the block. The rows wait; a probe goes after the back-off, or an operator
    lifts the hold. One active hold per domain; lifted ones stay as the record."""

    domain = models.CharField(_("ドメイン"), max_length=255)
    reason = models.CharField(_("理由"), max_length=300)
    started_at = models.DateTimeField(_("開始"), default=timezone.now)
    backoff = models.DurationField(_("待機時間"))
    probe_at = models.DateTimeField(_("次の試行"))
    probing_since = models.DateTimeField(null=True, blank=True)  # a worker's probe is out
    probes = models.PositiveIntegerField(_("試行回数"), default=0)
    lifted_at = models.DateTimeField(_("解除"), null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("解除した人"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    lift_note = models.CharField(_("解除の理由"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("送信先ドメインの一時停止")
        verbose_name_plural = pgettext_lazy("plural", "送信先ドメインの一時停止")
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["domain"],
                condition=models.Q(lifted_at__isnull=True),
                name="one_active_hold_per_domain",
            )
        ]

    def __str__(self) -> str:
        return self.domain

    @property
    def active(self) -> bool:
        return self.lifted_at is None


class DomainPace(models.Model):
    """The rate one worker's pool sends to one receiving domain now (pacing.AdaptivePace), as
    the worker last wrote it: for the progress page and `mailing status`."""

    worker = models.CharField(max_length=64)
    domain = models.CharField(max_length=255)
    rate = models.FloatField(null=True)  # messages per second; null: not limited
    ceiling = models.FloatField(null=True)
    throttles = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["worker", "domain"], name="one_pace_per_worker_domain")
        ]

    def __str__(self) -> str:
        return f"{self.domain} ({self.worker}): {self.rate}/s"


class WorkerBeat(models.Model):
    """A delivery worker says it is alive (every BEAT_EVERY seconds, working or idle): the
    readiness check and the metrics read it. One row per worker, overwritten."""

    worker = models.CharField(max_length=64, unique=True)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)
    sent = models.PositiveBigIntegerField(default=0)  # mails this worker has sent since it started
    # Since it started: {"relay|provider|result": count}, result sent, deferred or failed.
    counts = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"{self.worker} ({self.seen_at:%Y-%m-%d %H:%M:%S})"
