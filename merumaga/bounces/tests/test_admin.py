"""The admin: kept messages, events, lifting a suppression with a reason, the rates page."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from merumaga import reasons
from merumaga.bounces import rates, services
from merumaga.bounces.models import BounceEvent, InboundMessage, SuppressionChange
from merumaga.delivery.catcher import unknown_user_dsn
from merumaga.delivery.models import Delivery
from merumaga.mailings.models import Mailing
from merumaga.subscribers.models import Suppression, Topic
from merumaga.subscribers.tokens import address_token
from merumaga.testing import make_subscriber

pytestmark = pytest.mark.django_db


def bounce(reader, mailing_id=0) -> InboundMessage:
    verp = f"bounce+{address_token('bounce', mailing_id, reader.pk)}@example.jp"
    return services.receive(unknown_user_dsn(verp, [reader.email], b""), "smtp", envelope_to=[verp])


def test_a_kept_message_shows_how_it_was_read_and_its_text(admin_client):
    message = bounce(make_subscriber("gone@example.jp"))
    page = admin_client.get(reverse("admin:bounces_inboundmessage_change", args=[message.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "dsn" in text and "5.1.1" in text and "Recipient address rejected" in text

    listing = admin_client.get(reverse("admin:bounces_inboundmessage_changelist") + "?kind=hard")
    assert "Undelivered Mail Returned to Sender" in listing.content.decode()


def test_unrecognised_mail_is_listed_for_review_and_can_be_marked(admin_client):
    services.receive(b"From: someone@example.com\r\nSubject: hello\r\n\r\nhi", "pop3")
    url = reverse("admin:bounces_inboundmessage_changelist")
    assert "hello" in admin_client.get(url + "?reviewed=no").content.decode()
    message = InboundMessage.objects.get()
    admin_client.post(url, {"action": "mark_reviewed", ACTION_CHECKBOX_NAME: [message.pk]})
    message.refresh_from_db()
    assert message.reviewed_at is not None
    assert "hello" not in admin_client.get(url + "?reviewed=no").content.decode()


def test_lifting_asks_for_a_reason_then_records_it(admin_client, admin_user):
    reader = make_subscriber("back@example.jp")
    bounce(reader)
    event = BounceEvent.objects.get()
    url = reverse("admin:bounces_bounceevent_changelist")
    chosen = {"action": "lift", ACTION_CHECKBOX_NAME: [event.pk]}

    form = admin_client.post(url, chosen)
    assert form.status_code == 200 and "取り消す理由" in form.content.decode()
    assert Suppression.objects.filter(address_hash=reader.address_hash).exists()

    empty = admin_client.post(url, {**chosen, "reason": ""})
    assert empty.status_code == 200  # asked again, nothing lifted
    assert Suppression.objects.filter(address_hash=reader.address_hash).exists()

    done = admin_client.post(url, {**chosen, "reason": "読者から連絡あり"})
    assert done.status_code == 302
    assert not Suppression.objects.filter(address_hash=reader.address_hash).exists()
    lifted = SuppressionChange.objects.get(action="lifted")
    assert lifted.user == admin_user and lifted.reason == "読者から連絡あり"


def test_the_rates_page_warns_when_complaints_near_the_limit(admin_client):
    topic = Topic.objects.get(key="weekly")
    mailing = Mailing.objects.create(
        kind="weekly",
        topic=topic,
        subject="週報 第1号",
        status="sent",
        # Yesterday, not a fixed date: the per-domain rates look back 30 days from now.
        started_at=timezone.now() - timedelta(days=1),
    )
    readers = [make_subscriber(f"r{n}@example.jp") for n in range(10)]
    Delivery.objects.bulk_create(
        Delivery(mailing=mailing, subscriber=r, status="sent", updated_at=mailing.started_at)
        for r in readers
    )
    url = reverse("admin:bounces_rates")
    calm = admin_client.get(url).content.decode()
    assert "週報 第1号" in calm and "rates-danger" not in calm

    services.record_event(  # a claim anyone could have mailed: not counted
        kind="complaint",
        source="smtp",
        address=readers[1].email,
        subscriber=readers[1],
        mailing=mailing,
        verified=False,
    )
    services.record_event(  # an address that is no reader's: anyone could claim it
        kind="complaint", source="smtp", address="stranger@example.jp", mailing=mailing
    )
    assert "rates-danger" not in admin_client.get(url).content.decode()
    services.record_event(
        kind="complaint",
        source="smtp",
        address=readers[0].email,
        subscriber=readers[0],
        mailing=mailing,
    )
    page = admin_client.get(url).content.decode()
    assert "rates-danger" in page  # 1 in 10 is far above 0.1%
    assert "10.000%" in page and "0.1%" in page
    assert page.count('class="rates-danger"') == 2  # the mailing's row and example.jp's


def test_staff_who_may_only_view_cannot_lift_or_re_read(client):
    from django.contrib.auth.models import Permission, User

    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_bounceevent", "view_inboundmessage"])
    )
    client.force_login(viewer)
    reader = make_subscriber("kept@example.jp")
    bounce(reader)
    event = BounceEvent.objects.get()

    page = client.get(reverse("admin:bounces_bounceevent_changelist"))
    assert page.status_code == 200 and 'value="lift"' not in page.content.decode()
    client.post(
        reverse("admin:bounces_bounceevent_changelist"),
        {"action": "lift", ACTION_CHECKBOX_NAME: [event.pk], "reason": "try"},
    )
    assert Suppression.objects.filter(address_hash=reader.address_hash).exists()
    messages_page = client.get(reverse("admin:bounces_inboundmessage_changelist"))
    assert 'value="read_again"' not in messages_page.content.decode()


def test_the_rates_page_counts_refusals_that_are_ours_per_relay(admin_client):
    listed, clean = "relay1.example.net", "relay2.example.net"
    for n in range(3):  # one relay refused at three domains: its IP is listed
        reader = make_subscriber(f"r{n}@domain{n}.example")
        for _ in range(2):  # refused at each retry: one reader, counted once
            services.record_event(
                kind="sender",
                reason="blocked",
                source="smtp_reply",
                address=reader.email,
                subscriber=reader,
                relay=listed,
            )
    other = make_subscriber("x@example.jp")
    services.record_event(
        kind="sender",
        reason="auth_failure",
        source="smtp_reply",
        address=other.email,
        subscriber=other,
        relay=clean,
    )
    services.record_event(  # a reader's own bounce: not ours, not on this table
        kind="hard",
        reason="user_unknown",
        source="smtp_reply",
        address="gone@example.jp",
        subscriber=make_subscriber("gone@example.jp"),
        relay=clean,
    )

    rows = rates.ours_per_relay()
    assert [(row.relay, row.readers) for row in rows] == [(listed, 3), (clean, 1)]
    assert rows[0].by_reason == [(str(reasons.REASONS["blocked"].label), 3)]
    page = admin_client.get(reverse("admin:bounces_rates")).content.decode()
    assert page.count('class="relay-row"') == 2 and listed in page
