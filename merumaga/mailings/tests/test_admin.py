"""The editors' tools in the admin: compose, the state buttons, preview and test send."""

import socket
from datetime import timedelta
from email import message_from_bytes, policy
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from merumaga.delivery.catcher import list_messages, raw_message
from merumaga.mailings import services
from merumaga.mailings.models import Mailing, StatusChange, WeeklyRun
from merumaga.subscribers import tokens
from merumaga.subscribers.models import Subscriber, Topic
from merumaga.testing import make_article, make_subscriber

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:mailings_mailing_changelist")
COMPOSE = reverse("admin:mailings_mailing_compose_weekly")


def url(name: str, mailing: Mailing) -> str:
    return reverse(f"admin:mailings_mailing_{name}", args=[mailing.pk])


def page(response) -> str:
    return response.content.decode()


def caught(maildir) -> dict[str, object]:
    found, _ = list_messages(maildir, limit=100)
    return {
        m.to[0]: message_from_bytes(raw_message(maildir, m.key), policy=policy.default)
        for m in found
    }


@pytest.fixture
def weekly():
    make_article("今週の記事", published_at=timezone.now() - timedelta(days=1))
    return services.compose_weekly().mailing


@pytest.fixture
def custom():
    return Mailing.objects.create(
        kind=Mailing.Kind.CUSTOM,
        topic=Topic.objects.get(key="weekly"),
        subject="研究所からのお知らせ",
        intro="年末年始の休業のお知らせです。",
    )


def set_status(mailing: Mailing, status: str) -> Mailing:
    Mailing.objects.filter(pk=mailing.pk).update(status=status)
    mailing.refresh_from_db()
    return mailing


# Composing the weekly report.


def test_compose_weekly_with_nothing_new_says_so(admin_client):
    response = admin_client.post(COMPOSE, follow=True)
    assert response.redirect_chain[-1][0] == CHANGELIST
    assert "新しい記事がないため、週報は作成しませんでした。" in page(response)
    assert not Mailing.objects.exists()
    assert WeeklyRun.objects.get().mailing is None


def test_compose_weekly_opens_the_new_report(admin_client, admin_user):
    make_article("先週の研究成果", published_at=timezone.now() - timedelta(days=2))
    response = admin_client.post(COMPOSE, follow=True)
    mailing = Mailing.objects.get()
    assert response.redirect_chain[-1][0] == url("change", mailing)
    assert mailing.kind == Mailing.Kind.WEEKLY
    assert StatusChange.objects.get(mailing=mailing).by == admin_user
    html = page(response)
    assert "週報を作成しました" in html
    assert "先週の研究成果" in html  # the included articles, read-only


def test_the_changelist_shows_the_button_and_the_latest_run(admin_client, weekly):
    html = page(admin_client.get(CHANGELIST))
    assert f'action="{COMPOSE}"' in html and "週報を今すぐ作成" in html
    assert WeeklyRun.objects.get().note in html
    assert weekly.subject in html


def test_compose_weekly_with_a_draft_present_refreshes_it_and_says_so(admin_client, weekly):
    make_article("あとから公開した記事", published_at=timezone.now() - timedelta(hours=1))
    response = admin_client.post(COMPOSE, follow=True)
    assert response.redirect_chain[-1][0] == url("change", weekly)
    assert Mailing.objects.filter(kind=Mailing.Kind.WEEKLY).count() == 1
    html = page(response)
    assert "配信前の週報を更新しました: 記事 1本を追加" in html
    assert html.index(">あとから公開した記事</a>") < html.index(">今週の記事</a>")  # newest first

    response = admin_client.post(COMPOSE, follow=True)
    assert "新しい記事はありません。配信前の週報 (記事 2本) がそのまま配信を待っています。" in (
        page(response)
    )


