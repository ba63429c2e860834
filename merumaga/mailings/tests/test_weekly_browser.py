"""The weekly report as a magazine on a 390 px phone: 第N号, the preface and the 目次 in the
editor's preview (HTML and text), and in the public archive, where the 目次 leads to each
article."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from merumaga.mailings import services
from merumaga.mailings.archive import archive
from merumaga.mailings.models import Mailing
from merumaga.mailings.rendering import archive_slug
from merumaga.publishing.models import Tag
from merumaga.testing import log_in, make_article, make_subscriber

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PREFACE = "今週は電池と自動運転の話題を、分野ごとにまとめてお届けします。"


def fits(page, width: int = 390) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.fixture
def weekly():
    battery = Tag.objects.create(name="電池", slug="battery")
    driving = Tag.objects.create(name="自動運転", slug="driving")
    day = timezone.now() - timedelta(days=1)
    for n in range(6):
        article = make_article(
            f"記事その{n + 1}: {'電池の量産' if n % 2 else '無人タクシーの拡大'}",
            slug=f"記事-{n}",
            published_at=day + timedelta(minutes=n),
            digest="各社の動きをまとめた。" * 8,
        )
        article.tags.add(battery if n % 2 else driving)
    make_subscriber("reader@example.jp", name="読者 花子")
    mailing = services.compose_weekly().mailing
    mailing.intro, mailing.grouping = PREFACE, Mailing.Grouping.TAG
    mailing.save()
    return mailing


def test_the_editor_previews_the_magazine_on_a_phone(live_server, page, weekly, django_user_model):
    django_user_model.objects.create_superuser("editor", "", "pw-for-test")
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server, "editor", "pw-for-test")
    page.goto(f"{live_server.url}/admin/mailings/mailing/{weekly.pk}/preview/")
    frame = page.frame_locator("iframe.mailing-preview-phone")
    expect(frame.locator(".issue").get_by_text("第1号", exact=True)).to_be_visible()
    expect(frame.get_by_role("heading", name="目次")).to_be_visible()
    expect(frame.get_by_text(PREFACE)).to_be_visible()
    text = page.locator("pre.mailing-preview-text")
    expect(text).to_contain_text("週報 第1号をお届けします")
    expect(text).to_contain_text("■ 目次")
    expect(text).to_contain_text("〈自動運転〉")
    fits(page)


def test_the_archive_copy_leads_from_the_contents_to_each_article(live_server, page, weekly):
    Mailing.objects.filter(pk=weekly.pk).update(
        status=Mailing.Status.SENT, started_at=timezone.now(), finished_at=timezone.now()
    )
    archive(weekly)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/archive/{archive_slug(weekly)}/")
    expect(page.locator(".issue").get_by_text("第1号", exact=True)).to_be_visible()
    expect(page.get_by_text(PREFACE)).to_be_visible()
    contents = page.locator(".toc")
    expect(contents.get_by_text("自動運転")).to_be_visible()  # a section of the 目次
    fits(page)
    last = contents.locator("a").last
    target = last.get_attribute("href")
    assert target == "#a6"
    last.click()
    expect(page.locator(target)).to_be_in_viewport()
    assert page.evaluate("location.hash") == "#a6"
