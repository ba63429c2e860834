import hashlib
import secrets
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from merumaga.shown import minute


def address_hash(email: str) -> str:
    """The key a suppression is kept under: it survives the erasure of the address itself."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def new_nonce() -> str:
    return secrets.token_urlsafe(8)


class Topic(models.Model):
    """One of the mailings a reader can choose (週報, 記事配信, …); editable as data."""

    key = models.SlugField(_("キー"), max_length=40, unique=True)
    name = models.CharField(_("名前"), max_length=100)
    name_en = models.CharField(_("名前 (英語)"), max_length=100, blank=True)
    description = models.CharField(_("説明"), max_length=300, blank=True)
    description_en = models.CharField(_("説明 (英語)"), max_length=300, blank=True)
    position = models.PositiveSmallIntegerField(_("表示順"), default=0)
    is_active = models.BooleanField(_("受付中"), default=True)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("配信種別")
        verbose_name_plural = pgettext_lazy("plural", "配信種別")

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        """The name in the language of the current request or mail."""
        return self.localized_name(get_language() or "ja")

    def localized_name(self, language: str) -> str:
        return self.name_en if language == "en" and self.name_en else self.name

    def localized_description(self, language: str) -> str:
        if language == "en" and self.description_en:
            return self.description_en
        return self.description


class Subscriber(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("確認待ち")
        CONFIRMED = "confirmed", _("購読中")
        UNSUBSCRIBED = "unsubscribed", pgettext_lazy("subscriber status", "配信停止")
        ERASED = "erased", _("削除済み")

    class Charset(models.TextChoices):
        UTF8 = "utf-8", "UTF-8"
        ISO2022JP = "iso-2022-jp", _("ISO-2022-JP (携帯・旧式のメールソフト向け)")

    class Language(models.TextChoices):
        JA = "ja", "日本語"
        EN = "en", "English"

    # Normalised by email-validator; null once the reader's data is erased.
    email = models.CharField(  # noqa: DJ001 (null, not "", so that erased rows stay unique)
        _("メールアドレス"), max_length=254, unique=True, null=True
    )
    name = models.CharField(_("お名前"), max_length=100, blank=True)
    organisation = models.CharField(_("所属"), max_length=200, blank=True)
    language = models.CharField(
        _("言語"), max_length=5, choices=Language.choices, default=Language.JA
    )
    charset = models.CharField(
        _("文字コード"), max_length=16, choices=Charset.choices, default=Charset.UTF8
    )
    status = models.CharField(
        _("状態"), max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    # Part of every signed link; rotating it revokes all links sent so far.
    nonce = models.CharField(max_length=16, default=new_nonce)
    created_at = models.DateTimeField(_("登録日時"), default=timezone.now, db_index=True)
    confirmed_at = models.DateTimeField(_("確認日時"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("配信停止日時"), null=True, blank=True)
    erased_at = models.DateTimeField(_("削除日時"), null=True, blank=True)
    # At most one confirmation mail per address per day.
    confirmation_sent_at = models.DateTimeField(null=True, blank=True)
    # The address the reader asked to move to, until its owner confirms it: only the link for
    # the latest request works (a corrected typo leaves the first link useless).
    pending_email = models.CharField(
        _("確認待ちの新しいアドレス"), max_length=254, blank=True, default="", db_default=""
    )
    # The key of Suppression, kept beside the address so that the audience of a mailing can be
    # selected in one query (no per-reader hashing in Python). Empty once the reader is erased.
    address_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    topics = models.ManyToManyField(Topic, through="Subscription", related_name="subscribers")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("購読者")
        verbose_name_plural = pgettext_lazy("plural", "購読者")
        permissions = [
            ("import_subscriber", _("読者をCSVから取り込む")),
            ("export_subscriber", _("読者をCSVに書き出す")),
        ]

    def __str__(self) -> str:
        return self.email or f"#{self.pk} ({self.get_status_display()})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.address_hash = address_hash(self.email) if self.email else ""
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "email" in update_fields:
            kwargs["update_fields"] = {*update_fields, "address_hash"}
        super().save(*args, **kwargs)

    @property
    def domain(self) -> str:
        return self.email.rsplit("@", 1)[-1] if self.email else ""


class Subscription(models.Model):
    """Whether one reader receives one topic; kept (switched off) when they opt out."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE)
    topic = models.ForeignKey(Topic, on_delete=models.PROTECT)
    subscribed = models.BooleanField(_("受信する"), default=True)
    changed_at = models.DateTimeField(_("変更日時"), default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "topic"], name="one_subscription_per_topic"
            )
        ]
        indexes = [models.Index(fields=["topic", "subscribed"])]
        verbose_name = _("購読")
        verbose_name_plural = pgettext_lazy("plural", "購読")

    def __str__(self) -> str:
        return f"{self.subscriber} × {self.topic.key}: {'on' if self.subscribed else 'off'}"


