import re
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from django.test import Client
from django.urls import resolve, reverse
from django.utils import timezone

from merumaga.subscribers import tokens
from merumaga.subscribers.models import Subscriber, UnsubscribeReason, address_hash
from merumaga.testing import ALL_TOPICS, make_subscriber, subscribed_keys

pytestmark = pytest.mark.django_db


def form_data(client, **overrides):
    """What a person's browser posts: the page's own hidden fields plus their answers."""
    page = client.get(reverse("subscribe")).content.decode()
    return {
        "email": "reader@example.jp",
        "name": "",
        "topics": ALL_TOPICS,
        "website": "",
        "stamp": stamp_of(page),
        **overrides,
    }


def stamp_of(page: str) -> str:
    return re.search(r'name="stamp" value="([^"]+)"', page).group(1)


def without_csrf_token(content: bytes) -> bytes:
    # The page's CSRF token is masked afresh on every render; the rest must be identical.
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", content)


def without_own_address(content: bytes) -> bytes:
    """A page names its own address (canonical link, language links); the rest must be the same."""
    content = re.sub(
        rb'(href|content)="[^"]*/(confirm|preferences|unsubscribe|subscribe)/[^"]*"', b"", content
    )
    return without_csrf_token(content)


def sign_up(client, **overrides):
    """Post the form as a person would, right after the page loaded; follow to the answer."""
    return client.post(reverse("subscribe"), form_data(client, **overrides), follow=True)


def test_sign_up_page_offers_all_four_topics_checked_and_the_consent_wording(client):
    page = client.get(reverse("subscribe")).content.decode()
    for key in ALL_TOPICS:
        assert re.search(rf'value="{key}"[^>]*checked', page)
    assert "同意します" in page and "送信者" in page
    assert 'lang="ja"' in page


