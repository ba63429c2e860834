import datetime

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from merumaga.uploads import validate_image

WEEKDAYS = [
    (0, _("月曜日")),
    (1, _("火曜日")),
    (2, _("水曜日")),
    (3, _("木曜日")),
    (4, _("金曜日")),
    (5, _("土曜日")),
    (6, _("日曜日")),
]


class SiteSettings(models.Model):
    """The one row of editable site settings; a blank field falls back to the environment default.

    特定電子メール法 requires every mail to name the sender, a postal address and a contact.
    """

    organisation_name = models.CharField(_("送信者名 (組織名)"), max_length=200, blank=True)
    postal_address = models.CharField(_("住所"), max_length=300, blank=True)
    contact_email = models.EmailField(_("連絡先メールアドレス"), blank=True)
    contact_url = models.URLField(_("連絡先URL"), blank=True)
    contact_phone = models.CharField(_("電話番号"), max_length=40, blank=True)
    from_email = models.EmailField(_("差出人アドレス (From)"), blank=True)
    weekly_weekday = models.PositiveSmallIntegerField(
        _("週報の配信曜日"), choices=WEEKDAYS, default=0
    )
    weekly_time = models.TimeField(_("週報の作成時刻 (日本時間)"), default=datetime.time(8, 0))
    weekly_needs_approval = models.BooleanField(
        _("週報は編集者の承認後に配信する"),
        default=True,
        help_text=_("外すと、作成された週報はそのまま配信されます。"),
    )
    clicks_per_reader = models.BooleanField(
        _("クリックを読者ごとに記録する"),
        default=False,
        help_text=_(
            "オフ (既定) では、配信ごと・リンクごとのクリック数だけを記録し、誰がクリックしたかは"
            "記録しません。オンにすると、読者ごとのクリックを記録します (読者の詳細画面とデータの"
            "ダウンロードに表示され、読者データの消去で削除されます)。"
        ),
    )
    # The weekly report's masthead: sent as an image hosted on the site (SITE_URL/media/site/…),
    # never attached, with its alt text for readers who do not load images.
    logo = models.FileField(
        _("ロゴ画像"),
        upload_to="site/",
        blank=True,
        validators=[validate_image],
        help_text=_("週報の冒頭に表示します (PNG・JPEG・GIF・WebP、横600px以内を推奨)。"),
    )
    logo_alt = models.CharField(
        _("ロゴの代替テキスト"),
        max_length=200,
        blank=True,
        help_text=_("画像を表示しない読者に見える文字。空欄なら送信者名を使います。"),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("サイト設定")
        verbose_name_plural = pgettext_lazy("plural", "サイト設定")

    def __str__(self) -> str:
        return str(_("サイト設定"))
