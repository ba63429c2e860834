"""A reader on a phone: sign up, confirm from the mail, turn 週報 off; real SMTP to the catcher."""

import re

import pytest
from playwright.sync_api import expect

from merumaga.mailview import text_body
from merumaga.subscribers.models import Subscriber
from merumaga.testing import assert_fits_the_phone, subscribed_keys, wait_for_mail

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def link_in(message, path: str) -> str:
    return re.search(rf"http://\S+/{path}/\S+/", text_body(message)).group(0)


def test_sign_up_confirm_and_turn_off_the_weekly_report(live_server, page, settings, mail_catcher):
    settings.SITE_URL = live_server.url
    page.goto(f"{live_server.url}/subscribe/")
    assert_fits_the_phone(page)
    page.get_by_label("メールアドレス").fill("phone-reader@example.jp")
    page.get_by_label("お名前 (任意)").fill("携帯 読者")
    for topic in ["週報", "記事配信", "研究レポート（コンパクト版）", "イベントのお知らせ・招待状"]:
        expect(page.get_by_label(topic)).to_be_checked()
    page.get_by_role("button", name="同意して登録する").click()
    expect(page.get_by_role("heading", name="メールをご確認ください")).to_be_visible()
    expect(page.locator("main")).to_contain_text("phone-reader@example.jp")

    confirmation = wait_for_mail(mail_catcher, 1)
    assert confirmation["X-Envelope-To"] == "phone-reader@example.jp"
    page.goto(link_in(confirmation, "confirm"))
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING  # opening is not confirming
    page.get_by_role("button", name="登録を確定する").click()
    expect(page.get_by_role("heading", name="登録が完了しました")).to_be_visible()

    welcome = wait_for_mail(mail_catcher, 2)
    assert "登録が完了しました" in welcome["Subject"]
    page.goto(link_in(welcome, "preferences"))
    assert_fits_the_phone(page)
    page.get_by_label("週報").uncheck()
    page.get_by_role("button", name="保存する").click()
    expect(page.get_by_role("status")).to_contain_text("配信設定を保存しました")
    expect(page.get_by_label("週報")).not_to_be_checked()
    expect(page.get_by_label("記事配信")).to_be_checked()

    reader = Subscriber.objects.get()
    assert reader.status == Subscriber.Status.CONFIRMED
    assert subscribed_keys(reader) == {"articles", "reports", "events"}


def test_sign_up_from_the_home_page_box_in_under_a_second(
    live_server, page, settings, mail_catcher
):
    """A fast typist: the address in the home page's box, then at once the button. Taken."""
    settings.SITE_URL = live_server.url
    page.goto(f"{live_server.url}/")
    box = page.locator("form.subscribe-box")
    box.get_by_role("textbox").fill("ｆａｓｔ＠ｅｘａｍｐｌｅ．ｊｐ")
    box.get_by_role("button").click()
    expect(page.get_by_role("heading", name="メルマガ登録 (無料)")).to_be_visible()
    page.get_by_role("button", name="同意して登録する").click()  # well within a second
    expect(page.get_by_role("heading", name="メールをご確認ください")).to_be_visible()
    expect(page.locator("main")).to_contain_text("fast@example.jp")  # as stored, in ASCII
    assert_fits_the_phone(page)
    confirmation = wait_for_mail(mail_catcher, 1)
    assert confirmation["X-Envelope-To"] == "fast@example.jp"
    assert Subscriber.objects.get().email == "fast@example.jp"


def test_one_click_unsubscribe_page_on_a_phone(live_server, page, settings, mail_catcher):
    from merumaga.subscribers import tokens
    from merumaga.testing import make_subscriber

    reader = make_subscriber("leaving@example.jp")
    token = tokens.make_token(reader, tokens.UNSUBSCRIBE, "weekly")
    page.goto(f"{live_server.url}/unsubscribe/{token}/")
    assert_fits_the_phone(page)
    assert subscribed_keys(reader) == {"weekly", "articles", "reports", "events"}
    page.get_by_role("button", name="配信を停止する").click()
    expect(page.get_by_role("heading", name="配信を停止しました")).to_be_visible()
    assert subscribed_keys(reader) == {"articles", "reports", "events"}


def test_unsubscribe_by_address_from_a_broken_link_on_a_phone(
    live_server, page, settings, mail_catcher
):
    from merumaga.testing import make_subscriber

    settings.SITE_URL = live_server.url
    reader = make_subscriber("lost@example.jp")
    page.goto(f"{live_server.url}/unsubscribe/an-old-broken-link/")
    expect(page.get_by_role("heading", name="このリンクは無効です")).to_be_visible()
    page.get_by_role("link", name="メールマガジンの配信停止").first.click()
    assert_fits_the_phone(page)
    page.get_by_label("メールアドレス").fill("lost@example.jp")
    page.get_by_role("button", name="配信停止のリンクを受け取る").click()
    expect(page.get_by_role("heading", name="メールをご確認ください")).to_be_visible()
    expect(page.locator("main")).to_contain_text("lost@example.jp")

    stop_link = wait_for_mail(mail_catcher, 1)
    assert stop_link["X-Envelope-To"] == "lost@example.jp"
    page.goto(link_in(stop_link, "unsubscribe"))
    page.get_by_role("button", name="配信を停止する").click()
    expect(page.get_by_role("heading", name="配信を停止しました")).to_be_visible()
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED and subscribed_keys(reader) == set()


def test_change_of_address_confirmed_from_the_new_mailbox_on_a_phone(
    live_server, page, settings, mail_catcher
):
    from merumaga.subscribers import tokens
    from merumaga.testing import make_subscriber

    settings.SITE_URL = live_server.url
    reader = make_subscriber("old-box@example.jp")
    page.goto(f"{live_server.url}/preferences/{tokens.make_token(reader, tokens.PREFERENCES)}/")
    page.get_by_label("新しいメールアドレス").fill("new-box@example.jp")
    page.get_by_role("button", name="確認メールを送る").click()
    expect(page.get_by_role("status")).to_contain_text(
        "new-box@example.jp に確認メールをお送りしました"
    )
    assert_fits_the_phone(page)
    reader.refresh_from_db()
    assert reader.email == "old-box@example.jp"

    confirmation = wait_for_mail(mail_catcher, 1)
    assert confirmation["X-Envelope-To"] == "new-box@example.jp"
    page.goto(re.search(r"http://\S+/preferences/address/\S+/", text_body(confirmation)).group(0))
    expect(page.locator("main")).to_contain_text("old-box@example.jp から new-box@example.jp")
    page.get_by_role("button", name="変更を確定する").click()
    expect(page.get_by_role("status")).to_contain_text("メールアドレスを変更しました")
    expect(page.locator("main")).to_contain_text("new-box@example.jp")
    reader.refresh_from_db()
    assert reader.email == "new-box@example.jp"
    notice = wait_for_mail(mail_catcher, 2)
    assert notice["X-Envelope-To"] == "old-box@example.jp"