def test_the_editor_sets_the_order_of_a_waiting_weekly_report(admin_client, weekly):
    from merumaga.mailings.models import MailingArticle

    make_article("二本目", published_at=timezone.now() - timedelta(hours=2))
    services.compose_weekly()
    rows = list(MailingArticle.objects.filter(mailing=weekly).order_by("position"))
    assert [row.article.title for row in rows] == ["二本目", "今週の記事"]
    form = {
        "subject": weekly.subject,
        "preheader": weekly.preheader,
        "intro": "",
        "grouping": "tag",
        "show_related": "on",
        "mailingarticle_set-TOTAL_FORMS": "2",
        "mailingarticle_set-INITIAL_FORMS": "2",
        "mailingarticle_set-0-id": rows[0].pk,
        "mailingarticle_set-0-mailing": weekly.pk,
        "mailingarticle_set-0-position": "5",
        "mailingarticle_set-1-id": rows[1].pk,
        "mailingarticle_set-1-mailing": weekly.pk,
        "mailingarticle_set-1-position": "1",
    }
    response = admin_client.post(url("change", weekly), form)
    assert response.status_code == 302, page(response)
    order = MailingArticle.objects.filter(mailing=weekly).order_by("position")
    assert [row.article.title for row in order] == ["今週の記事", "二本目"]
    weekly.refresh_from_db()
    assert (weekly.grouping, weekly.show_related) == ("tag", True)


def test_compose_weekly_is_a_post(admin_client):
    assert admin_client.get(COMPOSE).status_code == 405
    assert not WeeklyRun.objects.exists()


# The state buttons.

BUTTON_NAMES = ("start", "schedule", "pause", "resume", "cancel")


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ("draft", {"start", "schedule", "cancel"}),
        ("scheduled", {"start", "schedule", "cancel"}),
        ("sending", {"pause", "cancel"}),
        ("paused", {"resume", "cancel"}),
        ("sent", set()),
        ("cancelled", set()),
    ],
)
def test_only_the_buttons_the_status_allows(admin_client, custom, status, shown):
    set_status(custom, status)
    html = page(admin_client.get(url("change", custom)))
    assert {name for name in BUTTON_NAMES if f'action="{url(name, custom)}"' in html} == shown


def test_start_from_the_admin_hands_it_to_the_delivery_workers(admin_client, admin_user, weekly):
    # The workers deliver it (tested in merumaga/delivery/tests/test_engine.py).
    make_subscriber("reader@example.jp")
    response = admin_client.post(url("start", weekly))
    assert response.status_code == 302 and response["Location"] == url("change", weekly)
    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.SENDING and weekly.started_at
    assert StatusChange.objects.get(mailing=weekly, to_status="sending").by == admin_user


def test_a_second_start_shows_an_error_and_sends_once(admin_client, weekly):
    make_subscriber("reader@example.jp")
    first = admin_client.post(url("start", weekly), follow=True)
    assert "配信を開始しました。" in page(first)
    second = admin_client.post(url("start", weekly), follow=True)
    assert second.status_code == 200
    assert "この配信は「配信中」のため、この操作はできません。" in page(second)
    assert StatusChange.objects.filter(mailing=weekly, to_status="sending").count() == 1


def test_start_with_nobody_to_send_to_shows_the_reason(admin_client, weekly):
    response = admin_client.post(url("start", weekly), follow=True)
    assert "この配信先には、配信できる購読者がいません。" in page(response)
    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.DRAFT


def test_a_past_schedule_shows_the_services_error(admin_client, weekly):
    make_subscriber("reader@example.jp")
    response = admin_client.post(
        url("schedule", weekly), {"scheduled_at": "2020-01-01T10:00"}, follow=True
    )
    assert "配信予定日時が過去です。" in page(response)
    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.DRAFT


def test_schedule_pause_resume_cancel(admin_client, admin_user, weekly):
    make_subscriber("reader@example.jp")
    at = timezone.localtime() + timedelta(days=2)
    admin_client.post(url("schedule", weekly), {"scheduled_at": f"{at:%Y-%m-%dT%H:%M}"})
    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.SCHEDULED
    assert weekly.scheduled_at == at.replace(second=0, microsecond=0)

    admin_client.post(url("start", weekly))  # the task is queued on commit, which never comes
    for name, status in [("pause", "paused"), ("resume", "sending"), ("cancel", "cancelled")]:
        response = admin_client.post(url(name, weekly), follow=True)
        assert 'class="error"' not in page(response)
        weekly.refresh_from_db()
        assert weekly.status == status
    history = StatusChange.objects.filter(mailing=weekly).exclude(note="created")
    assert [(c.to_status, c.by) for c in history] == [
        ("scheduled", admin_user),
        ("sending", admin_user),
        ("paused", admin_user),
        ("sending", admin_user),
        ("cancelled", admin_user),
    ]
    html = page(admin_client.get(url("change", weekly)))
    assert "配信予約 → 配信中" in html and "一時停止 → 配信中" in html  # the history, read-only


def test_a_missing_schedule_time_is_an_error_not_a_crash(admin_client, weekly):
    response = admin_client.post(url("schedule", weekly), {"scheduled_at": ""}, follow=True)
    assert response.status_code == 200
    assert "配信予定日時を入力してください。" in page(response)


