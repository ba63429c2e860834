import datetime
from dataclasses import dataclass

from django.conf import settings

from merumaga.institute.models import SiteSettings


@dataclass(frozen=True)
class SenderIdentity:
    organisation_name: str
    postal_address: str
    contact_email: str
    contact_url: str
    contact_phone: str
    from_email: str

    @property
    def from_header(self) -> str:
        """`Name <address>` for the From header; the name is encoded by the mail library."""
        from email.utils import formataddr

        return formataddr((self.organisation_name, self.from_email))


def sender_identity() -> SenderIdentity:
    """The sender as configured: admin site settings first, environment defaults for blanks."""
    row = SiteSettings.objects.first()

    def pick(field: str, default: str) -> str:
        value = getattr(row, field, "") if row else ""
        return value or default

    return SenderIdentity(
        organisation_name=pick("organisation_name", settings.ORGANISATION_NAME),
        postal_address=pick("postal_address", settings.POSTAL_ADDRESS),
        contact_email=pick("contact_email", settings.CONTACT_EMAIL),
        contact_url=pick("contact_url", settings.CONTACT_URL),
        contact_phone=pick("contact_phone", settings.CONTACT_PHONE),
        from_email=pick("from_email", settings.DEFAULT_FROM_EMAIL),
    )


def site_logo() -> tuple[str, str]:
    """The logo's path on the site ("" if none) and its alt text (the sender's name if blank)."""
    row = SiteSettings.objects.first()
    if row is None or not row.logo:
        return "", ""
    return row.logo.url, row.logo_alt or sender_identity().organisation_name


@dataclass(frozen=True)
class WeeklySchedule:
    weekday: int  # 0 = Monday
    time: "datetime.time"
    needs_approval: bool


def weekly_schedule() -> WeeklySchedule:
    row = SiteSettings.objects.first() or SiteSettings()
    return WeeklySchedule(row.weekly_weekday, row.weekly_time, row.weekly_needs_approval)


def records_clicks_per_reader() -> bool:
    """Whether the site keeps who clicked (a site setting, off by default), not only how often."""
    return bool(
        SiteSettings.objects.filter(clicks_per_reader=True).values_list("pk", flat=True).first()
    )
