"""Answers to events: seats, waitlist, mails with the .ics, the calendar file, the CSV export."""

import re
import threading
from datetime import timedelta
from email import message_from_bytes, policy

import icalendar
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from merumaga.publishing import event_admin, ics, rsvp, services
from merumaga.publishing.models import Event, Rsvp
from merumaga.publishing.tasks_rsvp import build_rsvp_mail
from merumaga.subscribers import tokens
from merumaga.subscribers.models import Subscriber
from merumaga.subscribers.services import Evidence, InvalidInput
from merumaga.testing import TOKYO, make_event, make_subscriber

ATTENDING, WAITLISTED, DECLINED = (
    Rsvp.Answer.ATTENDING,
    Rsvp.Answer.WAITLISTED,
    Rsvp.Answer.DECLINED,
)


def parsed(message):
    """The mail exactly as it leaves: serialised, then read back by the standard library."""
    return message_from_bytes(message.message().as_bytes(), policy=policy.default)


def calendar_parts(message) -> list:
    return [part for part in message.walk() if part.get_content_type() == "text/calendar"]


def states(event: Event) -> list[tuple[str, str]]:
    return list(event.rsvps.order_by("requested_at", "id").values_list("email", "answer"))


@pytest.fixture
def mails(mailoutbox, django_capture_on_commit_callbacks):
    """The outbox, with each answer's on-commit mail sent (tasks run inline in tests)."""

    class Outbox:
        committing = staticmethod(lambda: django_capture_on_commit_callbacks(execute=True))

        def answer(self, *args, **kwargs):
            with django_capture_on_commit_callbacks(execute=True):
                return rsvp.answer(*args, **kwargs)

        @property
        def sent(self):
            return mailoutbox

    return Outbox()


# The rules.


@pytest.mark.django_db
def test_seats_then_waitlist_in_the_order_of_answering(mails):
    event = make_event(capacity=2)
    results = [mails.answer(event, f"p{n}@example.jp", rsvp.ATTEND) for n in range(4)]
    assert [r.answer for r in results] == [ATTENDING, ATTENDING, WAITLISTED, WAITLISTED]
    assert rsvp.seats_left(event) == 0
    subjects = [m.subject for m in mails.sent]
    assert ["参加登録を受け付けました" in s for s in subjects] == [True, True, False, False]
    assert all("キャンセル待ち" in s for s in subjects[2:])


@pytest.mark.django_db
def test_no_capacity_means_everyone_attends(mails):
    event = make_event(capacity=None)
    for n in range(12):
        assert mails.answer(event, f"p{n}@example.jp", rsvp.ATTEND).answer == ATTENDING
    assert rsvp.seats_left(event) is None


@pytest.mark.django_db
def test_declining_a_seat_promotes_the_earliest_waitlisted_and_mails_both(mails):
    event = make_event(capacity=1)
    mails.answer(event, "seat@example.jp", rsvp.ATTEND)
    mails.answer(event, "first@example.jp", rsvp.ATTEND)
    mails.answer(event, "second@example.jp", rsvp.ATTEND)
    # Make "second" the earlier request in time: the waitlist follows requested_at, not ids.
    Rsvp.objects.filter(email="second@example.jp").update(
        requested_at=timezone.now() - timedelta(hours=1)
    )
    mails.sent.clear()

    declined = mails.answer(event, "SEAT@Example.jp", rsvp.DECLINE)

    assert declined.answer == DECLINED
    assert dict(states(event)) == {
        "seat@example.jp": DECLINED,
        "second@example.jp": ATTENDING,
        "first@example.jp": WAITLISTED,
    }
    by_recipient = {m.to[0]: m for m in mails.sent}
    assert set(by_recipient) == {"seat@example.jp", "second@example.jp"}
    assert "不参加のご回答を承りました" in by_recipient["seat@example.jp"].subject
    promoted = parsed(by_recipient["second@example.jp"])
    assert "お席をご用意できました" in promoted["Subject"]
    assert len(calendar_parts(promoted)) == 1


@pytest.mark.django_db
def test_a_waitlisted_person_declining_frees_no_seat(mails):
    event = make_event(capacity=1)
    mails.answer(event, "seat@example.jp", rsvp.ATTEND)
    mails.answer(event, "waiting@example.jp", rsvp.ATTEND)
    mails.answer(event, "later@example.jp", rsvp.ATTEND)
    mails.answer(event, "waiting@example.jp", rsvp.DECLINE)
    assert dict(states(event)) == {
        "seat@example.jp": ATTENDING,
        "waiting@example.jp": DECLINED,
        "later@example.jp": WAITLISTED,
    }


