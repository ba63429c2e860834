"""Event pages: list, detail with the answer form, the calendar file, the readers' answer links."""

import re
from datetime import timedelta

import icalendar
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from merumaga.publishing import rsvp, rsvp_links, services
from merumaga.publishing.models import Event, Rsvp
from merumaga.subscribers import tokens
from merumaga.testing import make_event, make_subscriber

pytestmark = pytest.mark.django_db


def form(**fields) -> dict:
    return {"answer": "attend", "name": "参加 太郎", "email": "taro@example.jp", **fields}


def post_answer(client, event, **fields):
    return client.post(reverse("event_rsvp", args=[event.slug]), form(**fields))


# The list.


def test_list_shows_upcoming_first_then_past_with_cancelled_marked(client):
    now = timezone.now()
    past = make_event(
        title="昨年の講演会",
        slug="past",
        starts_at=now - timedelta(days=30),
        ends_at=now - timedelta(days=30) + timedelta(hours=2),
    )
    later = make_event(
        title="来月の研究会",
        slug="later",
        starts_at=now + timedelta(days=30),
        ends_at=now + timedelta(days=30, hours=2),
    )
    sooner = make_event(title="来週のセミナー", slug="sooner")
    cancelled = make_event(
        title="取りやめた会",
        slug="cancelled",
        starts_at=now + timedelta(days=10),
        ends_at=now + timedelta(days=10, hours=1),
    )
    services.cancel_event(cancelled)
    make_event(
        title="準備中の下書き", slug="draft", status=Event.EventStatus.DRAFT, published_at=None
    )

    response = client.get(reverse("event_list"))

    assert response.status_code == 200
    page = response.content.decode()
    order = [page.index(e.title) for e in (sooner, cancelled, later, past)]
    assert order == sorted(order)
    assert page.index("過去のイベント") < page.index(past.title)
    assert page.index("過去のイベント") > page.index(later.title)
    assert "準備中の下書き" not in page
    cancelled_item = page[page.index(cancelled.title) : page.index(later.title)]
    assert "中止" in cancelled_item
    assert past.get_absolute_url() in page


# The detail page.


def test_detail_shows_date_place_seats_deadline_and_the_form(client):
    event = make_event(
        capacity=3,
        online_url="https://meet.example.org/seminar",
        registration_deadline=timezone.now() + timedelta(days=5),
        description="**研究成果** の発表\n\n<script>alert(1)</script>",
    )
    rsvp.answer(event, "one@example.jp", rsvp.ATTEND)

    response = client.get(event.get_absolute_url())

    assert response.status_code == 200
    page = response.content.decode()
    starts = timezone.localtime(event.starts_at)
    weekday = "月火水木金土日"[starts.weekday()]
    assert f"{starts.year}年{starts.month}月{starts.day}日({weekday}) 14:00〜16:00" in page
    assert "日本時間" in page
    assert "東京都千代田区 会議室A" in page
    assert 'href="https://meet.example.org/seminar"' in page
    assert "定員 3名（残り 2席）" in page
    assert "申込締切" in page
    assert "<strong>研究成果</strong>" in page
    assert "<script>alert(1)</script>" not in page
    assert reverse("event_ics", args=[event.slug]) in page
    assert "カレンダーに追加 (.ics)" in page
    assert 'name="csrfmiddlewaretoken"' in page
    for field in (
        'name="name"',
        'name="email"',
        'name="organisation"',
    ):
        assert field in page
    for label in ("参加を申し込む", "お名前", "メールアドレス", "所属 (任意)"):
        assert label in page
    # Anyone can type any address: the public form cannot give someone's seat back.
    assert 'value="decline"' not in page


def test_full_event_says_the_waitlist_is_open(client):
    event = make_event(capacity=1)
    rsvp.answer(event, "one@example.jp", rsvp.ATTEND)
    page = client.get(event.get_absolute_url()).content.decode()
    assert "満席 (キャンセル待ちで受付中)" in page
    assert 'name="email"' in page


def test_unlimited_event_has_no_seat_count(client):
    page = client.get(make_event(capacity=None).get_absolute_url()).content.decode()
    assert "定員なし" in page


