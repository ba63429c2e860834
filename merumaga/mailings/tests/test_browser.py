"""An editor on a phone: composes the weekly report, previews it and test-sends it to themself."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from merumaga.mailings.models import Mailing
from merumaga.testing import (
    assert_fits_the_phone,
    log_in,
    make_article,
    make_subscriber,
    wait_for_mail,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def test_compose_preview_and_test_send_the_weekly_report(
    live_server, page, settings, mail_catcher, django_user_model
):
    settings.SITE_URL = live_server.url
    make_article("地域経済の見通し", published_at=timezone.now() - timedelta(days=1))
    make_subscriber("reader@example.jp", name="読者 太郎")
    django_user_model.objects.create_superuser("editor", "", "pw-for-test")
    log_in(page, live_server, "editor", "pw-for-test")

    page.goto(f"{live_server.url}/admin/mailings/mailing/")
    page.get_by_role("button", name="週報を今すぐ作成").click()
    expect(page.locator(".messagelist")).to_contain_text("週報を作成しました")
    mailing = Mailing.objects.get()
    expect(page.locator(".mailing-tools")).to_contain_text("配信先の購読者: 1人")
    assert_fits_the_phone(page)

    page.get_by_role("link", name="プレビューとテスト送信").click()
    phone = page.locator("iframe.mailing-preview-phone")
    expect(phone).to_be_visible()
    assert phone.get_attribute("sandbox") == ""
    assert phone.evaluate("frame => frame.getBoundingClientRect().width") == pytest.approx(375, 1)
    frame = page.frame_locator("iframe.mailing-preview-phone")
    expect(frame.get_by_role("heading", name="地域経済の見通し")).to_be_visible()
    expect(page.locator("pre.mailing-preview-text")).to_contain_text("読者 太郎 様")
    assert_fits_the_phone(page)  # each frame keeps its width and scrolls inside the page

    page.get_by_label("送信先 (編集部のアドレス)").fill("editor@example.jp")
    page.get_by_role("button", name="テスト送信する").click()
    expect(page.locator(".messagelist")).to_contain_text("テストメールを送信しました")

    mail = wait_for_mail(mail_catcher)
    assert mail["To"] == "editor@example.jp"
    assert mail["Subject"].startswith("[テスト]") and mailing.subject in mail["Subject"]
    mailing.refresh_from_db()
    assert mailing.status == Mailing.Status.DRAFT