@pytest.mark.django_db
def test_attending_twice_changes_nothing_and_sends_one_mail(mails):
    event = make_event(capacity=1)
    first = mails.answer(event, "once@example.jp", rsvp.ATTEND, name="一郎")
    again = mails.answer(event, "Once@example.jp", rsvp.ATTEND, name="別人")
    assert again.pk == first.pk
    assert again.requested_at == first.requested_at
    assert Rsvp.objects.get().name == "一郎"
    assert len(mails.sent) == 1
    # The same for someone waiting: a second click keeps their place in the queue.
    waiting = mails.answer(event, "wait@example.jp", rsvp.ATTEND)
    assert mails.answer(event, "wait@example.jp", rsvp.ATTEND).requested_at == waiting.requested_at
    assert len(mails.sent) == 2


@pytest.mark.django_db
def test_declining_twice_sends_one_mail(mails):
    event = make_event()
    mails.answer(event, "no@example.jp", rsvp.DECLINE)
    mails.answer(event, "no@example.jp", rsvp.DECLINE)
    assert len(mails.sent) == 1
    assert Rsvp.objects.get().answer == DECLINED


@pytest.mark.django_db
def test_coming_back_after_declining_joins_the_end_of_the_waitlist(mails):
    event = make_event(capacity=1)
    mails.answer(event, "a@example.jp", rsvp.ATTEND)
    mails.answer(event, "b@example.jp", rsvp.ATTEND)  # waits
    mails.answer(event, "a@example.jp", rsvp.DECLINE)  # b gets the seat
    back = mails.answer(event, "a@example.jp", rsvp.ATTEND)
    assert back.answer == WAITLISTED
    assert Rsvp.objects.get(email="b@example.jp").answer == ATTENDING


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"status": Event.EventStatus.DRAFT, "published_at": None}, "受け付けていません"),
        ({"status": Event.EventStatus.CANCELLED}, "中止"),
        ({"registration_deadline": timezone.now() - timedelta(minutes=1)}, "受付は終了"),
    ],
    ids=["draft", "cancelled", "deadline-passed"],
)
def test_answers_are_refused_when_the_event_takes_none(fields, message, mails):
    event = make_event(**fields)
    with pytest.raises(rsvp.RsvpError, match=message):
        mails.answer(event, "late@example.jp", rsvp.ATTEND)
    assert not Rsvp.objects.exists()
    assert mails.sent == []


@pytest.mark.django_db
def test_a_seat_can_be_given_back_after_the_deadline_until_the_event_starts(mails):
    event = make_event(capacity=1)
    mails.answer(event, "a@example.jp", rsvp.ATTEND)
    mails.answer(event, "b@example.jp", rsvp.ATTEND)
    Event.objects.filter(pk=event.pk).update(registration_deadline=timezone.now() - timedelta(1))
    event.refresh_from_db()
    assert mails.answer(event, "a@example.jp", rsvp.DECLINE).answer == DECLINED
    assert Rsvp.objects.get(email="b@example.jp").answer == ATTENDING
    Event.objects.filter(pk=event.pk).update(starts_at=timezone.now() - timedelta(minutes=1))
    event.refresh_from_db()
    with pytest.raises(rsvp.RsvpError, match="始まっています"):
        mails.answer(event, "b@example.jp", rsvp.DECLINE)


@pytest.mark.django_db
def test_without_a_deadline_answers_close_when_the_event_starts(mails):
    started = make_event(
        starts_at=timezone.now() - timedelta(minutes=5), ends_at=timezone.now() + timedelta(hours=1)
    )
    with pytest.raises(rsvp.RsvpError, match="受付は終了"):
        mails.answer(started, "late@example.jp", rsvp.ATTEND)
    open_until_start = make_event(slug="soon", starts_at=timezone.now() + timedelta(minutes=5))
    assert mails.answer(open_until_start, "ok@example.jp", rsvp.ATTEND).answer == ATTENDING


