import re
from email import message_from_bytes, policy

import pytest
from django.test import Client
from django.urls import reverse

from merumaga.subscribers import tokens
from merumaga.subscribers.models import Subscriber
from merumaga.subscribers.tests.factories import ALL_TOPICS, make_subscriber, subscribed_keys

pytestmark = pytest.mark.django_db


def form_data(client, **overrides):
    """What a person's browser posts: the page's own hidden fields plus their answers."""
    page = client.get(reverse("subscribe")).content.decode()
    rendered_at = re.search(r'name="rendered_at" value="([^"]+)"', page).group(1)
    return {
        "email": "reader@example.jp",
        "name": "",
        "topics": ALL_TOPICS,
        "website": "",
        "rendered_at": rendered_at,
        **overrides,
    }


def without_csrf_token(content: bytes) -> bytes:
    # The page's CSRF token is masked afresh on every render; the rest must be identical.
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", content)


def without_own_address(content: bytes) -> bytes:
    """A page names its own address (canonical link, language links); the rest must be the same."""
    content = re.sub(
        rb'(href|content)="[^"]*/(confirm|preferences|unsubscribe)/[^"]*"', b"", content
    )
    return without_csrf_token(content)


@pytest.fixture(autouse=True)
def no_fill_time(settings):
    settings.SIGNUP_MIN_SECONDS = 0


def test_sign_up_page_offers_all_four_topics_checked_and_the_consent_wording(client):
    page = client.get(reverse("subscribe")).content.decode()
    for key in ALL_TOPICS:
        assert re.search(rf'value="{key}"[^>]*checked', page)
    assert "同意します" in page and "送信者" in page
    assert 'lang="ja"' in page


def test_sign_up_page_in_english(client):
    page = client.get(reverse("subscribe"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'lang="en"' in page and "Weekly report" in page


def test_sign_up_redirects_to_check_your_mail(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("subscribe"), form_data(client))
    assert response.status_code == 302 and response["Location"] == reverse("subscribe_done")
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING
    assert len(mailoutbox) == 1


def test_the_answer_does_not_tell_whether_an_address_is_known(client):
    make_subscriber("known@example.jp")
    make_subscriber("pending@example.jp", status=Subscriber.Status.PENDING)
    answers = set()
    for email in ["new@example.jp", "known@example.jp", "pending@example.jp"]:
        response = client.post(reverse("subscribe"), form_data(client, email=email), follow=True)
        body = without_csrf_token(response.content)
        answers.add((response.status_code, response.redirect_chain[0][0], body))
    assert len(answers) == 1


def test_confirmation_mail_never_echoes_the_entered_name(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("subscribe"), form_data(client, name="今すぐ当選金を受け取る"))
    message = message_from_bytes(mailoutbox[0].message().as_bytes(), policy=policy.default)
    assert "当選金" not in message.as_string()
    assert "当選金" not in message.get_body(("plain",)).get_content()


def test_honeypot_gets_the_same_answer_and_no_mail(client, mailoutbox):
    response = client.post(reverse("subscribe"), form_data(client, website="http://spam.example"))
    assert response.status_code == 302
    assert not Subscriber.objects.exists() and not mailoutbox


def test_too_fast_a_post_is_treated_as_automated(client, settings, mailoutbox):
    settings.SIGNUP_MIN_SECONDS = 3
    response = client.post(reverse("subscribe"), form_data(client))
    assert response.status_code == 302
    assert not Subscriber.objects.exists() and not mailoutbox


def test_a_post_without_render_stamp_is_treated_as_automated(client):
    data = form_data(client)
    del data["rendered_at"]
    client.post(reverse("subscribe"), data)
    assert not Subscriber.objects.exists()


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"email": "broken@"}, "形式が正しくありません"),
        ({"email": ""}, "このフィールドは必須です"),
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


def test_rate_limited_sign_up_says_so(client, settings):
    settings.SIGNUP_LIMIT_PER_IP = 1
    client.post(reverse("subscribe"), form_data(client, email="one@example.jp"))
    response = client.post(reverse("subscribe"), form_data(client, email="two@example.jp"))
    assert response.status_code == 429
    assert "しばらくしてから" in response.content.decode()


def test_get_on_the_confirm_link_does_not_confirm_and_post_does(client):
    reader = make_subscriber(status=Subscriber.Status.PENDING)
    url = reverse("confirm", args=[tokens.make_token(reader, tokens.CONFIRM)])
    page = client.get(url)
    assert page.status_code == 200 and "登録を確定する" in page.content.decode()
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.PENDING
    response = client.post(url)
    assert response.status_code == 200 and "登録が完了しました" in response.content.decode()
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED


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
    assert response.status_code == 200 and "保存しました" in response.content.decode()
    assert subscribed_keys(reader) == {"articles", "reports", "events"}
    reader.refresh_from_db()
    assert reader.charset == "iso-2022-jp"


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
    assert data.json()["name"] == "ダウンロード 太郎"
    assert client.get(reverse("erase", args=[token])).status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED  # a GET erases nothing
    client.post(reverse("erase", args=[token]))
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ERASED
    assert client.get(reverse("preferences", args=[token])).status_code == 404
