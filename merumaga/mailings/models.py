from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from merumaga.publishing.models import Article, Event, Report
from merumaga.shown import minute
from merumaga.subscribers.models import Subscriber, Topic


class Mailing(models.Model):
    class Kind(models.TextChoices):
        WEEKLY = "weekly", _("週報")
        ARTICLE = "article", _("記事配信")
        REPORT = "report", _("研究レポート")
        EVENT_INVITATION = "event_invitation", _("イベント招待状")
        EVENT_REMINDER = "event_reminder", _("イベントのリマインダー")
        CUSTOM = "custom", _("お知らせ")

    class Status(models.TextChoices):
        DRAFT = "draft", _("下書き")
        SCHEDULED = "scheduled", _("配信予約")
        SENDING = "sending", _("配信中")
        PAUSED = "paused", _("一時停止")
        SENT = "sent", _("配信済み")
        CANCELLED = "cancelled", _("中止")

    class Grouping(models.TextChoices):
        ORDER = "order", _("編集者の並び順")
        TAG = "tag", _("タグ別")

    kind = models.CharField(_("種類"), max_length=20, choices=Kind.choices)
    topic = models.ForeignKey(Topic, verbose_name=_("配信先"), on_delete=models.PROTECT)
    subject = models.CharField(_("件名"), max_length=200)
    preheader = models.CharField(
        _("プレヘッダー"),
        max_length=200,
        blank=True,
        help_text=_("受信一覧で件名の後に表示される短い文。"),
    )
    intro = models.TextField(
        _("本文 (前書き、Markdown)"),
        blank=True,
        help_text=_("記事や案内の前に置く編集部からの文章。お知らせではこれが本文です。"),
    )
    status = models.CharField(
        _("状態"), max_length=12, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    scheduled_at = models.DateTimeField(_("配信予定日時"), null=True, blank=True)
    started_at = models.DateTimeField(_("配信開始"), null=True, blank=True)
    finished_at = models.DateTimeField(_("配信完了"), null=True, blank=True)
    article = models.ForeignKey(
        Article, verbose_name=_("記事"), null=True, blank=True, on_delete=models.SET_NULL
    )
    report = models.ForeignKey(
        Report, verbose_name=_("研究レポート"), null=True, blank=True, on_delete=models.SET_NULL
    )
    event = models.ForeignKey(
        Event, verbose_name=_("イベント"), null=True, blank=True, on_delete=models.SET_NULL
    )
    attach_pdf = models.BooleanField(
        _("PDFを添付する"), default=False, help_text=_("上限を超えるPDFはリンクのみになります。")
    )
    # 第N号: the weekly report's number, counted per topic, given when it is composed (a report
    # given up before it went out leaves its number to the next).
    issue_number = models.PositiveIntegerField(_("号数"), null=True, blank=True, editable=False)

    grouping = models.CharField(
        _("記事の並べ方"),
        max_length=10,
        choices=Grouping.choices,
        default=Grouping.ORDER,
        db_default=Grouping.ORDER,
        help_text=_("タグ別では、記事を最初のタグごとにまとめ、見出しを付けます。"),
    )
    show_related = models.BooleanField(
        _("各記事の下に関連記事を載せる"), default=False, db_default=False
    )
    # The weekly report's window: what it gathered was published up to this moment.
    covers_until = models.DateTimeField(null=True, blank=True)
    articles = models.ManyToManyField(
        Article, through="MailingArticle", related_name="weekly_mailings", blank=True
    )
    # An editor wrote the subject or preheader: an announcement draft then keeps them, rather
    # than following its item's title and date.
    wording_edited = models.BooleanField(default=False, editable=False)
    # Set by the delivery worker that snapshots the audience, in the same transaction.
    audience_frozen_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The two-person rule (MERUMAGA_APPROVAL_ABOVE): who approved, when, and what they saw (a
    # fingerprint of the content: an edit after approval voids it).
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("承認者"),
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    approved_at = models.DateTimeField(_("承認日時"), null=True, blank=True, editable=False)
    approved_content = models.CharField(max_length=64, blank=True, editable=False)
    recipients = models.PositiveIntegerField(_("配信数"), default=0)
    sent = models.PositiveIntegerField(_("送信済み"), default=0)
    failed = models.PositiveIntegerField(_("失敗"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("配信")
        verbose_name_plural = pgettext_lazy("plural", "配信")
        permissions = [
            ("send_mailing", _("配信を開始・予約・一時停止・再開・中止する")),
            ("test_send_mailing", _("テスト送信する")),
            ("approve_mailing", _("配信を承認する (二人承認)")),
        ]
        constraints = [
            # Two weekly reports waiting at once would split the week's articles between them.
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(kind="weekly", status__in=["draft", "scheduled"]),
                name="one_unsent_weekly",
            )
        ]

    def __str__(self) -> str:
        return self.subject


class MailingArticle(models.Model):
    """What each weekly report contained: the record that keeps an article from going twice."""

    mailing = models.ForeignKey(Mailing, on_delete=models.CASCADE)
    article = models.ForeignKey(Article, on_delete=models.CASCADE)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["mailing", "article"], name="article_once_per_mailing")
        ]

    def __str__(self) -> str:
        return f"{self.mailing_id}: {self.article_id}"


def _label(status: str) -> str:
    return str(Mailing.Status(status).label) if status in Mailing.Status.values else status


class StatusChange(models.Model):
    """Who moved a mailing from one state to another, and when (audit trail)."""

    mailing = models.ForeignKey(Mailing, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    note = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("状態の変更")
        verbose_name_plural = pgettext_lazy("plural", "状態の変更")

    def __str__(self) -> str:
        return f"{minute(self.at)} {_label(self.from_status)} → {_label(self.to_status)}"


class WeeklyRun(models.Model):
    """Each attempt to compose the weekly report, including those that found nothing new."""

    ran_at = models.DateTimeField(default=timezone.now)
    mailing = models.ForeignKey(Mailing, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.CharField(max_length=300)

    class Meta:
        ordering = ["-ran_at", "-id"]
        verbose_name = _("週報の作成記録")
        verbose_name_plural = pgettext_lazy("plural", "週報の作成記録")

    def __str__(self) -> str:
        return f"{minute(self.ran_at)} {self.note}"


class Link(models.Model):
    """A link of a mailing as sent: readers reach its target through /c/… on our own site, which
    counts the click. The target is only ever read from here, never from the clicked URL."""

    mailing = models.ForeignKey(Mailing, on_delete=models.CASCADE, related_name="links")
    url = models.URLField(_("リンク先"), max_length=2000)
    position = models.PositiveSmallIntegerField(_("順番"))  # first appearance in the mail
    article = models.ForeignKey(
        Article, null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("記事")
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailing", "url"], name="one_link_per_target")
        ]
        ordering = ["mailing", "position"]
        verbose_name = _("リンク")
        verbose_name_plural = pgettext_lazy("plural", "リンク")

    def __str__(self) -> str:
        return self.url


class Click(models.Model):
    """One click on a link. Who clicked is kept only when the site setting asks for it."""

    link = models.ForeignKey(Link, on_delete=models.CASCADE, related_name="clicks")
    at = models.DateTimeField(db_index=True)
    subscriber = models.ForeignKey(Subscriber, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        verbose_name = _("クリック")
        verbose_name_plural = pgettext_lazy("plural", "クリック")

    def __str__(self) -> str:
        return f"{minute(self.at)} {self.link_id}"
