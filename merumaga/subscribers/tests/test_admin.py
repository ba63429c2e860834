import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from merumaga.subscribers.models import ConsentRecord, Subscriber, Topic
from merumaga.testing import make_subscriber

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:subscribers_subscriber_changelist")


def test_list_searches_and_filters_by_topic(admin_client):
    make_subscriber("weekly-only@example.jp", topics=["weekly"], name="週報 だけ")
    make_subscriber("events-only@example.jp", topics=["events"])
    page = admin_client.get(CHANGELIST, {"topic": "weekly"}).content.decode()
    assert "weekly-only@example.jp" in page and "events-only@example.jp" not in page
    page = admin_client.get(CHANGELIST, {"q": "だけ"}).content.decode()
    assert "weekly-only@example.jp" in page and "events-only@example.jp" not in page
    page = admin_client.get(CHANGELIST, {"status__exact": "pending"}).content.decode()
    assert "weekly-only@example.jp" not in page


def test_detail_shows_consent_history(admin_client):
    reader = make_subscriber()
    page = admin_client.get(
        reverse("admin:subscribers_subscriber_change", args=[reader.pk])
    ).content.decode()
    assert "同意記録" in page and "登録申込" in page


def test_subscribers_cannot_be_deleted_or_added_by_hand(admin_client):
    reader = make_subscriber()
    delete = reverse("admin:subscribers_subscriber_delete", args=[reader.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Subscriber.objects.filter(pk=reader.pk).exists()
    assert admin_client.get(reverse("admin:subscribers_subscriber_add")).status_code == 403


def test_import_in_the_admin_reports_row_errors(admin_client):
    data = "メールアドレス,氏名\nok@example.jp,正しい 行\nbroken,壊れた 行\n".encode("cp932")
    response = admin_client.post(
        reverse("admin:subscribers_subscriber_import"),
        {"file": SimpleUploadedFile("list.csv", data), "source": "名刺交換会"},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "cp932" in page and "形式が正しくありません" in page
    assert Subscriber.objects.filter(email="ok@example.jp").exists()
    record = ConsentRecord.objects.get(email="ok@example.jp")
    assert record.wording == "名刺交換会" and record.user_agent == "admin:admin"


def test_import_in_the_admin_refuses_a_file_without_email_column(admin_client):
    response = admin_client.post(
        reverse("admin:subscribers_subscriber_import"),
        {"file": SimpleUploadedFile("list.csv", b"name\nx\n"), "source": "x"},
    )
    assert "email" in response.content.decode()
    assert not Subscriber.objects.exists()


def test_export_action_writes_a_safe_csv(admin_client):
    reader = make_subscriber("csv@example.jp", name="@SUM(1+1)", topics=["weekly", "events"])
    response = admin_client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [reader.pk]}
    )
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeffemail,name,")
    assert "csv@example.jp,'@SUM(1+1)" in text and "events;weekly" in text
    # Times in Japan time, as on every screen.
    created = timezone.localtime(reader.created_at).isoformat()
    assert created.endswith("+09:00") and created in text


def test_consent_records_are_read_only_in_the_admin(admin_client):
    reader = make_subscriber()
    record = reader.consent_records.get()
    url = reverse("admin:subscribers_consentrecord_change", args=[record.pk])
    admin_client.post(url, {"email": "changed@example.jp"})
    record.refresh_from_db()
    assert record.email == reader.email
    delete = reverse("admin:subscribers_consentrecord_delete", args=[record.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403


def test_a_topics_key_is_set_once(admin_client):
    """Consent records, reader links and the charts name a topic by its key."""
    topic = Topic.objects.get(key="weekly")
    url = reverse("admin:subscribers_topic_change", args=[topic.pk])
    assert 'name="key"' not in admin_client.get(url).content.decode()
    assert 'name="key"' in admin_client.get(reverse("admin:subscribers_topic_add")).content.decode()