def test_the_buttons_are_posts(admin_client, custom):
    for name in BUTTON_NAMES:
        assert admin_client.get(url(name, custom)).status_code == 405
    custom.refresh_from_db()
    assert custom.status == Mailing.Status.DRAFT


def test_the_change_page_shows_problems_and_the_recipient_count(admin_client, custom):
    make_subscriber("one@example.jp")
    make_subscriber("two@example.jp")
    make_subscriber("other-topics@example.jp", topics=["articles"])
    Mailing.objects.filter(pk=custom.pk).update(subject="<b>太字</b>")
    html = page(admin_client.get(url("change", custom)))
    assert "件名にHTMLタグや改行は使えません。" in html
    assert "配信先の購読者: 2人" in html
    assert url("preview", custom) in html


def test_the_count_before_sending_leaves_out_opted_out_and_suppressed_readers(admin_client, custom):
    from merumaga.subscribers.models import Suppression, address_hash

    for number in range(3):
        make_subscriber(f"reader{number}@example.jp")
    make_subscriber("bounced@example.jp")
    Suppression.objects.create(
        address_hash=address_hash("bounced@example.jp"), reason="hard_bounce"
    )
    make_subscriber("left@example.jp", status=Subscriber.Status.UNSUBSCRIBED)
    make_subscriber("weekly-off@example.jp", topics=["articles"])
    html = page(admin_client.get(url("change", custom)))
    assert "配信先の購読者: 3人" in html
    assert "3人の購読者に今すぐ配信します。よろしいですか?" in html


# Editing.


def test_an_editor_creates_a_custom_mailing(admin_client, admin_user):
    form = page(admin_client.get(reverse("admin:mailings_mailing_add")))
    assert "ここで作成する配信は「お知らせ」です。" in form and 'name="kind"' not in form
    # The characters check runs while a new mailing is written, against its own URL.
    assert f'"data-jis-check-url", "{reverse("admin:mailings_mailing_jis_check")}"' in form
    topic = Topic.objects.get(key="events")
    response = admin_client.post(
        reverse("admin:mailings_mailing_add"),
        {
            "subject": "臨時のお知らせ",
            "topic": topic.pk,
            "preheader": "",
            "intro": "本文です。",
            "scheduled_at_0": "",
            "scheduled_at_1": "",
        },
    )
    assert response.status_code == 302
    mailing = Mailing.objects.get()
    assert (mailing.kind, mailing.topic, mailing.status) == ("custom", topic, "draft")
    assert StatusChange.objects.get(mailing=mailing).by == admin_user


def test_a_draft_is_edited_without_touching_its_status(admin_client, custom):
    data = {
        "subject": "直した件名",
        "topic": custom.topic_id,
        "preheader": "",
        "intro": custom.intro,
        "scheduled_at_0": "",
        "scheduled_at_1": "",
    }
    assert admin_client.post(url("change", custom), data).status_code == 302
    custom.refresh_from_db()
    assert (custom.subject, custom.status) == ("直した件名", "draft")


def test_a_scheduled_mailing_cannot_be_moved_to_the_past(admin_client, custom):
    set_status(custom, Mailing.Status.SCHEDULED)
    data = {
        "subject": custom.subject,
        "topic": custom.topic_id,
        "preheader": "",
        "intro": custom.intro,
        "scheduled_at_0": "2020-01-01",
        "scheduled_at_1": "10:00:00",
    }
    response = admin_client.post(url("change", custom), data)
    assert response.status_code == 200
    assert "予約中の配信には未来の日時が必要です。" in page(response)
    custom.refresh_from_db()
    assert custom.scheduled_at is None


@pytest.mark.parametrize("status", ["sending", "paused", "sent", "cancelled"])
def test_everything_is_read_only_once_sending(admin_client, custom, status):
    set_status(custom, status)
    html = page(admin_client.get(url("change", custom)))
    assert 'name="subject"' not in html and 'name="intro"' not in html
    assert 'name="_save"' not in html
    admin_client.post(url("change", custom), {"subject": "送信後の変更", "intro": "x"})
    custom.refresh_from_db()
    assert custom.subject == "研究所からのお知らせ"


def test_the_topic_of_a_composed_mailing_is_read_only(admin_client, weekly):
    html = page(admin_client.get(url("change", weekly)))
    assert 'name="subject"' in html and 'name="topic"' not in html


