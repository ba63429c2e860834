"""The two-person rule (MERUMAGA_APPROVAL_ABOVE): a mailing to more readers than the limit is
approved by a second account before it starts or is scheduled; an edit afterwards voids it."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from merumaga.mailings import services
from merumaga.mailings.models import Mailing
from merumaga.testing import mailing_of, make_subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_readers(settings):
    settings.MAILING_APPROVAL_ABOVE = 1
    make_subscriber("one@example.jp")
    make_subscriber("two@example.jp")


@pytest.fixture
def people():
    return (
        User.objects.create_user("sender", is_staff=True),
        User.objects.create_user("approver", is_staff=True),
    )


def test_a_second_account_approves_before_the_first_starts(two_readers, people):
    sender, approver = people
    weekly = mailing_of("weekly")
    with pytest.raises(services.MailingError, match="別のアカウントの承認が必要"):
        services.start(weekly, by=sender)

    services.approve(weekly, by=approver)
    weekly.refresh_from_db()
    with pytest.raises(services.MailingError, match="承認した本人"):
        services.start(weekly, by=approver)  # the approver alone is still one person
    started = services.start(weekly, by=sender)
    assert started.status == Mailing.Status.SENDING and started.approved_by == approver


def test_an_edit_after_approval_voids_it(two_readers, people):
    sender, approver = people
    custom = mailing_of("custom")
    services.approve(custom, by=approver)
    custom.refresh_from_db()
    custom.subject = "承認後に変えた件名"
    custom.save()
    with pytest.raises(services.MailingError, match="別のアカウントの承認が必要"):
        services.start(custom, by=sender)


def test_up_to_the_limit_no_approval_is_needed(settings, people):
    settings.MAILING_APPROVAL_ABOVE = 2
    make_subscriber("one@example.jp")
    make_subscriber("two@example.jp")
    assert services.start(mailing_of("weekly"), by=people[0]).status == Mailing.Status.SENDING


def test_a_scheduled_mailing_edited_after_approval_goes_back_to_draft_with_why(
    two_readers, people, time_machine
):
    sender, approver = people
    time_machine.move_to(timezone.now(), tick=False)
    custom = mailing_of("custom")
    services.approve(custom, by=approver)
    custom.refresh_from_db()
    services.schedule(custom, timezone.now() + timedelta(hours=1), by=sender)
    Mailing.objects.filter(pk=custom.pk).update(subject="予約後に変えた件名")

    time_machine.move_to(timezone.now() + timedelta(hours=2), tick=False)
    assert services.start_due() == 0
    custom.refresh_from_db()
    assert custom.status == Mailing.Status.DRAFT
    assert "承認" in custom.status_changes.last().note


def test_the_mailing_page_asks_for_approval_and_takes_it(two_readers, admin_client, admin_user):
    custom = mailing_of("custom")
    page = admin_client.get(reverse("admin:mailings_mailing_change", args=[custom.pk]))
    assert "別のアカウントの承認が必要です" in page.content.decode()
    admin_client.post(reverse("admin:mailings_mailing_approve", args=[custom.pk]))
    custom.refresh_from_db()
    assert custom.approved_by == admin_user
    page = admin_client.get(reverse("admin:mailings_mailing_change", args=[custom.pk]))
    assert "承認済み" in page.content.decode()
    # The approver's own start is refused, in words.
    response = admin_client.post(
        reverse("admin:mailings_mailing_start", args=[custom.pk]), follow=True
    )
    assert "承認した本人" in response.content.decode()