@pytest.mark.parametrize(
    ("fields", "notice"),
    [
        (
            {"registration_deadline": timezone.now() - timedelta(hours=1)},
            "申込の受付は終了しました。",
        ),
        ({"status": Event.EventStatus.CANCELLED}, "このイベントは中止になりました。"),
    ],
    ids=["deadline-passed", "cancelled"],
)
def test_closed_event_shows_a_notice_instead_of_the_form(client, fields, notice):
    event = make_event(**fields)
    response = client.get(event.get_absolute_url())
    assert response.status_code == 200
    page = response.content.decode()
    assert notice in page
    assert 'name="email"' not in page


def test_drafts_do_not_exist_for_the_public(client):
    draft = make_event(status=Event.EventStatus.DRAFT, published_at=None)
    cancelled_draft = make_event(
        slug="never", status=Event.EventStatus.CANCELLED, published_at=None
    )
    for event in (draft, cancelled_draft):
        assert client.get(event.get_absolute_url()).status_code == 404
        assert client.get(reverse("event_ics", args=[event.slug])).status_code == 404
        assert post_answer(client, event).status_code == 404
    assert not Rsvp.objects.exists()


# Answering on the page: the owner of the address confirms from the mail.


def link_in(mail, path: str) -> str:
    """The path of our link in a mail (the test client speaks to the site without its host)."""
    url = re.search(rf"http://\S+/{path}/\S+/", mail.body).group(0)
    return url.split("localhost:8000", 1)[1]


def request_and_confirm(client, event, capture, mailoutbox, **fields):
    """What a person does: fill in the form, open the mailed link, press the button."""
    with capture(execute=True):
        post_answer(client, event, **fields)
    with capture(execute=True):
        return client.post(link_in(mailoutbox[-1], "events/confirm"), follow=True)


def test_the_public_form_takes_no_seat_and_mails_no_typed_text_until_the_owner_confirms(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    event = make_event(capacity=5, online_url="https://meet.example.jp/secret")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_answer(
            client, event, name="今すぐ当選金を受け取る", organisation="http://spam.example"
        )
    assert response.status_code == 302
    sent = client.get(response["Location"]).content.decode()
    assert "taro@example.jp" in sent and "申込はまだ完了していません" in sent
    assert not Rsvp.objects.exists()
    [mail] = mailoutbox
    assert mail.to == ["taro@example.jp"]
    whole = mail.message().as_string() + mail.body + mail.alternatives[0][0]
    for typed in ("当選金", "spam.example", "meet.example.jp"):
        assert typed not in whole

    page = client.get(link_in(mail, "events/confirm"))
    assert page.status_code == 200
    assert "今すぐ当選金を受け取る" in page.content.decode()  # shown to the owner, on our site
    assert not Rsvp.objects.exists()  # opening the link answers nothing


@pytest.mark.parametrize(
    ("capacity", "heading", "state"),
    [
        (5, "参加登録しました", Rsvp.Answer.ATTENDING),
        (0, "キャンセル待ちに登録しました", Rsvp.Answer.WAITLISTED),
    ],
)
def test_the_owner_confirms_and_gets_a_seat_or_the_waitlist(
    client, capacity, heading, state, mailoutbox, django_capture_on_commit_callbacks
):
    event = make_event(capacity=capacity)
    response = request_and_confirm(
        client,
        event,
        django_capture_on_commit_callbacks,
        mailoutbox,
        organisation="経済研究所",
    )
    url, status = response.redirect_chain[0]
    assert status == 302 and "/events/answer/" in url  # a refresh answers nothing
    assert f"<h1>{heading}</h1>" in response.content.decode()
    saved = Rsvp.objects.get()
    assert (saved.email, saved.name, saved.organisation, saved.answer) == (
        "taro@example.jp",
        "参加 太郎",
        "経済研究所",
        state,
    )
    assert [m.to for m in mailoutbox] == [["taro@example.jp"], ["taro@example.jp"]]


def test_a_forged_decline_on_the_public_form_still_only_asks_for_a_seat(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    event = make_event()
    request_and_confirm(
        client, event, django_capture_on_commit_callbacks, mailoutbox, answer="decline"
    )
    assert Rsvp.objects.get().answer == Rsvp.Answer.ATTENDING


def test_a_stranger_cannot_rename_a_declined_answer(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    event = make_event()
    declined = rsvp.answer(event, "taro@example.jp", rsvp.DECLINE, name="本人")
    with django_capture_on_commit_callbacks(execute=True):
        post_answer(client, event, name="別人")
    declined.refresh_from_db()
    assert (declined.name, declined.answer) == ("本人", Rsvp.Answer.DECLINED)


def test_a_confirmation_link_expires_after_three_days(
    client, mailoutbox, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to("2026-12-07 09:00 +09:00", tick=False)
    event = make_event()
    with django_capture_on_commit_callbacks(execute=True):
        post_answer(client, event)
    time_machine.shift(timedelta(days=3, seconds=1))
    assert client.post(link_in(mailoutbox[0], "events/confirm")).status_code == 404
    assert not Rsvp.objects.exists()


def test_one_address_gets_at_most_three_confirmation_mails_an_hour(
    client, mailoutbox, inside_one_rate_window, django_capture_on_commit_callbacks
):
    event = make_event()
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            assert post_answer(client, event).status_code == 302
    response = post_answer(client, event)
    assert response.status_code == 400 and "続けてお送りしています" in response.content.decode()
    assert len(mailoutbox) == 3


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "not an address"}, "メールアドレスの形式が正しくありません。"),
        ({"email": ""}, "メールアドレスを入力してください。"),
        ({"name": ""}, "お名前を入力してください。"),
        ({"name": "太郎\r\nBcc: x@example.com"}, "お名前に改行や制御文字は使えません。"),
        ({"name": "長" * 101}, "100"),
    ],
    ids=["bad-email", "no-email", "no-name", "crlf-name", "long-name"],
)
def test_bad_input_shows_the_form_again_with_the_error(client, fields, message):
    event = make_event()
    response = post_answer(client, event, **fields)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert 'name="email"' in page
    if "name" not in fields:
        assert 'value="参加 太郎"' in page  # what was typed is kept
    assert not Rsvp.objects.exists()