def test_only_drafts_can_be_deleted(admin_client, custom):
    assert admin_client.get(url("delete", custom)).status_code == 200
    set_status(custom, Mailing.Status.SENT)
    assert admin_client.get(url("delete", custom)).status_code == 403


# Preview.


def test_preview_shows_frames_text_and_headers(admin_client, weekly):
    reader = make_subscriber("reader@example.jp", name="山田 花子")
    response = admin_client.get(url("preview", weekly))
    assert response.status_code == 200
    html = page(response)
    assert html.count('sandbox=""') == 2
    assert 'class="mailing-preview-phone"' in html and 'width="375"' in html
    assert url("preview_html", weekly) in html
    assert "<pre" in html and "山田 花子 様" in html and "今週の記事" in html  # the text part
    assert "List-Unsubscribe" in html and "reader@example.jp" in html  # the headers
    assert f'value="{reader.pk}" selected' in html
    assert "utf-8" in html


def test_the_preview_html_is_sandboxed(admin_client, weekly):
    make_subscriber("reader@example.jp")
    response = admin_client.get(url("preview_html", weekly))
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert policy.startswith("sandbox; default-src 'none'") and "script-src" not in policy
    assert "https:" not in policy  # remote images only when asked (below)
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert "今週の記事" in page(response)
    asked = admin_client.get(url("preview_html", weekly), {"images": "1"})
    assert "img-src data: https: http:" in asked["Content-Security-Policy"]
    preview = page(admin_client.get(url("preview", weekly)))
    assert "画像を読み込む" in preview and "images=1" in preview


def test_preview_for_a_chosen_reader(admin_client, weekly):
    make_subscriber("first@example.jp")
    second = make_subscriber("second@example.jp", name="二番目")
    html = page(admin_client.get(url("preview", weekly), {"subscriber": second.pk}))
    assert "二番目 様" in html and f'value="{second.pk}" selected' in html


def test_preview_in_iso_2022_jp_changes_no_reader(admin_client, weekly):
    reader = make_subscriber("reader@example.jp")
    response = admin_client.get(url("preview", weekly), {"charset": "iso-2022-jp"})
    assert '<strong class="mailing-preview-charset">iso-2022-jp</strong>' in page(response)
    frame = admin_client.get(url("preview_html", weekly), {"charset": "iso-2022-jp"})
    assert "今週の記事" in page(frame)
    reader.refresh_from_db()
    assert reader.charset == Subscriber.Charset.UTF8


def test_preview_names_the_characters_iso_2022_jp_cannot_carry(admin_client, weekly):
    make_subscriber("takahashi@example.jp", name="髙橋", charset="iso-2022-jp")
    html = page(admin_client.get(url("preview", weekly)))
    assert '<strong class="mailing-preview-charset">utf-8</strong>' in html
    assert "「髙」" in html


def test_preview_without_readers_uses_a_stand_in(admin_client, custom):
    response = admin_client.get(url("preview", custom))
    assert response.status_code == 200
    assert "preview@example.invalid" in page(response)
    assert admin_client.get(url("preview_html", custom)).status_code == 200


# Test send.


def test_test_send_to_two_addresses(admin_client, weekly, mail_catcher):
    reader = make_subscriber("reader@example.jp")
    response = admin_client.post(
        url("test_send", weekly), {"addresses": "Editor@Example.jp, second@example.jp"}, follow=True
    )
    assert response.redirect_chain[-1][0] == url("preview", weekly)
    assert "テストメールを送信しました" in page(response)
    received = caught(mail_catcher)
    assert set(received) == {"editor@example.jp", "second@example.jp"}
    for message in received.values():
        assert message["Subject"].startswith("[テスト] ")
        # The links lead to no reader: an editor clicking "unsubscribe" unsubscribes no one.
        link = message["List-Unsubscribe"].split(">")[0].lstrip("<")
        token = urlsplit(link).path.rstrip("/").rsplit("/", 1)[-1]
        with pytest.raises(tokens.InvalidToken):
            tokens.read_token(token, tokens.UNSUBSCRIBE)
        assert reader.email not in message.as_string()
    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.DRAFT
    assert not weekly.status_changes.filter(to_status="sending").exists()


def test_a_bad_address_sends_nothing(admin_client, weekly, mail_catcher):
    response = admin_client.post(
        url("test_send", weekly), {"addresses": "good@example.jp\nnot-an-address"}
    )
    assert response.status_code == 200
    html = page(response)
    assert "not-an-address: メールアドレスの形式が正しくありません。" in html
    assert "good@example.jp\nnot-an-address</textarea>" in html  # kept for correcting
    assert list_messages(mail_catcher)[1] == 0