def test_sign_up_page_in_english(client):
    page = client.get(reverse("subscribe"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'lang="en"' in page and "Weekly report" in page


def test_a_sign_up_at_once_after_the_page_loads_is_taken_and_says_where_the_mail_went(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = sign_up(client, email="quick@example.jp")
    url, status = response.redirect_chain[0]
    assert status == 302 and url == reverse("subscribe_done")
    page = response.content.decode()
    assert "quick@example.jp" in page and "宛にメールをお送りしました" in page
    assert "迷惑メールフォルダ" in page
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING
    assert [m.to for m in mailoutbox] == [["quick@example.jp"]]


def test_the_check_your_mail_page_shows_the_address_as_stored(client):
    page = sign_up(client, email="ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ").content.decode()
    assert "taro@example.jp" in page
    assert Subscriber.objects.get().email == "taro@example.jp"


def test_carrier_readers_are_told_about_the_domain_filter_naming_our_domain(client, settings):
    page = sign_up(client, email="keitai@docomo.ne.jp").content.decode()
    assert "ドメイン指定受信" in page and "<strong>example.jp</strong>" in page


def test_the_page_tells_the_truth_when_no_mail_went_out(client, mailoutbox):
    sign_up(client, email="twice@example.jp")
    page = sign_up(client, email="twice@example.jp").content.decode()
    assert "今回は新しいメールを送っていません" in page and "twice@example.jp" in page
    assert "宛にメールをお送りしました" not in page


def test_the_check_your_mail_page_shows_no_address_it_was_not_given(client):
    page = client.get(reverse("subscribe_done"), {"r": "forged<b>evil@example.jp</b>"})
    assert page.status_code == 200 and b"evil@example.jp" not in page.content


def test_the_address_rides_in_the_session_never_in_a_url(client):
    response = sign_up(client, email="private@example.jp")
    url, _status = response.redirect_chain[0]
    assert url == reverse("subscribe_done")  # nothing an access log would keep
    assert b"private@example.jp" in response.content
    again = client.get(reverse("subscribe_done"))
    assert b"private@example.jp" not in again.content  # said once


def test_the_answer_does_not_tell_whether_an_address_is_known(client):
    make_subscriber("known@example.jp")
    make_subscriber("pending@example.jp", status=Subscriber.Status.PENDING)
    answers = set()
    for email in ["new@example.jp", "known@example.jp", "pending@example.jp"]:
        response = sign_up(client, email=email)
        body = without_own_address(response.content).replace(email.encode(), b"ADDRESS")
        answers.add((response.status_code, body))
    assert len(answers) == 1


def test_confirmation_mail_never_echoes_the_entered_name(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sign_up(client, name="今すぐ当選金を受け取る")
    message = message_from_bytes(mailoutbox[0].message().as_bytes(), policy=policy.default)
    assert "当選金" not in message.as_string()
    assert "当選金" not in message.get_body(("plain",)).get_content()


def press_again(client, response):
    """What a person does with the form shown again: press the button on the page as it is."""
    page = response.content.decode()
    data = form_data(client, stamp=stamp_of(page))
    data["email"] = re.search(r'name="email" value="([^"]*)"', page).group(1)
    return client.post(reverse("subscribe"), data, follow=True)


def test_a_filled_hidden_field_shows_the_form_again_and_pressing_again_signs_up(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    response = client.post(
        reverse("subscribe"), form_data(client, email="autofill@example.jp", website="x")
    )
    assert (
        response.status_code == 200 and "もう一度「同意して登録する」" in response.content.decode()
    )
    assert 'value="autofill@example.jp"' in response.content.decode()
    assert not Subscriber.objects.exists() and not mailoutbox
    with django_capture_on_commit_callbacks(execute=True):
        press_again(client, response)
    assert Subscriber.objects.get().email == "autofill@example.jp" and len(mailoutbox) == 1


@pytest.mark.parametrize("stamp", [None, "forged", "WyJ4IiwxXQ:1aaaaa:bad"])
def test_a_post_without_a_good_stamp_gets_a_next_step_not_a_discard(client, stamp):
    data = form_data(client, email="late@example.jp")
    if stamp is None:
        del data["stamp"]
    else:
        data["stamp"] = stamp
    response = client.post(reverse("subscribe"), data)
    assert (
        response.status_code == 200 and "もう一度「同意して登録する」" in response.content.decode()
    )
    assert not Subscriber.objects.exists()
    press_again(client, response)
    assert Subscriber.objects.get().email == "late@example.jp"


def test_a_stamp_older_than_a_day_gets_a_next_step(client, time_machine):
    time_machine.move_to("2026-12-07 09:00 +09:00", tick=False)
    data = form_data(client, email="slow@example.jp")
    time_machine.shift(timedelta(days=1, seconds=1))
    response = client.post(reverse("subscribe"), data)
    assert "時間がたったため" in response.content.decode()
    assert not Subscriber.objects.exists()


def test_a_stamp_is_good_for_one_sign_up(client):
    data = form_data(client, email="first@example.jp")
    client.post(reverse("subscribe"), data)
    response = client.post(reverse("subscribe"), {**data, "email": "second@example.jp"})
    assert "すでに送信されています" in response.content.decode()
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["first@example.jp"]


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"email": "broken@"}, "形式が正しくありません"),
        ({"email": ""}, "メールアドレスを入力してください"),
        ({"email": "テスト@example.jp"}, "半角英数字"),
        ({"topics": []}, "一つ以上選んでください"),
        ({"topics": ["weekly", "nonsense"]}, "nonsense"),
        ({"name": "a\nb"}, "改行"),
        ({"name": "x" * 300}, "100"),
    ],
)
def test_bad_input_shows_the_form_again_with_a_message(client, overrides, message):
    response = client.post(reverse("subscribe"), form_data(client, **overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Subscriber.objects.exists()


def test_rate_limited_sign_up_says_so_and_keeps_the_answers(
    client, settings, inside_one_rate_window
):
    settings.SIGNUP_LIMIT_PER_IP = 1
    sign_up(client, email="one@example.jp")
    response = client.post(reverse("subscribe"), form_data(client, email="two@example.jp"))
    assert response.status_code == 429
    page = response.content.decode()
    assert "しばらくしてから" in page and 'value="two@example.jp"' in page


def test_get_on_the_confirm_link_does_not_confirm_and_post_does(client):
    reader = make_subscriber(status=Subscriber.Status.PENDING, topics=["weekly", "events"])
    url = reverse("confirm", args=[tokens.make_token(reader, tokens.CONFIRM)])
    page = client.get(url)
    assert page.status_code == 200 and "登録を確定する" in page.content.decode()
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.PENDING
    response = client.post(url, {"topics": ["weekly", "events"], "name": ""})
    assert response.status_code == 302 and response["Location"] == url
    assert "登録が完了しました" in client.get(url).content.decode()
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED


def test_the_confirm_page_shows_the_request_and_lets_its_owner_change_it(client):
    reader = make_subscriber(
        status=Subscriber.Status.PENDING, topics=["weekly"], name="だれかが入力した名前"
    )
    url = reverse("confirm", args=[tokens.make_token(reader, tokens.CONFIRM)])
    page = client.get(url).content.decode()
    assert re.search(r'value="weekly"[^>]*checked', page)
    assert not re.search(r'value="events"[^>]*checked', page)
    assert 'value="だれかが入力した名前"' in page
    client.post(url, {"topics": ["events"], "name": "本人"})
    reader.refresh_from_db()
    assert reader.name == "本人" and subscribed_keys(reader) == {"events"}


def test_confirming_with_nothing_chosen_says_so_and_confirms_nothing(client):
    reader = make_subscriber(status=Subscriber.Status.PENDING, topics=["weekly"])
    url = reverse("confirm", args=[tokens.make_token(reader, tokens.CONFIRM)])
    response = client.post(url, {"name": ""})
    assert response.status_code == 400 and "一つ以上" in response.content.decode()
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.PENDING


def test_bad_links_all_get_the_same_404(client):
    reader = make_subscriber()
    revoked = tokens.make_token(reader, tokens.PREFERENCES)
    reader.nonce = "new"
    reader.save()
    bodies = set()
    for url in [
        reverse("confirm", args=["garbage"]),
        reverse("preferences", args=[revoked]),
        reverse("unsubscribe", args=[tokens.make_token(reader, tokens.PREFERENCES)]),
        reverse("preferences_data", args=["x:y:z"]),
    ]:
        response = client.get(url)
        assert response.status_code == 404
        bodies.add(without_own_address(response.content))
    assert len(bodies) == 1
    assert "このリンクは無効です" in bodies.pop().decode()


def one_click_client():
    # Mailbox providers send no cookie and no CSRF token.
    return Client(enforce_csrf_checks=True)


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_rfc8058_one_click_post_unsubscribes_from_that_topic(encoding):
    reader = make_subscriber()
    url = reverse("unsubscribe", args=[tokens.make_token(reader, tokens.UNSUBSCRIBE, "weekly")])
    if encoding == "urlencoded":
        response = one_click_client().post(
            url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
        )
    else:
        response = one_click_client().post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert subscribed_keys(reader) == {"articles", "reports", "events"}


def test_after_unsubscribing_one_optional_question_kept_without_the_reader(client):
    reader = make_subscriber()
    token = tokens.make_token(reader, tokens.UNSUBSCRIBE, "weekly")
    page = client.post(reverse("unsubscribe", args=[token]) + "?m=7").content.decode()
    assert "よろしければ理由をお聞かせください" in page
    answer_url = reverse("unsubscribe_reason", args=[token])
    assert f'action="{answer_url}"' in page

    assert client.post(answer_url, {"reason": "made-up"}).status_code == 400  # not offered
    assert client.post(answer_url, {"reason": "too_many"}).status_code == 200
    assert client.post(answer_url, {"reason": "not_relevant"}).status_code == 200  # changed
    [answer] = UnsubscribeReason.objects.all()
    assert (answer.topic.key, answer.reason) == ("weekly", "not_relevant")
    assert answer.answered_on == timezone.localdate()  # the day only: no time to match
    # A reader who still receives what the link stops has not unsubscribed: no answer.
    other = make_subscriber("other@example.jp")
    still = tokens.make_token(other, tokens.UNSUBSCRIBE, "weekly")
    response = client.post(reverse("unsubscribe_reason", args=[still]), {"reason": "other"})
    assert response.status_code == 400 and UnsubscribeReason.objects.count() == 1
    assert reader.email not in str(UnsubscribeReason.objects.values().get())
    forged = reverse("unsubscribe_reason", args=[token[:-2] + "xx"])
    assert client.post(forged, {"reason": "other"}).status_code == 404  # as every bad link
    assert UnsubscribeReason.objects.count() == 1


def test_get_on_the_unsubscribe_link_only_shows_a_button():
    reader = make_subscriber()
    url = reverse("unsubscribe", args=[tokens.make_token(reader, tokens.UNSUBSCRIBE, "weekly")])
    response = one_click_client().get(url)
    assert response.status_code == 200 and "配信を停止する" in response.content.decode()
    assert subscribed_keys(reader) == set(ALL_TOPICS)


def test_unsubscribe_everything_link():
    reader = make_subscriber()
    url = reverse("unsubscribe", args=[tokens.make_token(reader, tokens.UNSUBSCRIBE)])
    one_click_client().post(url, {"List-Unsubscribe": "One-Click"})
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED


def test_preferences_turn_off_weekly_and_keep_the_rest(client):
    reader = make_subscriber()
    url = reverse("preferences", args=[tokens.make_token(reader, tokens.PREFERENCES)])
    page = client.get(url).content.decode()
    assert reader.email in page
    response = client.post(
        url,
        {"topics": ["articles", "reports", "events"], "language": "ja", "charset": "iso-2022-jp"},
    )
    assert response.status_code == 302 and response["Location"] == url  # a refresh re-posts nothing
    assert "保存しました" in client.get(url).content.decode()
    assert "保存しました" not in client.get(url).content.decode()  # said once
    assert subscribed_keys(reader) == {"articles", "reports", "events"}
    reader.refresh_from_db()
    assert reader.charset == "iso-2022-jp"


def test_preferences_change_the_name(client):
    reader = make_subscriber(name="旧姓 花子")
    url = reverse("preferences", args=[tokens.make_token(reader, tokens.PREFERENCES)])
    assert 'value="旧姓 花子"' in client.get(url).content.decode()
    client.post(
        url, {"name": "新姓 花子", "topics": ALL_TOPICS, "language": "ja", "charset": "utf-8"}
    )
    reader.refresh_from_db()
    assert reader.name == "新姓 花子"
    assert reader.consent_records.filter(action="change").exists()


def test_a_bad_name_is_refused_and_the_answers_stay_on_the_page(client):
    reader = make_subscriber(name="本人")
    url = reverse("preferences", args=[tokens.make_token(reader, tokens.PREFERENCES)])
    response = client.post(
        url, {"name": "x" * 101, "topics": ["weekly"], "language": "en", "charset": "utf-8"}
    )
    assert response.status_code == 400 and "100" in response.content.decode()
    assert re.search(r'value="weekly"[^>]*checked', response.content.decode())
    reader.refresh_from_db()
    assert reader.name == "本人" and reader.language == "ja"


def is_preferences_page_of(reader, url: str) -> bool:
    # Tokens carry the second they were signed in: compare whom they name, not their text.
    match = resolve(url)
    owner, _scope = tokens.read_token(match.kwargs["token"], tokens.PREFERENCES)
    return match.url_name == "preferences" and owner == reader


def change_address(client, reader, new_email):
    token = tokens.make_token(reader, tokens.PREFERENCES)
    return client.post(reverse("preferences_address", args=[token]), {"email": new_email})


def test_an_address_change_takes_effect_only_once_the_new_address_confirms_it(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    reader = make_subscriber("old@example.jp", name="読者")
    preferences_url = reverse("preferences", args=[tokens.make_token(reader, tokens.PREFERENCES)])
    with django_capture_on_commit_callbacks(execute=True):
        response = change_address(client, reader, "ｎｅｗ＠ｅｘａｍｐｌｅ．ｊｐ")
    assert response.status_code == 302 and response["Location"] == preferences_url
    assert (
        "new@example.jp に確認メールをお送りしました"
        in client.get(preferences_url).content.decode()
    )
    reader.refresh_from_db()
    assert reader.email == "old@example.jp"
    [confirmation] = mailoutbox
    assert confirmation.to == ["new@example.jp"]
    # The new address has not proven it is the reader's: nothing in it acts for the reader.
    assert "/preferences/WzE" not in confirmation.body and "/unsubscribe/" not in confirmation.body
    assert "List-Unsubscribe" not in confirmation.message().as_string()
    link = re.search(r"http://\S+/preferences/address/\S+/", confirmation.body).group(0)
    page = client.get(link)
    assert "old@example.jp から new@example.jp に変更します" in page.content.decode()
    reader.refresh_from_db()
    assert reader.email == "old@example.jp"  # opening the link changes nothing

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(link)
    assert response.status_code == 302 and is_preferences_page_of(reader, response["Location"])
    reader.refresh_from_db()
    assert reader.email == "new@example.jp"
    assert reader.address_hash == address_hash("new@example.jp")
    record = reader.consent_records.filter(action="change").get()
    assert "old@example.jp から new@example.jp" in record.wording
    notice = mailoutbox[-1]
    assert notice.to == ["old@example.jp"] and "new@example.jp" in notice.body
    assert "/preferences/" not in notice.body and "/unsubscribe/" not in notice.body
    # Links in mails sent before the change no longer act for the reader.
    assert client.get(preferences_url).status_code == 404


def test_only_the_latest_change_of_address_can_be_confirmed(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    reader = make_subscriber("me@example.jp")
    with django_capture_on_commit_callbacks(execute=True):
        change_address(client, reader, "typo@exmaple.jp")
        change_address(client, reader, "right@example.jp")
    typo_link, right_link = (
        re.search(r"http://\S+/preferences/address/\S+/", mail.body).group(0) for mail in mailoutbox
    )
    response = client.post(typo_link)
    assert response.status_code == 400 and "無効になりました" in response.content.decode()
    reader.refresh_from_db()
    assert reader.email == "me@example.jp" and reader.pending_email == "right@example.jp"
    client.post(right_link)
    reader.refresh_from_db()
    assert reader.email == "right@example.jp" and reader.pending_email == ""


def test_a_readers_event_answers_follow_them_to_the_new_address(client):
    from merumaga.publishing import rsvp
    from merumaga.publishing.models import Rsvp
    from merumaga.testing import make_event

    reader = make_subscriber("old@example.jp")
    rsvp.answer(make_event(), "old@example.jp", rsvp.ATTEND, subscriber=reader)
    Subscriber.objects.filter(pk=reader.pk).update(pending_email="new@example.jp")
    token = tokens.make_token(reader, tokens.ADDRESS, "new@example.jp")
    client.post(reverse("confirm_address", args=[token]))
    answer = Rsvp.objects.get()
    assert answer.email == "new@example.jp" and answer.subscriber == reader


def test_an_address_used_by_another_reader_is_refused_at_confirmation(client):
    reader = make_subscriber("me@example.jp", pending_email="taken@example.jp")
    make_subscriber("taken@example.jp")
    token = tokens.make_token(reader, tokens.ADDRESS, "taken@example.jp")
    response = client.post(reverse("confirm_address", args=[token]))
    assert response.status_code == 400 and "別の登録で使われています" in response.content.decode()
    reader.refresh_from_db()
    assert reader.email == "me@example.jp"


@pytest.mark.parametrize(
    "new_email,message",
    [
        ("broken@", "形式が正しくありません"),
        ("me@example.jp", "同じ"),
        ("読者@example.jp", "半角英数字"),
    ],
)
def test_a_bad_new_address_says_why_and_keeps_what_was_typed(
    client, mailoutbox, new_email, message
):
    reader = make_subscriber("me@example.jp")
    response = change_address(client, reader, new_email)
    page = response.content.decode()
    assert response.status_code == 400 and message in page and f'value="{new_email}"' in page
    assert not mailoutbox


def test_an_address_confirmation_link_expires(client, settings, time_machine):
    time_machine.move_to("2026-12-07 09:00 +09:00", tick=False)
    reader = make_subscriber("me@example.jp")
    token = tokens.make_token(reader, tokens.ADDRESS, "new@example.jp")
    time_machine.shift(timedelta(days=settings.CONFIRMATION_MAX_AGE_DAYS, seconds=1))
    assert client.post(reverse("confirm_address", args=[token])).status_code == 404
    reader.refresh_from_db()
    assert reader.email == "me@example.jp"


def test_unsubscribe_by_address_mails_a_one_click_stop_link(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    reader = make_subscriber("lost-link@example.jp")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("stop_by_address"), {"email": "Lost-Link@Example.JP"})
    assert response.status_code == 302
    assert "lost-link@example.jp" in client.get(response["Location"]).content.decode()
    [mail] = mailoutbox
    assert mail.to == ["lost-link@example.jp"]
    link = re.search(r"http://\S+/unsubscribe/\S+/", mail.body).group(0)
    one_click_client().post(link, {"List-Unsubscribe": "One-Click"})
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED


def test_unsubscribe_by_address_answers_the_same_for_any_address(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    make_subscriber("reader@example.jp")
    make_subscriber("pending@example.jp", status=Subscriber.Status.PENDING)
    answers = set()
    for email in ["reader@example.jp", "stranger@example.jp", "pending@example.jp"]:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("stop_by_address"), {"email": email}, follow=True)
        answers.add((response.status_code, response.content.replace(email.encode(), b"X")))
    assert len(answers) == 1
    assert [mail.to for mail in mailoutbox] == [["reader@example.jp"]]


def test_unsubscribe_by_address_mails_one_address_at_most_three_times_an_hour(
    client, mailoutbox, inside_one_rate_window, django_capture_on_commit_callbacks
):
    make_subscriber("reader@example.jp")
    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            client.post(reverse("stop_by_address"), {"email": "reader@example.jp"})
    assert len(mailoutbox) == 3


def test_unsubscribe_by_address_refuses_a_malformed_address_with_a_message(client):
    response = client.post(reverse("stop_by_address"), {"email": "not an address"})
    assert response.status_code == 400 and "形式が正しくありません" in response.content.decode()


def test_a_broken_link_leads_to_unsubscribe_by_address(client):
    page = client.get(reverse("unsubscribe", args=["garbage"])).content.decode()
    assert reverse("stop_by_address") in page


def test_preferences_stop_everything(client):
    reader = make_subscriber()
    url = reverse("preferences", args=[tokens.make_token(reader, tokens.PREFERENCES)])
    client.post(url, {"topics": ALL_TOPICS, "language": "ja", "charset": "utf-8", "stop_all": "1"})
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED and subscribed_keys(reader) == set()


def test_preferences_reject_an_unknown_charset(client):
    reader = make_subscriber()
    url = reverse("preferences", args=[tokens.make_token(reader, tokens.PREFERENCES)])
    response = client.post(url, {"topics": ["weekly"], "language": "ja", "charset": "cp932"})
    assert response.status_code == 400
    assert subscribed_keys(reader) == set(ALL_TOPICS)


def test_download_my_data_and_erase(client):
    reader = make_subscriber(name="ダウンロード 太郎")
    token = tokens.make_token(reader, tokens.PREFERENCES)
    data = client.get(reverse("preferences_data", args=[token]))
    assert data["Content-Disposition"].startswith("attachment")
    assert data["Content-Type"] == "application/json; charset=utf-8"
    assert "ダウンロード 太郎".encode() in data.content and b"\\u" not in data.content
    assert data.json()["name"] == "ダウンロード 太郎"
    assert data.json()["created_at"].endswith("+09:00")
    assert client.get(reverse("erase", args=[token])).status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED  # a GET erases nothing
    response = client.post(reverse("erase", args=[token]), follow=True)
    assert response.redirect_chain == [(reverse("erased"), 302)]
    assert "登録データを削除しました" in response.content.decode()
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ERASED
    assert client.get(reverse("preferences", args=[token])).status_code == 404


def test_the_confirm_link_of_a_reader_who_left_offers_what_was_asked_for(client):
    reader = make_subscriber("back@example.jp", status=Subscriber.Status.UNSUBSCRIBED, topics=[])
    url = reverse("confirm", args=[tokens.make_token(reader, tokens.CONFIRM, "reports,events")])
    page = client.get(url).content.decode()
    assert re.search(r'value="reports"[^>]*checked', page)
    assert not re.search(r'value="weekly"[^>]*checked', page)
    client.post(url, {"topics": ["reports"], "name": ""})
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED and subscribed_keys(reader) == {"reports"}


def test_one_address_gets_few_unasked_mails_a_day_whatever_the_form(
    client, mailoutbox, inside_one_rate_window, django_capture_on_commit_callbacks, time_machine
):
    """Stop links, change-of-address links and event confirmations share one daily budget per
    address, so that the hourly limits of each cannot add up to a flood."""
    from merumaga.publishing import rsvp
    from merumaga.subscribers import services
    from merumaga.testing import make_event

    target = make_subscriber("target@example.jp")
    someone = make_subscriber("someone@example.jp")
    events = [make_event(slug=f"event-{n}") for n in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        for event in events:  # three events, each within its own hourly limit
            rsvp.request_seat(event, "target@example.jp", name="x")
        for _ in range(3):
            client.post(reverse("stop_by_address"), {"email": "target@example.jp"})
        time_machine.shift(timedelta(hours=1))  # the hourly limits start again; the day's not
        for _ in range(2):
            client.post(reverse("stop_by_address"), {"email": "target@example.jp"})
        with pytest.raises(services.TooManyRequests):
            services.request_address_change(someone, "target@example.jp", services.Evidence("x"))
    assert sum(mail.to == [target.email] for mail in mailoutbox) == services.UNASKED_MAILS_PER_DAY
