"""An editor at a desk (1280 px): composes the weekly report while one waits, and publishes a
report with its notification, seeing the exact count before anything goes out."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from merumaga.demo import demo_pdf
from merumaga.mailings import services
from merumaga.mailings.models import Mailing
from merumaga.publishing.models import Report
from merumaga.subscribers.models import Suppression, address_hash
from merumaga.testing import log_in, make_article, make_subscriber

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def desk(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="ja-JP")
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def editor(live_server, desk, settings, django_user_model):
    settings.SITE_URL = live_server.url
    django_user_model.objects.create_superuser("editor", "", "pw-for-test")
    log_in(desk, live_server, "editor", "pw-for-test")
    return desk


def test_compose_now_with_a_draft_present_refreshes_the_draft(live_server, editor):
    page = editor
    make_article("月曜に公開した記事", published_at=timezone.now() - timedelta(days=1))
    waiting = services.compose_weekly().mailing  # the schedule's draft, waiting for approval
    make_article("水曜に公開した記事", published_at=timezone.now() - timedelta(hours=1))

    page.goto(f"{live_server.url}/admin/mailings/mailing/")
    page.get_by_role("button", name="週報を今すぐ作成").click()
    expect(page.locator(".messagelist")).to_contain_text(
        "配信前の週報を更新しました: 記事 1本を追加、0本を除外 (計 2本)。"
    )
    assert page.url.endswith(f"/admin/mailings/mailing/{waiting.pk}/change/")
    rows = page.locator("#mailingarticle_set-group tbody tr.form-row")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("水曜に公開した記事")  # newest first
    assert Mailing.objects.filter(kind="weekly").count() == 1

    page.goto(f"{live_server.url}/admin/mailings/mailing/")
    page.get_by_role("button", name="週報を今すぐ作成").click()
    expect(page.locator(".messagelist")).to_contain_text("がそのまま配信を待っています")


def test_publishing_a_report_shows_the_count_then_notifies_that_many(
    live_server, editor, settings, tmp_path
):
    page = editor
    settings.MEDIA_ROOT = tmp_path
    for number in range(3):
        make_subscriber(f"reader{number}@example.jp", topics=["reports"])
    make_subscriber("bounced@example.jp", topics=["reports"])
    Suppression.objects.create(address_hash=address_hash("bounced@example.jp"), reason="complaint")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(demo_pdf("Battery materials"))

    page.goto(f"{live_server.url}/admin/publishing/report/add/")
    page.get_by_label("タイトル").fill("電池材料の動向 (コンパクト版)")
    page.get_by_label("概要").fill("正極材と負極材の主要企業をまとめた。")
    page.get_by_label("PDF (コンパクト版)").set_input_files(str(pdf))
    page.get_by_label("公開時に購読者へ通知する").check()
    expect(page.locator(".notify-count")).to_contain_text("の購読者 3人にメールでお知らせします")

    page.get_by_role("button", name="保存して通知メールをプレビュー・テスト送信").click()
    expect(page.locator(".mailing-preview-audience")).to_contain_text("配信先の購読者: 3人")
    frame = page.frame_locator("iframe.mailing-preview-phone")
    expect(frame.get_by_role("heading", name="電池材料の動向 (コンパクト版)")).to_be_visible()
    report = Report.objects.get()
    assert report.status == "draft" and Mailing.objects.get().status == "draft"

    page.locator(".mailing-preview-audience a").click()  # back to the report
    dialogs = []

    def answer(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    page.get_by_role("button", name="保存して公開する").click()
    expect(page.locator(".messagelist")).to_contain_text("公開しました")
    assert dialogs and "の購読者 3人にメールでお知らせします。よろしいですか?" in dialogs[0]
    report.refresh_from_db()
    mailing = Mailing.objects.get()  # the draft previewed is the one that went
    assert report.status == "published" and mailing.status in ("sending", "sent")


def test_characters_iso_2022_jp_readers_cannot_receive_are_listed_as_the_editor_types(
    live_server, editor
):
    page = editor
    page.goto(f"{live_server.url}/admin/publishing/article/add/")
    page.get_by_label("タイトル").fill("深圳の新工場、①期目の生産開始")
    box = page.locator(".jis-check")
    expect(box).to_contain_text("深セン")  # the suggestion for 圳
    expect(box).to_contain_text("(1)")  # ① is replaced by itself
    page.get_by_label("本文 (Markdown)").fill("**太字**")
    # The preview too, in a frame with the public site's stylesheet, as on the article page.
    preview = page.frame_locator("iframe.markdown-preview")
    expect(preview.locator(".article-body strong")).to_have_text("太字")
    expect(preview.locator("link[rel=stylesheet]")).to_have_attribute(
        "href", "/static/merumaga/site.css"
    )