def test_at_most_twenty_test_addresses(admin_client, weekly, mail_catcher):
    addresses = "\n".join(f"e{n}@example.jp" for n in range(21))
    response = admin_client.post(url("test_send", weekly), {"addresses": addresses})
    assert "テスト送信は最大20件までです。" in page(response)
    assert list_messages(mail_catcher)[1] == 0


def test_a_relay_that_cannot_be_reached_is_an_error_message(admin_client, weekly, settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "merumaga.delivery.transactional.RelayBackend"
    settings.SMTP_RELAYS, settings.SMTP_URL = "", f"smtp://127.0.0.1:{port}"
    response = admin_client.post(url("test_send", weekly), {"addresses": "editor@example.jp"})
    assert response.status_code == 200
    assert "メールサーバーに送信できませんでした" in page(response)
    assert f"127.0.0.1:{port}): Error connecting" in page(response)  # which relay, and why


# Access.


def test_non_staff_are_sent_to_the_login(client, django_user_model, weekly):
    reader = django_user_model.objects.create_user("someone", password="pw-for-test")
    client.force_login(reader)
    for name in ("preview", "preview_html", "change"):
        response = client.get(url(name, weekly))
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    response = client.post(url("start", weekly))
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    response = client.post(COMPOSE)
    assert response["Location"].startswith("/admin/login/")
    weekly.refresh_from_db()
    assert weekly.status == Mailing.Status.DRAFT


# Characters ISO-2022-JP readers cannot receive.


def test_the_editor_sees_characters_iso_2022_jp_readers_cannot_receive(admin_client, custom):
    make_subscriber("keitai@docomo.ne.jp", charset=Subscriber.Charset.ISO2022JP)
    make_subscriber("pc@example.jp")
    Mailing.objects.filter(pk=custom.pk).update(
        subject="深圳の新工場", intro="髙橋研究員の解説です。\n①生産能力"
    )
    for view in ("change", "preview"):
        html = page(admin_client.get(url(view, custom)))
        assert "ISO-2022-JP を選んだ読者 (1人)" in html
        assert "深セン" in html and "→ (1)" in html
        assert "件名 1行2文字目" in html  # where 圳 is
        assert "本文 (前書き、Markdown) 1行1文字目" in html  # where 髙 is


def test_the_live_check_answers_as_the_editor_types(admin_client, client):
    check = reverse("admin:mailings_mailing_jis_check")
    html = page(admin_client.post(check, {"subject": "华为の発表", "intro": "普通の文"}))
    assert "华" in html and "例: 華" in html and "为" in html
    assert page(admin_client.post(check, {"subject": "普通の件名"})).strip() == ""
    assert client.post(check, {"subject": "华"}).status_code == 302  # staff only


def test_saving_says_which_characters_iso_2022_jp_readers_cannot_receive(admin_client, custom):
    form = {
        "subject": "髙橋研究員の報告",
        "topic": custom.topic_id,
        "preheader": "",
        "intro": "",
        "attach_pdf": "",
        "scheduled_at_0": "",
        "scheduled_at_1": "",
    }
    response = admin_client.post(url("change", custom), form, follow=True)
    assert "ISO-2022-JP の読者に送れない文字があります" in page(response)
    assert "「髙」(件名 → 高)" in page(response)


def test_a_paused_mailing_says_why_on_its_page(admin_client, custom):
    make_subscriber()
    services.start(custom)
    services.pause(custom, note="配信中にエラーが起きたため一時停止しました: RuntimeError: boom")
    html = page(admin_client.get(url("change", custom)))
    assert "一時停止の理由" in html and "RuntimeError: boom" in html


def test_a_subject_the_editor_wrote_is_kept_when_the_item_changes(admin_client):
    article = make_article("元のタイトル", published=False, notify_subscribers=True)
    draft = services.announcement_for(article)
    form = {
        "subject": "編集部が書いた件名",
        "preheader": draft.preheader,
        "intro": "",
        "scheduled_at_0": "",
        "scheduled_at_1": "",
    }
    assert admin_client.post(url("change", draft), form).status_code == 302
    type(article).objects.filter(pk=article.pk).update(title="新しいタイトル")
    article.refresh_from_db()
    assert services.announcement_for(article).subject == "編集部が書いた件名"