class ConsentRecord(models.Model):
    """Append-only proof of consent and its withdrawal (特定電子メール法 §3).

    Kept for good, erasure included: it holds the address as it was when the reader acted.
    """

    class Action(models.TextChoices):
        SUBSCRIBE = "subscribe", _("登録申込")
        CONFIRM = "confirm", _("登録確認")
        CHANGE = "change", _("配信設定変更")
        UNSUBSCRIBE = "unsubscribe", _("配信停止")
        ERASE = "erase", _("データ削除")

    class Source(models.TextChoices):
        FORM = "form", _("登録フォーム")
        IMPORT = "import", _("インポート")
        ADMIN = "admin", _("管理画面")
        API = "api", "API"
        EMAIL_LINK = "email_link", _("メール内リンク")
        MAIL = "mail", _("配信停止メール (mailto)")
        EMPTY_MAIL = "empty_mail", _("空メール登録")
        COMPLAINT = "complaint", _("迷惑メール報告")
        DEMO = "demo", _("デモデータ")

    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.PROTECT, related_name="consent_records"
    )
    email = models.CharField(_("メールアドレス"), max_length=254)
    action = models.CharField(_("操作"), max_length=16, choices=Action.choices)
    source = models.CharField(_("経路"), max_length=16, choices=Source.choices)
    topics = models.JSONField(pgettext_lazy("plural", "配信種別"), default=list)
    ip_address = models.GenericIPAddressField(_("IPアドレス"), null=True, blank=True)
    user_agent = models.CharField(_("ユーザーエージェント"), max_length=300, blank=True)
    wording = models.TextField(_("表示した文言"), blank=True)
    wording_version = models.CharField(_("文言の版"), max_length=40, blank=True)
    # The mailing whose unsubscribe link or header this came from (an id: mailings come later).
    mailing_id = models.PositiveIntegerField(_("配信 (ID)"), null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(_("日時"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("同意記録")
        verbose_name_plural = pgettext_lazy("plural", "同意記録")

    def __str__(self) -> str:
        return f"{minute(self.created_at)} {self.email} {self.get_action_display()}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("Consent records are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Consent records are append-only.")


class Suppression(models.Model):
    """An address that bulk mail must never reach; keyed by hash so it survives erasure."""

    class Reason(models.TextChoices):
        ERASED = "erased", _("データ削除")
        HARD_BOUNCE = "hard_bounce", _("不達 (恒久的エラー)")
        SOFT_BOUNCE = "soft_bounce", _("不達 (一時的エラーの繰り返し)")
        COMPLAINT = "complaint", _("迷惑メール報告")
        ADMIN = "admin", _("管理者による停止")

    address_hash = models.CharField(max_length=64, unique=True)
    reason = models.CharField(_("理由"), max_length=16, choices=Reason.choices)
    note = models.CharField(_("メモ"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("停止日時"), default=timezone.now)

    class Meta:
        verbose_name = _("配信禁止アドレス")
        verbose_name_plural = pgettext_lazy("plural", "配信禁止アドレス")
        # Lifting is the only way a suppression goes: with a reason, on the audit trail.
        permissions = [("lift_suppression", _("配信停止を取り消す (理由を記録)"))]

    def __str__(self) -> str:
        return f"{self.address_hash[:12]}… ({self.get_reason_display()})"


class RateCounter(models.Model):
    """Hits on one rate-limit key in one fixed window (subscribers.throttle); old windows are
    deleted every hour."""

    key = models.CharField(max_length=200)
    window_start = models.BigIntegerField()  # unix seconds at which the window began
    hits = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "window_start"], name="one_counter_per_window")
        ]

    def __str__(self) -> str:
        return f"{self.key} @ {self.window_start}: {self.hits}"


class UnsubscribeReason(models.Model):
    """The answer to the optional question after unsubscribing. It names no reader: only the
    topic left (none: all of them), the reason chosen and the day. Not the time, nor the
    mailing: with the consent record of the unsubscribe beside it, either would tell whose
    answer it is."""

    class Reason(models.TextChoices):
        TOO_MANY = "too_many", _("配信の回数が多い")
        NOT_RELEVANT = "not_relevant", _("内容が関心に合わない")
        TOO_LONG = "too_long", _("長くて読みきれない")
        NEVER_ASKED = "never_asked", _("登録した覚えがない")
        OTHER_ADDRESS = "other_address", _("別のアドレスで受け取る")
        OTHER = "other", _("その他")

    # One answer per unsubscribe link: answering again changes it (a hash, not the link).
    key = models.CharField(max_length=64, unique=True)
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.CharField(_("理由"), max_length=16, choices=Reason.choices)
    answered_on = models.DateField(_("回答日"), default=timezone.localdate, db_index=True)

    class Meta:
        verbose_name = _("配信停止の理由")
        verbose_name_plural = pgettext_lazy("plural", "配信停止の理由")

    def __str__(self) -> str:
        return str(self.Reason(self.reason).label)
