"""Someone on a phone finds an event, answers, and gets the mail with the calendar file."""

import re

import icalendar
import pytest
from playwright.sync_api import expect

from merumaga.mailview import attachments, text_body
from merumaga.publishing.models import Rsvp
from merumaga.testing import assert_fits_the_phone, make_event, wait_for_mail

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def test_answer_an_event_on_a_phone_and_get_the_ics(live_server, page, settings, mail_catcher):
    settings.SITE_URL = live_server.url
    event = make_event(
        title="公開シンポジウム「地域と研究」",
        capacity=30,
        online_url="https://meet.example.org/a-very-long-meeting-room-identifier-0123456789",
    )

    page.goto(f"{live_server.url}/events/")
    assert_fits_the_phone(page)
    page.get_by_role("link", name=event.title).click()
    expect(page.get_by_role("heading", name=event.title)).to_be_visible()
    assert_fits_the_phone(page)
    expect(page.get_by_text("定員 30名（残り 30席）")).to_be_visible()

    page.get_by_label("お名前").fill("携帯 花子")
    page.get_by_label("メールアドレス").fill("hanako@example.jp")
    page.get_by_label("所属 (任意)").fill("地域研究センター")
    page.get_by_role("button", name="参加を申し込む").click()
    expect(page.get_by_role("heading", name="メールをご確認ください")).to_be_visible()
    expect(page.locator("main")).to_contain_text("hanako@example.jp")
    assert not Rsvp.objects.exists()  # the address's owner has not confirmed yet

    request = wait_for_mail(mail_catcher, 1)
    assert "携帯 花子" not in text_body(request)  # no typed text in mail to an unconfirmed address
    page.goto(re.search(r"http://\S+/events/confirm/\S+/", text_body(request)).group(0))
    expect(page.locator("main")).to_contain_text("携帯 花子")
    assert_fits_the_phone(page)
    page.get_by_role("button", name="参加を申し込む").click()

    expect(page.get_by_role("heading", name="参加登録しました")).to_be_visible()
    assert_fits_the_phone(page)
    assert Rsvp.objects.get().answer == Rsvp.Answer.ATTENDING

    mail = wait_for_mail(mail_catcher, 2)
    assert mail["X-Envelope-To"] == "hanako@example.jp"
    assert "参加登録を受け付けました" in mail["Subject"]
    assert "携帯 花子 様" in text_body(mail)
    assert [(a.filename, a.content_type) for a in attachments(mail)] == [
        ("event.ics", "text/calendar")
    ]
    part = next(p for p in mail.walk() if p.get_content_type() == "text/calendar")
    [vevent] = icalendar.Calendar.from_ical(part.get_payload(decode=True)).events
    assert vevent["SUMMARY"] == event.title
    assert vevent.start == event.starts_at
    assert vevent["URL"] == f"{live_server.url}{event.get_absolute_url()}"