@pytest.mark.django_db
def test_a_cancelled_event_refuses_answers_even_after_it_was_open(mails):
    event = make_event()
    mails.answer(event, "early@example.jp", rsvp.ATTEND)
    services.cancel_event(event)
    with pytest.raises(rsvp.RsvpError):
        mails.answer(event, "early@example.jp", rsvp.DECLINE)
    assert Rsvp.objects.get().answer == ATTENDING


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("email", "name", "organisation", "answer", "message"),
    [
        ("not-an-address", "", "", rsvp.ATTEND, "メールアドレスの形式"),
        ("", "", "", rsvp.ATTEND, "メールアドレスを入力"),
        ("x@example.jp\r\nBcc: victim@example.com", "", "", rsvp.ATTEND, "メールアドレスの形式"),
        ("x@example.jp", "山田\r\nBcc: victim@example.com", "", rsvp.ATTEND, "お名前に改行"),
        ("x@example.jp", "", "研究所\n経理部", rsvp.ATTEND, "所属に改行"),
        ("x@example.jp", "名" * 101, "", rsvp.ATTEND, "100文字以内"),
        ("x@example.jp", "", "", "maybe", "参加する"),
    ],
    ids=["bad-email", "no-email", "crlf-email", "crlf-name", "lf-organisation", "long", "answer"],
)
def test_bad_input_is_refused_with_a_clear_message(
    email, name, organisation, answer, message, mails
):
    event = make_event()
    with pytest.raises(InvalidInput, match=message):
        mails.answer(event, email, answer, name=name, organisation=organisation)
    assert not Rsvp.objects.exists()
    assert mails.sent == []


@pytest.mark.django_db
def test_a_confirmed_reader_answering_on_the_form_is_linked(mails):
    reader = make_subscriber("reader@example.jp", language=Subscriber.Language.EN)
    event = make_event()
    answer = mails.answer(event, "Reader@Example.jp", rsvp.ATTEND, evidence=Evidence(source="form"))
    assert answer.subscriber == reader
    assert answer.email == "reader@example.jp"


@pytest.mark.django_db
def test_fill_free_seats_after_the_capacity_is_raised(mails):
    event = make_event(capacity=1)
    for n in range(4):
        mails.answer(event, f"p{n}@example.jp", rsvp.ATTEND)
    Event.objects.filter(pk=event.pk).update(capacity=3)
    mails.sent.clear()
    with mails.committing():
        promoted = rsvp.fill_free_seats(event)
    assert [r.email for r in promoted] == ["p1@example.jp", "p2@example.jp"]
    assert Rsvp.objects.filter(answer=WAITLISTED).get().email == "p3@example.jp"
    assert sorted(m.to[0] for m in mails.sent) == ["p1@example.jp", "p2@example.jp"]


@pytest.mark.django_db
def test_after_a_capacity_raise_those_waiting_come_before_a_newcomer(mails):
    event = make_event(capacity=1)
    mails.answer(event, "seat@example.jp", rsvp.ATTEND)
    mails.answer(event, "waiting@example.jp", rsvp.ATTEND)
    Event.objects.filter(pk=event.pk).update(capacity=2)  # no fill_free_seats: the admin forgot
    newcomer = mails.answer(event, "new@example.jp", rsvp.ATTEND)
    assert newcomer.answer == WAITLISTED
    assert Rsvp.objects.get(email="waiting@example.jp").answer == ATTENDING


# Concurrency: the capacity holds when everyone answers at once.


@pytest.mark.django_db(transaction=True)
def test_twenty_people_confirming_at_once_for_five_seats(mailoutbox):
    event = make_event(capacity=5)
    for number in range(20):  # each asked on the public form and got the link by mail
        rsvp.request_seat(event, f"p{number}@example.jp", name=f"参加者{number}")
    links = [re.search(r"http://\S+/events/confirm/\S+/", m.body).group(0) for m in mailoutbox]
    paths = [link.split("localhost:8000", 1)[1] for link in links]
    assert len(paths) == 20
    start = threading.Barrier(20)
    statuses, errors = [], []

    def confirm(path: str) -> None:
        try:
            client = Client()
            start.wait(timeout=10)
            statuses.append(client.post(path).status_code)
        except Exception as error:  # reported below: a thread's exception is otherwise lost
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=confirm, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert statuses == [302] * 20
    assert Rsvp.objects.filter(event=event, answer=ATTENDING).count() == 5
    assert Rsvp.objects.filter(event=event, answer=WAITLISTED).count() == 15
    # Whoever got a seat asked before everyone on the waitlist.
    last_seat = max(Rsvp.objects.filter(answer=ATTENDING).values_list("requested_at", flat=True))
    first_wait = min(Rsvp.objects.filter(answer=WAITLISTED).values_list("requested_at", flat=True))
    assert last_seat <= first_wait
    assert len(mailoutbox) == 40
    assert sum("参加登録を受け付けました" in m.subject for m in mailoutbox) == 5


# The mails.