def test_answering_a_closed_event_is_a_400_with_the_reason(client):
    event = make_event()
    Event.objects.filter(pk=event.pk).update(registration_deadline=timezone.now() - timedelta(1))
    response = post_answer(client, event)
    assert response.status_code == 400
    assert "申込の受付は終了しました。" in response.content.decode()
    assert not Rsvp.objects.exists()


def test_the_answer_form_needs_the_csrf_token():
    event = make_event()
    client = Client(enforce_csrf_checks=True)
    assert post_answer(client, event).status_code == 403
    assert not Rsvp.objects.exists()


def test_the_answer_url_takes_only_posts(client):
    event = make_event()
    assert client.get(reverse("event_rsvp", args=[event.slug])).status_code == 405


# The calendar file.


def test_calendar_download(client, settings):
    event = make_event()
    response = client.get(reverse("event_ics", args=[event.slug]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="event-{event.pk}.ics"'
    calendar = icalendar.Calendar.from_ical(response.content)
    [vevent] = calendar.events
    assert vevent["SUMMARY"] == event.title
    assert vevent.start == event.starts_at
    assert vevent["URL"] == settings.SITE_URL + event.get_absolute_url()


# A reader's own link.


def test_a_reader_link_shows_the_event_and_does_not_answer_on_get(client):
    reader = make_subscriber("reader@example.jp")
    event = make_event()
    url = rsvp_links.rsvp_link_url(reader, event)
    assert url.startswith("http")

    response = client.get(url)

    assert response.status_code == 200
    page = response.content.decode()
    assert event.title in page
    assert "reader@example.jp" in page
    assert 'value="attend"' in page and 'value="decline"' in page
    assert not Rsvp.objects.exists()


@pytest.mark.parametrize(
    ("answer", "heading", "state"),
    [("attend", "参加登録しました", "attending"), ("decline", "不参加を承りました", "declined")],
)
def test_a_reader_link_answers_on_post(client, answer, heading, state):
    reader = make_subscriber("reader@example.jp", name="読者 花子", organisation="某大学")
    event = make_event()
    response = client.post(rsvp_links.rsvp_link_url(reader, event), {"answer": answer}, follow=True)
    assert response.redirect_chain[0][1] == 302  # a refresh answers nothing
    assert heading in response.content.decode()
    saved = Rsvp.objects.get()
    assert (saved.subscriber, saved.email, saved.name, saved.organisation, saved.answer) == (
        reader,
        "reader@example.jp",
        "読者 花子",
        "某大学",
        state,
    )
    # Back on the link page, the current answer shows.
    page = client.get(rsvp_links.rsvp_link_url(reader, event)).content.decode()
    assert f"現在のご回答: {saved.get_answer_display()}" in page


def test_a_reader_link_for_a_closed_event_says_so(client):
    reader = make_subscriber()
    event = make_event(registration_deadline=timezone.now() - timedelta(minutes=1))
    url = rsvp_links.rsvp_link_url(reader, event)
    page = client.get(url).content.decode()
    assert "申込の受付は終了しました。" in page
    assert 'value="attend"' not in page
    response = client.post(url, {"answer": "attend"})
    assert response.status_code == 400
    assert not Rsvp.objects.exists()


def test_bad_reader_links_get_the_invalid_link_page(client):
    reader = make_subscriber()
    event = make_event()
    draft = make_event(slug="draft", status=Event.EventStatus.DRAFT, published_at=None)
    bad = [
        "not-a-token",
        rsvp_links.rsvp_link_url(reader, event).rstrip("/").rsplit("/", 1)[1] + "x",  # tampered
        tokens.make_token(reader, tokens.RSVP, "999999"),  # no such event
        tokens.make_token(reader, tokens.RSVP, "*"),  # not an event id
        tokens.make_token(reader, tokens.RSVP, str(draft.pk)),  # not public
        tokens.make_token(reader, tokens.UNSUBSCRIBE, str(event.pk)),  # another purpose
    ]
    for token in bad:
        for method in (client.get, client.post):
            response = method(reverse("rsvp_link", args=[token]), {"answer": "attend"})
            assert response.status_code == 404, token
            assert "このリンクは無効です" in response.content.decode()
    assert not Rsvp.objects.exists()


def test_a_reader_link_stops_working_once_the_reader_erased_their_data(client):
    from merumaga.subscribers import services as subscriber_services

    reader = make_subscriber()
    url = rsvp_links.rsvp_link_url(reader, make_event())
    subscriber_services.erase(reader, subscriber_services.Evidence(source="admin"))
    assert client.get(url).status_code == 404


def test_the_public_form_is_rate_limited_per_ip(
    client, settings, mailoutbox, inside_one_rate_window
):
    settings.RSVP_LIMIT_PER_IP = 2
    event = make_event()
    for n in range(2):
        assert post_answer(client, event, email=f"p{n}@example.jp").status_code == 302
    response = post_answer(client, event, email="p9@example.jp")
    assert response.status_code == 429
    page = response.content.decode()
    assert "しばらくしてから" in page and 'value="p9@example.jp"' in page


def test_the_link_in_ones_own_mail_gives_the_seat_back_to_the_waitlist(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    event = make_event(capacity=1)
    capture = django_capture_on_commit_callbacks
    request_and_confirm(client, event, capture, mailoutbox, email="first@example.jp")
    request_and_confirm(client, event, capture, mailoutbox, email="second@example.jp")
    seat_mail = next(m for m in mailoutbox if "参加登録を受け付けました" in m.subject)
    path = link_in(seat_mail, "events/answer")
    page = client.get(path)
    assert page.status_code == 200 and 'value="decline"' in page.content.decode()
    first = Rsvp.objects.get(email="first@example.jp")
    assert first.answer == Rsvp.Answer.ATTENDING  # GET: no change
    response = client.post(path, {"answer": "decline"}, follow=True)
    assert "不参加を承りました" in response.content.decode()
    assert Rsvp.objects.get(email="first@example.jp").answer == Rsvp.Answer.DECLINED
    assert Rsvp.objects.get(email="second@example.jp").answer == Rsvp.Answer.ATTENDING


def test_a_tampered_answer_link_is_404(client):
    event = make_event()
    reply = rsvp.answer(event, "own@example.jp", rsvp.ATTEND)
    path = rsvp_links.answer_link_url(reply).split("localhost:8000", 1)[1]
    assert client.post(path[:-3] + "xx/", {"answer": "decline"}).status_code == 404
    assert Rsvp.objects.get().answer == Rsvp.Answer.ATTENDING
