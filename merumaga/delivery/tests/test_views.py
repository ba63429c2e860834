import mailbox
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMultiAlternatives, send_mail
from django.urls import reverse

from merumaga.delivery.catcher import list_messages

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(settings, maildir, catcher_port):
    """Two mails composed by Django itself (as its error reports and password resets are), sent
    through the platform's relay backend to the catcher."""
    settings.EMAIL_BACKEND = "merumaga.delivery.transactional.RelayBackend"
    settings.SMTP_RELAYS, settings.SMTP_URL, settings.MAILCATCHER_PORT = "", "", catcher_port

    newsletter = EmailMultiAlternatives(
        subject="研究所だより 11月号",
        body="山田様\n新しい論文のご紹介です。\n",
        from_email="news@example.jp",
        to=["yamada@example.jp"],
    )
    newsletter.attach_alternative(
        "<p>山田様</p><p><b>新しい論文</b>のご紹介です。</p>", "text/html"
    )
    newsletter.attach("目次.pdf", b"%PDF-1.4 fake", "application/pdf")
    newsletter.send()
    send_mail(
        "確認のお願い", "テキストだけのメールです。\n", "news@example.jp", ["kimura@example.jp"]
    )

    confirmation, newsletter = list_messages(maildir)[0]
    return {"newsletter": newsletter, "confirmation": confirmation}


def test_list_shows_the_mails_newest_first_with_tokyo_time(admin_client, sent):
    response = admin_client.get(reverse("mailcatcher:list"))

    assert response.status_code == 200
    content = response.content.decode()
    assert content.index("確認のお願い") < content.index("研究所だより 11月号")
    assert "yamada@example.jp" in content
    tokyo = sent["newsletter"].date.astimezone(ZoneInfo("Asia/Tokyo"))
    assert tokyo.strftime("%Y-%m-%d %H:%M:%S") in content
    assert "リレー" not in content


def test_list_searches_by_recipient(admin_client, sent):
    response = admin_client.get(reverse("mailcatcher:list"), {"q": "KIMURA"})

    content = response.content.decode()
    assert "確認のお願い" in content
    assert "研究所だより" not in content
    assert 'value="KIMURA"' in content


def test_list_says_mail_goes_to_the_relay_when_smtp_url_is_set(admin_client, settings, maildir):
    settings.SMTP_URL = "smtp://relay.example.jp:587"

    response = admin_client.get(reverse("mailcatcher:list"))

    assert response.status_code == 200
    assert "リレーサーバーへ送られます" in response.content.decode()


def test_list_pages_by_fifty(admin_client, maildir):
    box = mailbox.Maildir(maildir)
    for number in range(51):
        box.add(f"Subject: mail-{number:02d}\nX-Envelope-To: r@example.jp\n\nbody\n".encode())
    url = reverse("mailcatcher:list")

    first = admin_client.get(url).content.decode()
    second = admin_client.get(url, {"page": 2}).content.decode()

    assert "mail-50" in first and "mail-01" in first and "mail-00" not in first
    assert "mail-00" in second and "mail-01" not in second
    assert "?page=2" in first
    assert admin_client.get(url, {"page": 3}).status_code == 404
    assert admin_client.get(url, {"page": "x"}).status_code == 404


def test_detail_shows_headers_text_html_frame_and_attachments(admin_client, sent):
    key = sent["newsletter"].key

    response = admin_client.get(reverse("mailcatcher:detail", args=[key]))

    assert response.status_code == 200
    content = response.content.decode()
    assert "<h1>研究所だより 11月号</h1>" in content
    assert f'<iframe class="mailcatcher-html" sandbox="" src="/admin/mail/{key}/html/"' in content
    assert "山田様\n新しい論文のご紹介です。" in content
    assert "目次.pdf" in content and "application/pdf" in content
    assert '<th scope="row">X-Envelope-To</th><td>yamada@example.jp</td>' in content
    assert reverse("mailcatcher:raw", args=[key]) in content


def test_detail_of_a_text_only_mail_has_no_html_frame(admin_client, sent):
    key = sent["confirmation"].key

    content = admin_client.get(reverse("mailcatcher:detail", args=[key])).content.decode()

    assert "テキストだけのメールです。" in content
    assert "<iframe" not in content
    assert admin_client.get(reverse("mailcatcher:html", args=[key])).status_code == 404


def test_html_part_is_served_sandboxed(admin_client, sent):
    response = admin_client.get(reverse("mailcatcher:html", args=[sent["newsletter"].key]))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    # Remote images are not fetched (a tracker would learn the admin's address) until asked.
    assert response["Content-Security-Policy"] == (
        f"sandbox; default-src 'none'; img-src data: {settings.SITE_URL}; style-src 'unsafe-inline'"
    )
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert "<b>新しい論文</b>" in response.content.decode()
    key = sent["newsletter"].key
    detail = admin_client.get(reverse("mailcatcher:detail", args=[key])).content.decode()
    assert "画像を読み込む" in detail and f'{reverse("mailcatcher:html", args=[key])}"' in detail
    detail = admin_client.get(reverse("mailcatcher:detail", args=[key]), {"images": "1"})
    assert f'{reverse("mailcatcher:html", args=[key])}?images=1"' in detail.content.decode()
    loaded = admin_client.get(reverse("mailcatcher:html", args=[key]), {"images": "1"})
    assert "img-src data: https: http:;" in loaded["Content-Security-Policy"]


def test_raw_source_is_plain_text(admin_client, sent):
    response = admin_client.get(reverse("mailcatcher:raw", args=[sent["newsletter"].key]))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    content = response.content.decode()
    assert content.startswith("Return-Path: <news@example.jp>\r\nX-Envelope-To: yamada@example.jp")
    assert "Content-Type: multipart/mixed" in content


@pytest.mark.parametrize("view", ["detail", "html", "raw"])
@pytest.mark.parametrize("key", ["1700000000.M1P1Q1.nowhere", "..", "...", "%2E%2E"])
def test_unknown_and_crafted_keys_give_404(admin_client, sent, view, key):
    assert admin_client.get(reverse(f"mailcatcher:{view}", args=[key])).status_code == 404


@pytest.mark.parametrize("path", ["/admin/mail/..%2F..%2Fsettings.py/raw/", "/admin/mail/../raw/"])
def test_traversal_paths_give_404(admin_client, sent, path):
    assert admin_client.get(path).status_code == 404


@pytest.mark.parametrize("view", ["list", "detail", "html", "raw"])
def test_non_staff_are_sent_to_the_login(client, sent, view):
    client.force_login(User.objects.create_user("reader", password="pw-for-tests"))
    args = [] if view == "list" else [sent["newsletter"].key]
    url = reverse(f"mailcatcher:{view}", args=args)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert "研究所だより" not in response.content.decode()


def test_admin_index_links_to_the_mail_viewer(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert 'href="/admin/mail/"' in page
