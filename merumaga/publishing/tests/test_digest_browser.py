"""「要約の下書きを作成」 in Chromium: a draft from the body typed so far, each sentence taking the
editor to its passage, then used as the digest (and saved as such) — under the admin's CSP."""

import re

import pytest
from playwright.sync_api import expect

from merumaga.conftest import LLM_TEST_KEY
from merumaga.publishing.models import Article
from merumaga.publishing.tests.test_digest import ARTICLE
from merumaga.testing import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_draft_is_made_checked_against_the_body_and_used(live_server, page, django_user_model):
    django_user_model.objects.create_superuser("editor", "", "pw-for-test")
    refused = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server, "editor", "pw-for-test")
    page.goto(f"{live_server.url}/admin/publishing/article/add/")
    page.locator("#id_title").fill("全固体電池、量産へ")
    page.locator("#id_body").fill(ARTICLE)
    page.get_by_role("button", name="要約の下書きを作成").click()
    sentences = page.locator(".mm-digest-sentences button")
    expect(sentences.first).to_contain_text("国内の電池メーカー各社が")

    sentences.first.click()  # to its passage in the body
    selected = page.evaluate(
        "() => { const b = document.querySelector('#id_body');"
        " return b.value.slice(b.selectionStart, b.selectionEnd); }"
    )
    assert selected.startswith("国内の電池メーカー各社が") and selected.endswith("発表した。")

    page.get_by_role("button", name="この下書きを要約に使う").click()
    expect(page.locator("#id_digest")).to_have_value(re.compile("^国内の電池メーカー各社が"))
    assert page.locator("input[name=digest_origin]").input_value() == "offline"
    page.locator("#id_title").press("Enter")  # saves and goes on editing
    expect(page.locator(".messagelist, [role=alert], .alert").first).to_be_visible()
    article = Article.objects.get()
    assert article.digest.startswith("国内の電池メーカー各社が")
    assert article.digest_origin == "offline"
    assert refused == []


def test_a_model_draft_shows_its_progress_marks_and_origin(
    live_server, page, django_user_model, fake_llm, settings
):
    settings.LLM_BASE_URL = fake_llm.base_url("stubborn")  # makes a fact up, even when asked again
    django_user_model.objects.create_superuser("editor", "", "pw-for-test")
    page.set_viewport_size({"width": 390, "height": 844})  # an editor on a phone
    log_in(page, live_server, "editor", "pw-for-test")
    page.goto(f"{live_server.url}/admin/publishing/article/add/")
    page.locator("#id_title").fill("全固体電池、量産へ")
    page.locator("#id_body").fill(ARTICLE)
    expect(page.get_by_label("下書きの作り方")).to_have_value("llm")
    page.get_by_role("button", name="要約の下書きを作成").click()
    notice = page.locator(".mm-digest-notice")
    expect(notice).to_contain_text("必ず確認")
    expect(page.locator("mark.mm-unsupported").first).to_have_text("ゼータ精機")
    assert LLM_TEST_KEY not in page.content()

    page.get_by_role("button", name="この下書きを要約に使う").click()
    expect(page.locator("#id_digest")).to_have_value(re.compile("ゼータ精機"))  # the editor decides
    assert page.locator("input[name=digest_origin]").input_value() == "llm"

    settings.LLM_BASE_URL = fake_llm.base_url("fail")
    page.get_by_role("button", name="要約の下書きを作成").click()
    expect(page.locator(".mm-digest-notice")).to_contain_text("オフラインの下書き")
    expect(page.locator(".mm-digest-notice")).to_contain_text("HTTP 500")
    expect(page.locator(".mm-digest-draft")).to_have_attribute("data-origin", "offline")
