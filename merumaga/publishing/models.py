from typing import Self

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from merumaga.subscribers.models import Subscriber
from merumaga.uploads import validate_image, validate_pdf


class Status(models.TextChoices):
    DRAFT = "draft", _("下書き")
    SCHEDULED = "scheduled", _("予約公開")
    PUBLISHED = "published", _("公開中")


class PublishedQuerySet(models.QuerySet):
    def published(self) -> Self:
        return self.filter(status=Status.PUBLISHED, published_at__lte=timezone.now())


class Tag(models.Model):
    name = models.CharField(_("名前"), max_length=60, unique=True)
    slug = models.SlugField(_("スラッグ"), max_length=80, unique=True, allow_unicode=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("タグ")
        verbose_name_plural = pgettext_lazy("plural", "タグ")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("tag", args=[self.slug])


class ReaderInterest(models.Model):
    """A research field (tag) a reader chose in the preference centre: the weekly report puts
    the articles with their tags first."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="+")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "tag"], name="one_interest_per_tag")
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id}: {self.tag}"


class Article(models.Model):
    """A digest of one source article, written by the institute, with the source named."""

    title = models.CharField(_("タイトル"), max_length=200)
    slug = models.SlugField(
        _("スラッグ"),
        max_length=120,
        unique=True,
        allow_unicode=True,
        blank=True,
        help_text=_("URLの一部。空欄ならタイトルから作ります。"),
    )
    digest = models.TextField(
        _("要約"),
        blank=True,
        help_text=_("週報に載る数文の要約。公開には必須です。"),
    )
    # Whether the digest began as a draft the platform made (the editor chose to use it, and
    # may have edited it since), and which: for the institute to see how digests are written.
    digest_origin = models.CharField(
        _("要約の出どころ"),
        max_length=10,
        blank=True,
        default="",
        db_default="",
        choices=[
            ("", _("編集者が執筆")),
            ("offline", _("下書きから (オフライン)")),
            ("llm", _("下書きから (LLM)")),
        ],
    )
    body = models.TextField(_("本文 (Markdown)"), blank=True)
    body_html = models.TextField(editable=False, blank=True)
    source_name = models.CharField(_("出典 (媒体名)"), max_length=200, blank=True)
    source_detail = models.CharField(
        _("出典 (号・日付)"),
        max_length=200,
        blank=True,
        help_text=_("例: 2026年11月号、11月3日〜9日"),
    )
    source_url = models.URLField(_("出典URL"), blank=True)
    tags = models.ManyToManyField(Tag, verbose_name=_("タグ"), blank=True, related_name="articles")
    author = models.CharField(_("執筆者"), max_length=100, blank=True)
    cover_image = models.FileField(
        _("カバー画像"), upload_to="covers/%Y/%m/", blank=True, validators=[validate_image]
    )
    status = models.CharField(
        _("状態"), max_length=12, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    published_at = models.DateTimeField(_("公開日時"), null=True, blank=True, db_index=True)
    notify_subscribers = models.BooleanField(
        _("公開時に購読者へ通知する"),
        default=False,
        help_text=_("「記事配信」を選んだ読者に、この記事をメールでお知らせします。"),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PublishedQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-id"]
        verbose_name = _("記事")
        verbose_name_plural = pgettext_lazy("plural", "記事")

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("article", args=[self.slug])


class Report(models.Model):
    """A compact research report: a summary on the site, the PDF to download."""

    title = models.CharField(_("タイトル"), max_length=200)
    slug = models.SlugField(
        _("スラッグ"), max_length=120, unique=True, allow_unicode=True, blank=True
    )
    summary = models.TextField(_("概要"))
    pdf = models.FileField(
        _("PDF (コンパクト版)"), upload_to="reports/%Y/%m/", validators=[validate_pdf]
    )
    full_version_url = models.URLField(_("完全版のURL"), blank=True)
    notify_subscribers = models.BooleanField(
        _("公開時に購読者へ通知する"),
        default=False,
        help_text=_("「研究レポート」を選んだ読者に、このレポートをメールでお知らせします。"),
    )
    status = models.CharField(
        _("状態"), max_length=12, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    published_at = models.DateTimeField(_("公開日時"), null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PublishedQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-id"]
        verbose_name = _("研究レポート")
        verbose_name_plural = pgettext_lazy("plural", "研究レポート")

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("report", args=[self.slug])


class Event(models.Model):
    class EventStatus(models.TextChoices):
        DRAFT = "draft", _("下書き")
        SCHEDULED = "scheduled", _("予約公開")
        PUBLISHED = "published", _("公開中")
        CANCELLED = "cancelled", _("中止")

    title = models.CharField(_("タイトル"), max_length=200)
    slug = models.SlugField(
        _("スラッグ"), max_length=120, unique=True, allow_unicode=True, blank=True
    )
    description = models.TextField(_("説明 (Markdown)"), blank=True)
    description_html = models.TextField(editable=False, blank=True)
    starts_at = models.DateTimeField(_("開始日時"))
    ends_at = models.DateTimeField(_("終了日時"))
    venue = models.CharField(_("会場"), max_length=300, blank=True)
    online_url = models.URLField(_("オンライン参加URL"), blank=True)
    capacity = models.PositiveIntegerField(
        _("定員"), null=True, blank=True, help_text=_("空欄なら定員なし")
    )
    registration_deadline = models.DateTimeField(_("申込締切"), null=True, blank=True)
    reminder_days = models.PositiveSmallIntegerField(
        _("リマインダー (開催の何日前)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(60)],
        help_text=_(
            "参加者にリマインダーを送る日 (開催の何日前か。0なら当日)。空欄なら送りません。"
        ),
    )
    notify_subscribers = models.BooleanField(
        _("公開時に購読者へ通知する"),
        default=False,
        help_text=_("「イベント」を選んだ読者に、招待状 (出欠の回答リンクつき) をお送りします。"),
    )
    status = models.CharField(
        _("状態"),
        max_length=12,
        choices=EventStatus.choices,
        default=EventStatus.DRAFT,
        db_index=True,
    )
    published_at = models.DateTimeField(
        _("公開日時"),
        null=True,
        blank=True,
        help_text=_("未来の日時にすると、その日時に予約公開します。空欄なら今すぐ公開します。"),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at", "id"]
        verbose_name = _("イベント")
        verbose_name_plural = pgettext_lazy("plural", "イベント")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gte=models.F("starts_at")),
                name="event_ends_after_it_starts",
                violation_error_message=_("終了日時は開始日時より後にしてください。"),
            )
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("event", args=[self.slug])

    def clean(self):
        """The editor's mistakes in the editor's words, each under its own field."""
        errors = {}
        if self.starts_at and self.ends_at and self.ends_at < self.starts_at:
            errors["ends_at"] = _("終了日時は開始日時より後にしてください。")
        deadline = self.registration_deadline
        if deadline and self.starts_at and deadline > self.starts_at:
            errors["registration_deadline"] = _("申込締切は開始日時より前にしてください。")
        if errors:
            raise ValidationError(errors)

    @property
    def registration_open(self) -> bool:
        now = timezone.now()
        deadline = self.registration_deadline or self.starts_at
        return self.status == self.EventStatus.PUBLISHED and now <= deadline


class Rsvp(models.Model):
    """One person's answer to one event; beyond capacity they wait in order of answering."""

    class Answer(models.TextChoices):
        ATTENDING = "attending", _("参加")
        WAITLISTED = "waitlisted", _("キャンセル待ち")
        DECLINED = "declined", _("不参加")

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="rsvps")
    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.SET_NULL, null=True, blank=True, related_name="rsvps"
    )
    email = models.CharField(_("メールアドレス"), max_length=254)
    name = models.CharField(_("お名前"), max_length=100, blank=True)
    organisation = models.CharField(_("所属"), max_length=200, blank=True)
    answer = models.CharField(_("回答"), max_length=12, choices=Answer.choices)
    # When the seat was asked for: the waitlist is served in this order.
    requested_at = models.DateTimeField(_("申込日時"), default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["requested_at", "id"]
        verbose_name = _("出欠回答")
        verbose_name_plural = pgettext_lazy("plural", "出欠回答")
        constraints = [
            models.UniqueConstraint(fields=["event", "email"], name="one_rsvp_per_address")
        ]
        indexes = [models.Index(fields=["event", "answer", "requested_at"])]

    def __str__(self) -> str:
        return f"{self.event} — {self.email}: {self.get_answer_display()}"


class ArchivedMailing(models.Model):
    """The web copy of a mailing as sent, without any reader's personal data.

    Written by the mailings app when a mailing goes out; shown on the public archive.
    """

    title = models.CharField(_("件名"), max_length=300)
    slug = models.SlugField(max_length=120, unique=True, allow_unicode=True)
    topic_name = models.CharField(_("配信種別"), max_length=100)
    html = models.TextField()
    sent_at = models.DateTimeField(_("送信日時"), db_index=True)

    class Meta:
        ordering = ["-sent_at", "-id"]
        verbose_name = _("配信アーカイブ")
        verbose_name_plural = pgettext_lazy("plural", "配信アーカイブ")

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("archive_detail", args=[self.slug])


class DraftRequest(models.Model):
    """A draft asked of the language model, made in the background (publishing.drafting) while
    the editor's page polls for it. Kept a day, then forgotten: the text is a snapshot of what
    the editor was typing, not content."""

    class State(models.TextChoices):
        QUEUED = "queued", _("順番待ち")
        ASKING = "asking", _("LLMが作成中")
        RETRYING = "retrying", _("記事にない語句があったため、書き直しを依頼中")
        DONE = "done", _("完了")

    class What(models.TextChoices):
        DIGEST = "digest", _("要約")
        PREFACE = "preface", _("前書き")

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    what = models.CharField(max_length=10, choices=What.choices, default=What.DIGEST)
    title = models.TextField(blank=True)
    text = models.TextField()
    budget = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    # The draft when done: {"digest", "backend", "notice", "sentences": [{"text", "start",
    # "end", "unsupported": [[start, end], …]}]}.
    result = models.JSONField(null=True)

    def __str__(self) -> str:
        return f"{self.get_what_display()} {self.requested_at:%Y-%m-%d %H:%M}"
