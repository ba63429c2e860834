from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from merumaga.mailings.models import Mailing


class MailingReport(Mailing):
    """A mailing seen for what it achieved (the admin's 結果 section); no table of its own."""

    class Meta:
        proxy = True
        verbose_name = _("配信結果")
        verbose_name_plural = pgettext_lazy("plural", "配信結果")