@pytest.mark.django_db
def test_attending_mail_carries_the_event_as_ics_in_japan_time(mails):
    event = make_event(venue="本郷キャンパス 3号館")
    mails.answer(event, "guest@example.jp", rsvp.ATTEND, name="来場 花子")
    message = parsed(mails.sent[0])

    assert message["To"] == "guest@example.jp"
    assert "参加登録を受け付けました: 政策セミナー" in message["Subject"]
    # Someone who is not a reader: nothing to unsubscribe from, but the sender is named.
    assert message["List-Unsubscribe"] is None
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for part in (text, html):
        assert "来場 花子 様" in part
        assert "本郷キャンパス 3号館" in part
        assert "(日" in part and "14:00〜16:00" in part  # weekday, JST times
        assert "contact@example.jp" in part  # the sender's identity
        assert "/unsubscribe/" not in part
        assert event.get_absolute_url() in part

    [attachment] = calendar_parts(message)
    assert attachment.get_filename() == "event.ics"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_param("method") == "REQUEST"
    assert attachment.get_content_charset() == "utf-8"
    calendar = icalendar.Calendar.from_ical(attachment.get_content())
    [vevent] = calendar.events
    assert calendar["METHOD"] == "REQUEST"
    assert vevent.start == event.starts_at
    assert vevent.start.utcoffset() == timedelta(hours=9)
    assert (
        vevent["DTSTART"].to_ical()
        == event.starts_at.astimezone(TOKYO).strftime("%Y%m%dT%H%M%S").encode()
    )
    assert "mailto:guest@example.jp" in str(vevent["ATTENDEE"])


@pytest.mark.django_db
def test_waitlisted_and_declined_mails_have_no_calendar(mails):
    event = make_event(capacity=0)
    mails.answer(event, "wait@example.jp", rsvp.ATTEND)
    mails.answer(event, "no@example.jp", rsvp.DECLINE)
    waitlisted, declined = (parsed(m) for m in mails.sent)
    assert "キャンセル待ちで受け付けました" in waitlisted["Subject"]
    assert "お申し込み順にメールでご案内します" in waitlisted.get_body(("plain",)).get_content()
    assert "不参加のご回答を承りました" in declined["Subject"]
    assert calendar_parts(waitlisted) == calendar_parts(declined) == []


@pytest.mark.django_db
def test_a_readers_mail_has_their_links_language_and_charset(mails):
    reader = make_subscriber("carrier@docomo.ne.jp", charset=Subscriber.Charset.ISO2022JP)
    event = make_event()
    mails.answer(event, reader.email, rsvp.ATTEND, subscriber=reader)
    raw = mails.sent[0].message().as_bytes()
    assert max(raw) < 128  # 7-bit clean, as carrier mail needs
    message = message_from_bytes(raw, policy=policy.default)
    assert message.get_body(("plain",)).get_content_charset() == "iso-2022-jp"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_token = message["List-Unsubscribe"].strip("<> ").rstrip("/").rsplit("/", 1)[1]
    assert tokens.read_token(unsubscribe_token, tokens.UNSUBSCRIBE)[0] == reader
    text = message.get_body(("plain",)).get_content()
    assert "/preferences/" in text
    # The change link is the reader's own: no form to fill in.
    change = next(line for line in text.splitlines() if "/events/rsvp/" in line).strip()
    assert rsvp.read_rsvp_link(change.rstrip("/").rsplit("/", 1)[1]) == (reader, event)
    # The calendar stays UTF-8 whatever the mail's charset.
    [attachment] = calendar_parts(message)
    assert attachment.get_content_charset() == "utf-8"
    assert "政策セミナー" in attachment.get_content()


@pytest.mark.django_db
def test_a_non_reader_at_a_carrier_domain_gets_iso_2022_jp(mails):
    mails.answer(make_event(), "phone@ezweb.ne.jp", rsvp.ATTEND)
    assert mails.sent[0].encoding == "iso-2022-jp"


@pytest.mark.django_db
def test_a_mail_for_an_answer_changed_since_is_not_sent(mailoutbox):
    from merumaga.publishing import tasks_rsvp

    event = make_event()
    answer = rsvp.answer(event, "quick@example.jp", rsvp.ATTEND)  # mail not sent yet: no commit
    Rsvp.objects.filter(pk=answer.pk).update(answer=DECLINED)
    tasks_rsvp.send_rsvp_mail.call_local(answer.pk, "attending")
    assert mailoutbox == []
    tasks_rsvp.send_rsvp_mail.call_local(answer.pk, "declined")
    assert len(mailoutbox) == 1


