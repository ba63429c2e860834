from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from merumaga import reasons
from merumaga.mailings.models import Mailing
from merumaga.shown import minute
from merumaga.subscribers.models import Subscriber


class Source(models.TextChoices):
    """How a message or an event reached us."""

    SMTP = "smtp", _("受信サーバ (SMTP)")
    LMTP = "lmtp", _("受信サーバ (LMTP)")
    CATCHER = "catcher", _("メールキャッチャー")
    POP3 = "pop3", "POP3"
    IMAP = "imap", "IMAP"
    SES = "ses", "Amazon SES"
    WEBHOOK = "webhook", _("Webhook")
    FILE = "file", _("ファイル (コマンド)")
    SMTP_REPLY = "smtp_reply", _("送信時のSMTP応答")


class Kind(models.TextChoices):
    """What a message or event is, which says what is done (classify's module docstring)."""

    HARD = "hard", _("宛先なし (配信停止にする)")
    SOFT = "soft", _("一時的エラー")
    SENDER = "sender", _("送信側の問題 (読者には数えない)")
    NOTICE = "notice", _("配送通知 (配送完了・遅延)")
    COMPLAINT = "complaint", _("迷惑メール報告")
    AUTO_REPLY = "auto_reply", _("自動応答")
    UNSUBSCRIBE = "unsubscribe", _("配信停止メール")
    SUBSCRIBE = "subscribe", _("空メール登録")
    UNRECOGNISED = "unrecognised", _("判別不能")
    QUARANTINED = "quarantined", _("隔離")
    DUPLICATE = "duplicate", _("重複")
    RECEIVED = "received", _("受信済み (読み取り待ち)")


