"""「要約の下書きを作成」 in Chromium: a draft from the body typed so far, each sentence taking the
editor to its passage, then used as the digest (and saved as such) — under the admin's CSP."""

import re

import pytest
from playwright.sync_api import expect

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
