from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


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
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("サイト設定")
        verbose_name_plural = pgettext_lazy("plural", "サイト設定")

    def __str__(self) -> str:
        return str(_("サイト設定"))
