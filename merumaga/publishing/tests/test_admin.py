import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from merumaga.demo import demo_pdf
from merumaga.publishing.models import Article, Report, Status

pytestmark = pytest.mark.django_db


def article_form(**overrides):
    return {
        "title": "管理画面から書いた記事",
        "slug": "",
        "digest": "要約。",
        "body": "本文",
        "source_name": "",
        "source_detail": "",
        "source_url": "",
        "published_at_0": "",
        "published_at_1": "",
        "author": "",
        **overrides,
    }


def test_markdown_preview_is_sanitised_and_staff_only(client, admin_client):
    url = reverse("admin:publishing_article_preview")
    response = admin_client.post(url, {"text": "**太字**<script>alert(1)</script>"})
    assert "<strong>太字</strong>" in response.content.decode()
    assert "<script" not in response.content.decode()
    assert client.post(url, {"text": "x"}).status_code == 302  # to the login page


def test_save_and_publish_from_the_admin(admin_client):
    response = admin_client.post(
        reverse("admin:publishing_article_add"), article_form(_publish="1"), follow=True
    )
    article = Article.objects.get()
    assert article.status == Status.PUBLISHED
    assert article.slug == "管理画面から書いた記事"
    assert "公開しました" in response.content.decode()


def test_publishing_without_digest_keeps_the_draft_and_says_why(admin_client):
    response = admin_client.post(
        reverse("admin:publishing_article_add"), article_form(digest="", _publish="1"), follow=True
    )
    assert Article.objects.get().status == Status.DRAFT
    assert "要約が空です" in response.content.decode()


def test_a_taken_slug_is_refused_with_a_message(admin_client):
    admin_client.post(reverse("admin:publishing_article_add"), article_form(slug="same"))
    response = admin_client.post(reverse("admin:publishing_article_add"), article_form(slug="same"))
    assert Article.objects.count() == 1
    assert "既に存在します" in response.content.decode()


def report_form(pdf, **overrides):
    return {
        "title": "レポート",
        "slug": "",
        "summary": "概要",
        "pdf": pdf,
        "full_version_url": "",
        "published_at_0": "",
        "published_at_1": "",
        **overrides,
    }


def test_a_fake_pdf_is_refused(admin_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    fake = SimpleUploadedFile("report.pdf", b"<html>not a pdf</html>", "application/pdf")
    response = admin_client.post(reverse("admin:publishing_report_add"), report_form(fake))
    assert "PDFファイルではありません" in response.content.decode()
    assert not Report.objects.exists()


def test_an_oversized_pdf_is_refused(admin_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.REPORT_MAX_MB = 1
    big = SimpleUploadedFile("big.pdf", b"%PDF-1.4\n" + b"0" * (1024 * 1024 + 1), "application/pdf")
    response = admin_client.post(reverse("admin:publishing_report_add"), report_form(big))
    assert "大きすぎます" in response.content.decode()
    assert not Report.objects.exists()


def test_a_real_pdf_is_stored(admin_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    pdf = SimpleUploadedFile("レポート.pdf", demo_pdf("ok"), "application/pdf")
    admin_client.post(reverse("admin:publishing_report_add"), report_form(pdf, _publish="1"))
    report = Report.objects.get()
    assert report.status == Status.PUBLISHED
    assert (tmp_path / report.pdf.name).read_bytes().startswith(b"%PDF-")


def test_a_fake_cover_image_is_refused(admin_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    fake = SimpleUploadedFile("cover.png", b"GIF? no, a script", "image/png")
    response = admin_client.post(
        reverse("admin:publishing_article_add"), article_form(cover_image=fake)
    )
    assert "画像ファイル" in response.content.decode()
    assert not Article.objects.exists()


def test_raising_the_capacity_in_the_admin_seats_the_waitlist(admin_client):
    from datetime import timedelta

    from django.utils import timezone

    from merumaga.publishing import rsvp
    from merumaga.publishing.models import Event, Rsvp

    starts = timezone.now() + timedelta(days=10)
    event = Event.objects.create(
        title="満席の会",
        slug="full",
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
        capacity=1,
        status="published",
        published_at=timezone.now(),
    )
    rsvp.answer(event, "first@example.jp", rsvp.ATTEND)
    rsvp.answer(event, "waiting@example.jp", rsvp.ATTEND)
    assert Rsvp.objects.get(email="waiting@example.jp").answer == Rsvp.Answer.WAITLISTED
    local = timezone.localtime(starts)
    admin_client.post(
        reverse("admin:publishing_event_change", args=[event.pk]),
        {
            "title": event.title,
            "slug": event.slug,
            "description": "",
            "starts_at_0": f"{local:%Y-%m-%d}",
            "starts_at_1": f"{local:%H:%M:%S}",
            "ends_at_0": f"{local:%Y-%m-%d}",
            "ends_at_1": f"{local + timedelta(hours=1):%H:%M:%S}",
            "venue": "",
            "online_url": "",
            "capacity": "2",
            "reminder_days": "",
            "registration_deadline_0": "",
            "registration_deadline_1": "",
            "rsvps-TOTAL_FORMS": "2",
            "rsvps-INITIAL_FORMS": "2",
            "rsvps-MIN_NUM_FORMS": "0",
            "rsvps-MAX_NUM_FORMS": "1000",
            "rsvps-0-id": str(Rsvp.objects.get(email="first@example.jp").pk),
            "rsvps-0-event": str(event.pk),
            "rsvps-1-id": str(Rsvp.objects.get(email="waiting@example.jp").pk),
            "rsvps-1-event": str(event.pk),
        },
    )
    assert Rsvp.objects.get(email="waiting@example.jp").answer == Rsvp.Answer.ATTENDING
