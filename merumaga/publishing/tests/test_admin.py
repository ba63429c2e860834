from datetime import datetime, time, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

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


def in_two_weeks_at(hour: int, minute: int = 0) -> datetime:
    """A fixed local time of day two weeks ahead: an hour later is still the same day."""
    day = (timezone.localtime() + timedelta(days=14)).date()
    return datetime.combine(day, time(hour, minute), tzinfo=timezone.get_current_timezone())


def event_form(starts: datetime, ends: datetime, **overrides) -> dict:
    """What the event admin posts, times as Japan time."""

    def moment(name: str, value: datetime | None) -> dict:
        local = timezone.localtime(value) if value else None
        return {
            f"{name}_0": f"{local:%Y-%m-%d}" if local else "",
            f"{name}_1": f"{local:%H:%M:%S}" if local else "",
        }

    deadline = overrides.pop("registration_deadline", None)
    published = overrides.pop("published_at", None)
    return {
        "title": "政策セミナー",
        "slug": "",
        "description": "",
        **moment("starts_at", starts),
        **moment("ends_at", ends),
        **moment("registration_deadline", deadline),
        **moment("published_at", published),
        "venue": "",
        "online_url": "",
        "capacity": "",
        "reminder_days": "",
        "rsvps-TOTAL_FORMS": "0",
        "rsvps-INITIAL_FORMS": "0",
        "rsvps-MIN_NUM_FORMS": "0",
        "rsvps-MAX_NUM_FORMS": "1000",
        **overrides,
    }


def test_raising_the_capacity_in_the_admin_seats_the_waitlist(admin_client):
    from merumaga.publishing import rsvp
    from merumaga.publishing.models import Event, Rsvp

    starts = in_two_weeks_at(14)
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
    admin_client.post(
        reverse("admin:publishing_event_change", args=[event.pk]),
        event_form(
            starts,
            starts + timedelta(hours=1),
            title=event.title,
            slug=event.slug,
            capacity="2",
            published_at=event.published_at,
            **{
                "rsvps-TOTAL_FORMS": "2",
                "rsvps-INITIAL_FORMS": "2",
                "rsvps-0-id": str(Rsvp.objects.get(email="first@example.jp").pk),
                "rsvps-0-event": str(event.pk),
                "rsvps-1-id": str(Rsvp.objects.get(email="waiting@example.jp").pk),
                "rsvps-1-event": str(event.pk),
            },
        ),
    )
    assert Rsvp.objects.get(email="waiting@example.jp").answer == Rsvp.Answer.ATTENDING