class InboundMessage(models.Model):
    """One message that came back, kept as received (up to BOUNCE_KEEP_KB) with how it was read.

    Nothing that arrives is dropped: what no rule understood stays here, as "unrecognised" or
    "quarantined", for a person to look at.
    """

    received_at = models.DateTimeField(_("受信日時"), default=timezone.now, db_index=True)
    source = models.CharField(_("経路"), max_length=12, choices=Source.choices)
    envelope_from = models.CharField(_("エンベロープ送信者"), max_length=300, blank=True)
    envelope_to = models.CharField(_("エンベロープ宛先"), max_length=1000, blank=True)
    # The channel and the Message-ID (else the digest): a second delivery of the same message is
    # counted on the first, never acted on twice.
    dedupe_key = models.CharField(max_length=200, unique=True)
    digest = models.CharField(max_length=64)  # SHA-256 of the bytes as received
    times_received = models.PositiveIntegerField(_("受信回数"), default=1)
    kind = models.CharField(_("種別"), max_length=12, choices=Kind.choices, db_index=True)
    reason = models.CharField(_("理由"), max_length=24, choices=reasons.CHOICES, blank=True)
    rule = models.CharField(_("判定規則"), max_length=80, blank=True)
    status = models.CharField(_("ステータス"), max_length=12, blank=True)
    addresses = models.JSONField(_("検出したアドレス"), default=list)
    subject = models.CharField(_("件名"), max_length=200, blank=True)
    mailing = models.ForeignKey(
        Mailing, verbose_name=_("メールマガジン"), null=True, blank=True, on_delete=models.SET_NULL
    )
    subscriber = models.ForeignKey(
        Subscriber, verbose_name=_("読者"), null=True, blank=True, on_delete=models.SET_NULL
    )
    raw = models.BinaryField(_("受信したメッセージ"), blank=True)
    size = models.PositiveIntegerField(_("サイズ (バイト)"), default=0)
    note = models.CharField(_("メモ"), max_length=300, blank=True)
    reviewed_at = models.DateTimeField(_("確認日時"), null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("受信メッセージ")
        verbose_name_plural = pgettext_lazy("plural", "受信メッセージ")

    def __str__(self) -> str:
        return f"{minute(self.received_at)} {self.get_kind_display()} {self.subject}"

    @property
    def truncated(self) -> bool:
        return self.size > len(self.raw or b"")


class BounceEvent(models.Model):
    """One reader's bounce, complaint or mailed unsubscribe, and what was done about it."""

    class Outcome(models.TextChoices):
        SUPPRESSED = "suppressed", _("配信停止にした")
        UNSUBSCRIBED = "unsubscribed", _("購読を解除した")
        SCORED = "scored", _("スコアに加算")
        ALREADY_SUPPRESSED = "already", _("既に配信停止")
        UNKNOWN_RECIPIENT = "unknown", _("該当する読者なし")
        ERASED = "erased", _("データ削除済みの読者")
        UNVERIFIED = "unverified", _("要確認 (トークンなし)")
        NOT_COUNTED = "not_counted", _("読者には数えない (送信側の問題)")

    created_at = models.DateTimeField(_("日時"), default=timezone.now, db_index=True)
    message = models.ForeignKey(
        InboundMessage,
        verbose_name=_("受信メッセージ"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
    )
    source = models.CharField(_("経路"), max_length=12, choices=Source.choices)
    kind = models.CharField(_("種別"), max_length=12, choices=Kind.choices)
    reason = models.CharField(_("理由"), max_length=24, choices=reasons.CHOICES, blank=True)
    subscriber = models.ForeignKey(
        Subscriber,
        verbose_name=_("読者"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="bounce_events",
    )
    mailing = models.ForeignKey(
        Mailing, verbose_name=_("メールマガジン"), null=True, blank=True, on_delete=models.SET_NULL
    )
    # The address by hash only (it outlives an erasure); the domain for the per-domain rates.
    address_hash = models.CharField(max_length=64, db_index=True)
    domain = models.CharField(_("ドメイン"), max_length=255, db_index=True)
    status = models.CharField(_("ステータス"), max_length=12, blank=True)
    diagnostic = models.CharField(_("詳細"), max_length=300, blank=True)
    rule = models.CharField(_("判定規則"), max_length=80, blank=True)
    relay = models.CharField(_("送信リレー"), max_length=100, blank=True)
    score = models.FloatField(_("スコア"), default=0)
    outcome = models.CharField(_("処理"), max_length=12, choices=Outcome.choices)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("不達・苦情")
        verbose_name_plural = pgettext_lazy("plural", "不達・苦情")
        indexes = [
            models.Index(fields=["mailing", "kind"], name="bounce_event_mailing_kind"),
            # The problems that are ours, per receiving domain, recent first: the domain hold.
            models.Index(fields=["domain", "kind", "created_at"], name="bounce_event_domain"),
        ]

    def __str__(self) -> str:
        return f"{minute(self.created_at)} {self.get_kind_display()} {self.domain}"


class BounceScore(models.Model):
    """A reader's running bounce score (Mailman's model): hard bounces, soft score, last seen."""

    subscriber = models.OneToOneField(
        Subscriber, on_delete=models.CASCADE, related_name="bounce_score"
    )
    hard_bounces = models.PositiveIntegerField(default=0)
    score = models.FloatField(default=0)
    last_bounce_at = models.DateTimeField(null=True, blank=True)
    last_soft_on = models.DateField(null=True, blank=True)
    # When the reader's mailbox was first reported suspended (and not since delivered to):
    # past the grace period it counts as gone.
    suspended_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("不達スコア")
        verbose_name_plural = pgettext_lazy("plural", "不達スコア")

    def __str__(self) -> str:
        return f"{self.subscriber_id}: {self.hard_bounces} hard, {self.score:.1f}"


class SuppressionChange(models.Model):
    """Append-only audit trail: every suppression made or lifted here, why and by whom."""

    class Action(models.TextChoices):
        SUPPRESSED = "suppressed", _("配信停止")
        LIFTED = "lifted", _("配信停止の取り消し")

    created_at = models.DateTimeField(_("日時"), default=timezone.now, db_index=True)
    action = models.CharField(_("操作"), max_length=12, choices=Action.choices)
    address_hash = models.CharField(max_length=64, db_index=True)
    subscriber = models.ForeignKey(
        Subscriber, verbose_name=_("読者"), null=True, blank=True, on_delete=models.SET_NULL
    )
    event = models.ForeignKey(
        BounceEvent, verbose_name=_("原因"), null=True, blank=True, on_delete=models.SET_NULL
    )
    reason = models.CharField(_("理由"), max_length=300)
    # Null: the platform itself, acting on a bounce or complaint.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("担当者"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("配信停止の記録")
        verbose_name_plural = pgettext_lazy("plural", "配信停止の記録")

    def __str__(self) -> str:
        return f"{minute(self.created_at)} {self.get_action_display()} {self.reason}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("The suppression audit trail is append-only.")
        super().save(*args, **kwargs)