@pytest.mark.django_db
def test_english_mail_for_an_english_reader():
    reader = make_subscriber("en@example.jp", language=Subscriber.Language.EN)
    event = make_event()
    answer = Rsvp.objects.create(
        event=event, email=reader.email, subscriber=reader, answer=ATTENDING
    )
    assert 'lang="en"' in build_rsvp_mail(answer, "attending").html


# The calendar file.


@pytest.mark.django_db
def test_public_calendar_file(settings):
    settings.SITE_URL = "https://www.example.org"
    event = make_event(online_url="https://meet.example.org/abc", description="説明。" * 600)
    calendar = icalendar.Calendar.from_ical(ics.event_calendar(event))

    assert calendar["VERSION"] == "2.0"
    assert calendar["PRODID"]
    assert calendar["METHOD"] == "PUBLISH"
    assert [tz.tz_name for tz in calendar.timezones] == ["Asia/Tokyo"]
    [vevent] = calendar.events
    assert vevent["UID"] == f"event-{event.pk}@www.example.org"
    assert vevent["DTSTAMP"]
    assert vevent["DTSTART"].params["TZID"] == "Asia/Tokyo"
    assert vevent.end - vevent.start == timedelta(hours=2)
    assert vevent["SUMMARY"] == "政策セミナー"
    assert vevent["LOCATION"] == "東京都千代田区 会議室A / https://meet.example.org/abc"
    assert vevent["URL"] == f"https://www.example.org{event.get_absolute_url()}"
    assert vevent["STATUS"] == "CONFIRMED"
    assert "ATTENDEE" not in vevent
    description = str(vevent["DESCRIPTION"])
    assert "<" not in description
    assert len(description) < ics.DESCRIPTION_MAX_CHARS + 100
    assert "…" in description  # cut, and says so
    assert description.endswith(vevent["URL"])


@pytest.mark.django_db
def test_calendar_description_is_plain_text_from_the_markdown():
    event = make_event(
        description="## 概要\n\n**強調** と [リンク](https://example.org) & <b>生</b>"
    )
    description = str(
        icalendar.Calendar.from_ical(ics.event_calendar(event)).events[0]["DESCRIPTION"]
    )
    assert description.startswith("概要\n\n強調 と リンク & <b>生</b>")


@pytest.mark.django_db
def test_the_uid_is_stable_and_cancellation_shows():
    event = make_event()
    before = icalendar.Calendar.from_ical(ics.event_calendar(event)).events[0]
    event = services.cancel_event(event)
    after = icalendar.Calendar.from_ical(ics.event_calendar(event)).events[0]
    assert before["UID"] == after["UID"]
    assert after["STATUS"] == "CANCELLED"
    assert after["SEQUENCE"] >= before["SEQUENCE"]


# The admin helpers.


@pytest.mark.django_db
def test_rsvp_counts(mails):
    event = make_event(capacity=2)
    for n in range(3):
        mails.answer(event, f"p{n}@example.jp", rsvp.ATTEND)
    mails.answer(event, "no@example.jp", rsvp.DECLINE)
    assert event_admin.rsvp_counts(event) == {
        "attending": 2,
        "waitlisted": 1,
        "declined": 1,
        "seats_left": 0,
    }
    assert event_admin.rsvp_counts(make_event(slug="open", capacity=None))["seats_left"] is None


@pytest.mark.django_db
def test_attendee_csv_is_excel_friendly_and_formula_safe(mails):
    event = make_event(capacity=1)
    mails.answer(
        event, "evil@example.jp", rsvp.ATTEND, name="=cmd|' /C calc'!A0", organisation="+1"
    )
    mails.answer(event, "next@example.jp", rsvp.ATTEND, name="次の 人", organisation="@SUM(1)")
    response = event_admin.attendee_csv_response(event)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="event-{event.pk}-attendees.csv"' in response["Content-Disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "name,organisation,email,answer,requested_at"
    assert lines[1].startswith("'=cmd|' /C calc'!A0,'+1,evil@example.jp,attending,")
    assert lines[2].startswith("次の 人,'@SUM(1),next@example.jp,waitlisted,")
    requested = Rsvp.objects.get(email="evil@example.jp").requested_at.astimezone(TOKYO)
    assert lines[1].endswith(requested.strftime("%Y-%m-%d %H:%M:%S"))


@pytest.mark.django_db
def test_calendar_description_keeps_lists_and_paragraphs_apart():
    event = make_event(description="前文。\n\n- 一つ目\n- 二つ目\n\n後文。")
    assert ics.plain_description(event) == "前文。\n\n・一つ目\n・二つ目\n\n後文。"