def test_an_event_ending_before_it_starts_is_refused_in_the_editors_words(admin_client):
    from merumaga.publishing.models import Event

    starts = in_two_weeks_at(14)
    response = admin_client.post(
        reverse("admin:publishing_event_add"),
        event_form(
            starts, starts - timedelta(hours=1), registration_deadline=starts + timedelta(1)
        ),
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "終了日時は開始日時より後にしてください。" in page
    assert "申込締切は開始日時より前にしてください。" in page
    assert "event_ends_after_it_starts" not in page and "Constraint" not in page
    assert 'value="政策セミナー"' in page  # nothing typed is lost
    assert not Event.objects.exists()


def test_the_event_form_sets_a_reminder_and_a_publication_time(admin_client, time_machine):
    from merumaga.publishing.models import Event

    time_machine.move_to("2026-12-07 09:00 +09:00", tick=False)
    starts = in_two_weeks_at(14)
    later = timezone.now() + timedelta(days=2)
    response = admin_client.post(
        reverse("admin:publishing_event_add"),
        event_form(starts, starts + timedelta(hours=2), reminder_days="2", published_at=later)
        | {"_publish": "1"},
    )
    assert response.status_code == 302
    event = Event.objects.get()
    assert event.reminder_days == 2
    assert event.status == Event.EventStatus.SCHEDULED and event.published_at == later


@pytest.mark.parametrize(
    ("model", "add_url"),
    [
        ("report", "admin:publishing_report_add"),
        ("event", "admin:publishing_event_add"),
        ("article", "admin:publishing_article_add"),
    ],
)
def test_the_form_offers_the_notification_with_its_exact_count(admin_client, model, add_url):
    from merumaga.subscribers.models import Subscriber, Suppression, Topic, address_hash
    from merumaga.testing import make_subscriber

    keys = {"report": "reports", "event": "events", "article": "articles"}
    topic = Topic.objects.get(key=keys[model]).name
    for number in range(4):
        make_subscriber(f"reader{number}@example.jp", topics=[keys[model]])
    make_subscriber("bounced@example.jp", topics=[keys[model]])
    Suppression.objects.create(address_hash=address_hash("bounced@example.jp"), reason="complaint")
    make_subscriber("gone@example.jp", topics=[], status=Subscriber.Status.UNSUBSCRIBED)
    page = admin_client.get(reverse(add_url)).content.decode()
    assert 'name="notify_subscribers"' in page
    assert f"「{topic}」の購読者 4人にメールでお知らせします" in page
    assert f"公開して、「{topic}」の購読者 4人にメールでお知らせします。よろしいですか?" in page


def test_save_and_preview_opens_the_announcement_for_a_test_send(admin_client, settings, tmp_path):
    from merumaga.mailings.models import Mailing
    from merumaga.testing import make_subscriber

    settings.MEDIA_ROOT = tmp_path
    make_subscriber(topics=["reports"])
    pdf = SimpleUploadedFile("r.pdf", demo_pdf("Report"), "application/pdf")
    form = {
        "title": "電池材料の動向",
        "slug": "",
        "summary": "正極材の動き。",
        "pdf": pdf,
        "full_version_url": "",
        "published_at_0": "",
        "published_at_1": "",
        "notify_subscribers": "on",
        "_preview_announcement": "1",
    }
    response = admin_client.post(reverse("admin:publishing_report_add"), form, follow=True)
    report = Report.objects.get()
    mailing = Mailing.objects.get()
    assert report.status == Status.DRAFT  # saved, not published
    assert (mailing.kind, mailing.report, mailing.status) == ("report", report, "draft")
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse(
        "admin:mailings_mailing_preview", args=[mailing.pk]
    )
    assert "の公開時に送られます" in page and "配信先の購読者: 1人" in page
    assert reverse("admin:mailings_mailing_test_send", args=[mailing.pk]) in page


def test_the_article_editor_checks_iso_2022_jp_as_it_types_and_on_save(admin_client):
    check = reverse("admin:publishing_article_jis_check")
    html = admin_client.post(check, {"title": "深圳の電池", "digest": "①", "body": ""}).content
    assert "深セン".encode() in html and b"(1)" in html
    response = admin_client.post(
        reverse("admin:publishing_article_add"), article_form(title="深圳の電池"), follow=True
    )
    assert "「圳」(タイトル → 深セン)" in response.content.decode()


def account_with(django_user_model, *roles):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("member", password="pw", is_staff=True)
    user.groups.add(*Group.objects.filter(name__in=roles))
    return user


def test_a_writer_publishes_but_cannot_mail_the_readers(client, django_user_model, roles):
    from merumaga.team.roles import WRITER

    client.force_login(account_with(django_user_model, WRITER))
    page = client.get(reverse("admin:publishing_article_add")).content.decode()
    assert 'name="_publish"' in page  # publishing is theirs
    assert 'name="notify_subscribers"' not in page and "人にメールでお知らせします" not in page
    # Enter in a field saves and goes on editing, never publishes: the form's first button.
    form = page[page.index('id="article_form"') :]
    assert form.index('name="_continue"') < form.index('name="_publish"')


def test_who_may_start_mailings_may_also_announce(client, django_user_model, roles):
    from merumaga.team.roles import SENDER, WRITER

    client.force_login(account_with(django_user_model, WRITER, SENDER))
    page = client.get(reverse("admin:publishing_article_add")).content.decode()
    assert 'name="notify_subscribers"' in page


def test_an_account_that_only_views_gets_no_publish_button(client, django_user_model, roles):
    from merumaga.team.roles import SENDER

    article = Article.objects.create(title="記事", digest="要約。", body="本文。")
    client.force_login(account_with(django_user_model, SENDER))  # views content, writes none
    page = client.get(reverse("admin:publishing_article_change", args=[article.pk]))
    assert page.status_code == 200 and 'name="_publish"' not in page.content.decode()
