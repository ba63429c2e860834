import re
from datetime import timedelta

import pytest
from django.utils import timezone

from merumaga.subscribers import services, tokens
from merumaga.subscribers.models import ConsentRecord, Subscriber, Suppression, address_hash
from merumaga.testing import ALL_TOPICS, make_subscriber, subscribed_keys

pytestmark = pytest.mark.django_db

FORM = services.Evidence(source="form", ip_address="192.0.2.10", user_agent="pytest")


def subscribe(email="new@example.jp", topics=ALL_TOPICS, **kwargs):
    return services.request_subscription(email, topics, FORM, **kwargs)


def test_sign_up_is_pending_with_consent_record_and_confirmation_mail(
    mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        outcome = subscribe(" New@Example.JP ", ["weekly", "events"], name="山田 花子")
    subscriber = Subscriber.objects.get(email="new@example.jp")
    assert outcome is services.SignupOutcome.CONFIRMATION_SENT
    assert subscriber.status == Subscriber.Status.PENDING
    assert subscribed_keys(subscriber) == {"weekly", "events"}
    record = subscriber.consent_records.get()
    assert (record.action, record.source, record.ip_address) == ("subscribe", "form", "192.0.2.10")
    assert record.topics == ["events", "weekly"]
    assert "同意します" in record.wording and record.wording_version
    assert [m.to for m in mailoutbox] == [["new@example.jp"]]


def test_at_most_one_confirmation_mail_per_day(mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert subscribe() is services.SignupOutcome.CONFIRMATION_SENT
        assert subscribe() is services.SignupOutcome.MAIL_WITHHELD
    assert len(mailoutbox) == 1
    Subscriber.objects.update(confirmation_sent_at=timezone.now() - timedelta(hours=25))
    with django_capture_on_commit_callbacks(execute=True):
        assert subscribe() is services.SignupOutcome.CONFIRMATION_SENT
    assert len(mailoutbox) == 2


def test_sign_up_of_a_confirmed_address_changes_nothing_and_mails_the_owner(
    mailoutbox, django_capture_on_commit_callbacks
):
    reader = make_subscriber("known@example.jp", topics=["weekly"], name="本人")
    with django_capture_on_commit_callbacks(execute=True):
        outcome = subscribe("known@example.jp", ALL_TOPICS, name="他人")
    reader.refresh_from_db()
    assert outcome is services.SignupOutcome.REMINDER_SENT
    assert reader.status == Subscriber.Status.CONFIRMED
    assert reader.name == "本人"
    assert subscribed_keys(reader) == {"weekly"}
    assert "すでにご登録" in mailoutbox[0].subject


def test_a_sign_up_for_a_reader_who_left_changes_nothing_until_they_confirm(
    mailoutbox, django_capture_on_commit_callbacks
):
    reader = make_subscriber(
        "back@example.jp", status=Subscriber.Status.UNSUBSCRIBED, topics=[], name="本人"
    )
    with django_capture_on_commit_callbacks(execute=True):
        outcome = subscribe("back@example.jp", ["articles"], name="だれか")
    reader.refresh_from_db()
    assert outcome is services.SignupOutcome.CONFIRMATION_SENT
    # Whoever typed the address may not own it: the reader keeps their name, settings and
    # preferences page; the link in the mail offers what was asked for.
    assert reader.status == Subscriber.Status.UNSUBSCRIBED and reader.name == "本人"
    assert subscribed_keys(reader) == set()
    token = re.search(r"/confirm/(\S+)/", mailoutbox[0].body).group(1)
    assert tokens.read_token(token, tokens.CONFIRM) == (reader, "articles")
    services.update_preferences(reader, ["weekly"], FORM)  # not locked out
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED


def test_a_reader_who_left_comes_back_by_confirming():
    reader = make_subscriber("back@example.jp", status=Subscriber.Status.UNSUBSCRIBED, topics=[])
    assert services.confirm(reader, FORM, topic_keys=["articles"], name="本人")
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED and reader.unsubscribed_at is None
    assert subscribed_keys(reader) == {"articles"}


def test_confirming_lifts_a_bounce_or_complaint_suppression_on_the_audit_trail():
    from merumaga.bounces.models import SuppressionChange

    reader = make_subscriber("once-bounced@example.jp", status=Subscriber.Status.PENDING)
    Suppression.objects.create(address_hash=reader.address_hash, reason="hard_bounce")
    services.confirm(reader, FORM, topic_keys=["weekly"])
    assert not Suppression.objects.filter(address_hash=reader.address_hash).exists()
    change = SuppressionChange.objects.get()
    assert change.action == "lifted" and "owner confirmed" in change.reason


@pytest.mark.parametrize(
    "email,topics,name,message",
    [
        ("not-an-address", ALL_TOPICS, "", "形式"),
        ("a@example.jp\r\nBcc: x@example.com", ALL_TOPICS, "", "形式"),
        ("a@example.jp", ["weekly", "spam"], "", "spam"),
        ("a@example.jp", [], "", "一つ以上"),
        ("a@example.jp", ALL_TOPICS, "名前\r\nBcc: victim@example.com", "改行"),
        ("a@example.jp", ALL_TOPICS, "長" * 101, "100文字"),
    ],
)
def test_bad_input_is_refused_with_a_reason_and_writes_nothing(email, topics, name, message):
    with pytest.raises(services.InvalidInput, match=message):
        subscribe(email, topics, name=name)
    assert not Subscriber.objects.exists()
    assert not ConsentRecord.objects.exists()


def test_a_full_width_address_is_stored_as_the_same_address_in_ascii():
    subscribe("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ")
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["taro@example.jp"]


@pytest.mark.parametrize("email", ["テスト@example.jp", "taro@例え.jp", "taro@xn--r8jz45g.jp"])
def test_an_address_our_mail_cannot_reach_is_refused_with_a_reason(email):
    with pytest.raises(services.InvalidInput, match="半角英数字"):
        subscribe(email)
    assert not Subscriber.objects.exists()


def test_a_second_request_does_not_rewrite_a_pending_one(
    mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        subscribe("owner@example.jp", ["weekly"], name="本人")
    Subscriber.objects.update(confirmation_sent_at=timezone.now() - timedelta(hours=25))
    with django_capture_on_commit_callbacks(execute=True):
        outcome = subscribe("owner@example.jp", ALL_TOPICS, name="今すぐ当選金を受け取る")
    reader = Subscriber.objects.get()
    assert outcome is services.SignupOutcome.CONFIRMATION_SENT  # the link again, same request
    assert reader.name == "本人" and subscribed_keys(reader) == {"weekly"}
    assert all("当選金" not in mail.message().as_string() for mail in mailoutbox)


def test_a_pending_request_whose_link_expired_is_replaced(settings):
    subscribe("late@example.jp", ["weekly"], name="古い")
    Subscriber.objects.update(
        confirmation_sent_at=timezone.now()
        - timedelta(days=settings.CONFIRMATION_MAX_AGE_DAYS, minutes=1)
    )
    subscribe("late@example.jp", ["events"], name="新しい")
    reader = Subscriber.objects.get()
    assert reader.name == "新しい" and subscribed_keys(reader) == {"events"}


def test_the_owner_confirms_with_their_own_choice_of_mailings_and_name():
    subscribe("owner@example.jp", ALL_TOPICS, name="他人が入力した名前")
    reader = Subscriber.objects.get()
    assert services.confirm(reader, FORM, topic_keys=["reports"], name="本人")
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED and reader.name == "本人"
    assert subscribed_keys(reader) == {"reports"}
    assert reader.consent_records.get(action="confirm").topics == ["reports"]


def test_confirming_with_no_mailing_is_refused_and_changes_nothing():
    subscribe("owner@example.jp", ["weekly"])
    reader = Subscriber.objects.get()
    with pytest.raises(services.InvalidInput, match="一つ以上"):
        services.confirm(reader, FORM, topic_keys=[], name="")
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.PENDING and subscribed_keys(reader) == {"weekly"}


def test_rate_limit_per_address(settings, inside_one_rate_window):
    settings.SIGNUP_LIMIT_PER_ADDRESS = 2
    subscribe()
    subscribe()
    with pytest.raises(services.TooManyRequests):
        subscribe()


def test_rate_limit_per_ip_counts_across_addresses(settings, inside_one_rate_window):
    settings.SIGNUP_LIMIT_PER_IP = 3
    for n in range(3):
        subscribe(f"reader{n}@example.jp")
    with pytest.raises(services.TooManyRequests):
        subscribe("reader9@example.jp")
    # Another IP is not affected.
    services.request_subscription(
        "other@example.jp", ALL_TOPICS, services.Evidence(source="form", ip_address="192.0.2.99")
    )


def test_rate_limit_per_domain(settings, inside_one_rate_window):
    settings.SIGNUP_LIMIT_PER_DOMAIN = 2
    subscribe("a@flood.example")
    subscribe("b@flood.example")
    with pytest.raises(services.TooManyRequests):
        services.request_subscription(
            "c@flood.example", ALL_TOPICS, services.Evidence(source="form", ip_address="192.0.2.7")
        )


def test_confirm_once_records_consent_and_sends_welcome(
    mailoutbox, django_capture_on_commit_callbacks
):
    reader = make_subscriber("p@example.jp", status=Subscriber.Status.PENDING, topics=["weekly"])
    with django_capture_on_commit_callbacks(execute=True):
        assert services.confirm(reader, FORM, "確認しました") is True
        assert services.confirm(reader, FORM, "確認しました") is False
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED and reader.confirmed_at
    assert reader.consent_records.filter(action="confirm").count() == 1
    assert len(mailoutbox) == 1 and "完了" in mailoutbox[0].subject
    assert "週報" in mailoutbox[0].body


def test_turning_off_one_topic_keeps_the_others():
    reader = make_subscriber()
    services.update_preferences(reader, ["articles", "reports", "events"], FORM)
    assert subscribed_keys(reader) == {"articles", "reports", "events"}
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED
    assert reader.consent_records.filter(action="change").exists()


def test_no_topics_left_means_unsubscribed_and_back_on_means_confirmed():
    reader = make_subscriber()
    reader = services.update_preferences(reader, [], FORM)
    assert reader.status == Subscriber.Status.UNSUBSCRIBED and reader.unsubscribed_at
    reader = services.update_preferences(reader, ["weekly"], FORM, language="en")
    assert reader.status == Subscriber.Status.CONFIRMED
    assert reader.language == "en"


def test_pending_reader_cannot_change_preferences_before_confirming():
    reader = make_subscriber(status=Subscriber.Status.PENDING)
    with pytest.raises(services.InvalidInput):
        services.update_preferences(reader, ["weekly"], FORM)


def test_unsubscribe_one_topic_then_everything_is_idempotent():
    reader = make_subscriber()
    services.unsubscribe(reader, "weekly", FORM)
    assert subscribed_keys(reader) == {"articles", "reports", "events"}
    services.unsubscribe(reader, "weekly", FORM)
    assert reader.consent_records.filter(action="unsubscribe").count() == 1
    reader = services.unsubscribe(reader, None, FORM)
    assert subscribed_keys(reader) == set()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED


def test_erase_keeps_only_consent_records_and_a_suppression_hash():
    reader = make_subscriber("gone@example.jp", name="消える人", organisation="某社")
    old_token = tokens.make_token(reader, tokens.PREFERENCES)
    services.erase(reader, FORM)
    reader.refresh_from_db()
    assert reader.email is None and reader.name == "" and reader.organisation == ""
    assert reader.status == Subscriber.Status.ERASED
    assert subscribed_keys(reader) == set()
    assert Suppression.objects.filter(address_hash=address_hash("gone@example.jp")).exists()
    assert set(reader.consent_records.values_list("action", flat=True)) == {"subscribe", "erase"}
    assert reader.consent_records.filter(email="gone@example.jp").count() == 2
    with pytest.raises(tokens.InvalidToken):
        tokens.read_token(old_token, tokens.PREFERENCES)


def test_erased_reader_can_come_back_through_double_opt_in():
    reader = make_subscriber("again@example.jp")
    services.erase(reader, FORM)
    subscribe("again@example.jp", ["weekly"])
    newcomer = Subscriber.objects.get(email="again@example.jp")
    assert newcomer.pk != reader.pk
    services.confirm(newcomer, FORM)
    assert not Suppression.objects.filter(address_hash=address_hash("again@example.jp")).exists()


def test_consent_records_are_append_only():
    reader = make_subscriber()
    record = reader.consent_records.get()
    record.wording = "changed"
    with pytest.raises(ValueError):
        record.save()
    with pytest.raises(ValueError):
        record.delete()


def test_export_data_holds_subscriptions_and_consent_history():
    reader = make_subscriber(name="データ 太郎", topics=["weekly"])
    data = services.export_data(reader)
    assert data["email"] == reader.email and data["name"] == "データ 太郎"
    assert [s["topic"] for s in data["subscriptions"] if s["subscribed"]] == ["weekly"]
    assert data["consent_records"][0]["action"] == "subscribe"


def test_carrier_domains_default_to_iso_2022_jp():
    subscribe("keitai@docomo.ne.jp")
    assert Subscriber.objects.get(email="keitai@docomo.ne.jp").charset == "iso-2022-jp"
