"""A reader on a phone: from the home page to an article, and a search in Japanese."""

import pytest
from playwright.sync_api import expect

from merumaga.testing import make_article

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fits_the_phone(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= 375


def test_read_an_article_from_the_home_page(live_server, page):
    make_article(
        "全固体電池の量産が始まる",
        digest="電池メーカーが小規模量産を始めた。",
        body="## 背景\n\n固体電解質の**歩留まり**が課題。",
        source_name="架空エネルギー新聞",
        source_detail="11月号",
    )
    page.goto(live_server.url)
    assert fits_the_phone(page)
    page.get_by_role("link", name="全固体電池の量産が始まる").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("全固体電池の量産が始まる")
    expect(page.get_by_role("heading", name="背景")).to_be_visible()
    expect(page.locator(".source")).to_contain_text("架空エネルギー新聞")
    assert fits_the_phone(page)


def test_search_for_a_japanese_term(live_server, page):
    make_article(
        "自動運転タクシーの無人運行", digest="郊外で無人運行が広がる。", body="遠隔監視の体制。"
    )
    make_article("半導体の後工程", digest="先端パッケージングへの投資。", body="材料の国産化。")
    page.goto(live_server.url)
    page.get_by_role("link", name="検索").click()
    page.get_by_label("検索").fill("無人運行")
    page.keyboard.press("Enter")
    results = page.locator("main li")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("自動運転タクシー")
    expect(results.first.locator("mark").first).to_have_text("無人運行")
    assert fits_the_phone(page)
