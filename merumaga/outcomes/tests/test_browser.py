"""The dashboard and a mailing's report, in a browser at desktop and phone widths: nothing
overflows, and screenshots are kept (MERUMAGA_SCREENSHOTS_DIR, else the test's own folder)."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from merumaga.delivery.worker import run_until_idle
from merumaga.mailings import services
from merumaga.testing import log_in, mailing_of, make_subscriber

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def assert_nothing_overflows(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    overflowing = page.evaluate(
        """() => [...document.querySelectorAll('#content table')]
            .filter(t => t.getBoundingClientRect().right > window.innerWidth + 1)
            .map(t => t.outerHTML.slice(0, 80))"""
    )
    assert overflowing == []


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_dashboard_and_report_fit_the_screen(
    screen, live_server, page, settings, relay, django_user_model, tmp_path
):
    settings.SITE_URL = live_server.url
    for n in range(3):
        make_subscriber(f"r{n}@example.jp", topics=["weekly"])
    weekly = mailing_of("weekly")
    services.start(weekly)
    run_until_idle(batch_size=50)
    django_user_model.objects.create_superuser("editor", "", "pw-for-test")
    width, height = WIDTHS[screen]
    page.set_viewport_size({"width": width, "height": height})
    folder = Path(os.environ.get("MERUMAGA_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    log_in(page, live_server, "editor", "pw-for-test")

    page.goto(f"{live_server.url}/admin/")
    expect(page.locator(".outcomes-dashboard")).to_contain_text("最近の配信")
    expect(page.locator(".outcomes-chart").first).to_be_visible()
    assert_nothing_overflows(page, width)
    page.screenshot(path=folder / f"dashboard-{width}.png", full_page=True)

    if screen == "desktop":  # the system's dark mode is followed, our cards included
        page.emulate_media(color_scheme="dark")
        page.reload()
        expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
        card = page.locator(".mm-card").first
        assert card.evaluate("e => getComputedStyle(e).backgroundColor") != "rgb(255, 255, 255)"
        page.screenshot(path=folder / f"dashboard-dark-{width}.png", full_page=True)
        page.emulate_media(color_scheme="light")
        page.reload()

    page.get_by_role("link", name=weekly.subject).click()
    expect(page.locator(".outcomes-funnel")).to_contain_text("送信済み")
    assert_nothing_overflows(page, width)
    page.screenshot(path=folder / f"mailing-report-{width}.png", full_page=True)


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_the_mailing_list_gives_the_subject_the_room(
    screen, live_server, page, django_user_model, tmp_path
):
    for kind in ("weekly", "custom"):
        mailing_of(kind)
    django_user_model.objects.create_superuser("editor", "", "pw-for-test")
    width, height = WIDTHS[screen]
    page.set_viewport_size({"width": width, "height": height})
    log_in(page, live_server, "editor", "pw-for-test")
    page.goto(f"{live_server.url}/admin/mailings/mailing/")
    folder = Path(os.environ.get("MERUMAGA_SCREENSHOTS_DIR") or tmp_path)
    page.screenshot(path=folder / f"mailing-list-{width}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    widths = page.evaluate(
        """() => [...document.querySelectorAll('#result_list thead th')]
            .map(th => [th.className, th.getBoundingClientRect().width])"""
    )
    subject = next(w for name, w in widths if "column-subject" in name)
    assert subject == max(w for _, w in widths)  # the widest column
    if screen == "desktop":
        assert subject >= 300
