from email import message_from_bytes, policy

import pytest
from django.conf import settings

from merumaga import outgoing
from merumaga.institute.models import SiteSettings
from merumaga.subscribers import mail, tokens
from merumaga.subscribers.models import Subscriber
from merumaga.testing import make_subscriber

pytestmark = pytest.mark.django_db


def welcome(reader: Subscriber) -> outgoing.Built:
    return outgoing.build(mail.build_reader_mail(reader, "welcome", {"topics": []}))


def parsed(built: outgoing.Built):
    """The mail exactly as it leaves, read back by the standard library."""
    return message_from_bytes(built.data, policy=policy.default)


def test_welcome_mail_headers_and_legal_footer_in_both_parts():
    SiteSettings.objects.create(
        organisation_name="テスト研究所",
        postal_address="東京都港区1-2-3",
        contact_phone="03-0000-0000",
    )
    reader = make_subscriber(name="読者 一郎")
    message = parsed(welcome(reader))

    assert message["To"] == reader.email
    assert "テスト研究所" in message["From"]
    # Folding may leave the whitespace that follows "Subject:"; the words are what count.
    assert message["Subject"].strip() == "【テスト研究所】メールマガジンの登録が完了しました"
    assert message["Date"].endswith("+0900")
    assert message["Message-ID"].endswith("@example.jp>")
    unsubscribe_url = message["List-Unsubscribe"].strip().strip("<>")
    assert unsubscribe_url.startswith(f"{settings.SITE_URL}/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = unsubscribe_url.rstrip("/").rsplit("/", 1)[1]
    assert tokens.read_token(token, tokens.UNSUBSCRIBE)[0] == reader

    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for part in (text, html):
        for item in [
            "テスト研究所",
            "東京都港区1-2-3",
            "contact@example.jp",
            "03-0000-0000",
            "配信はいつでも停止できます",
            "/preferences/",
            "/unsubscribe/",
        ]:
            assert item in part, item
    assert "読者 一郎 様" in text


def test_iso_2022_jp_reader_gets_iso_2022_jp():
    reader = make_subscriber(charset=Subscriber.Charset.ISO2022JP)
    raw = welcome(reader).data
    assert b'charset="iso-2022-jp"' in raw.lower() or b"charset=iso-2022-jp" in raw.lower()
    assert b"=?iso-2022-jp?b?" in raw.lower()
    assert max(raw) < 128  # 7-bit clean, as old carrier mail needs
    message = message_from_bytes(raw, policy=policy.default)
    assert "登録が完了しました" in message["Subject"]
    assert "メールマガジンへのご登録" in message.get_body(("plain",)).get_content()
    html = message.get_body(("html",))
    assert html.get_content_charset() == "iso-2022-jp" and "charset" not in html.get_content()


def test_characters_iso_2022_jp_cannot_carry_switch_that_reader_to_utf8(caplog, mailoutbox):
    SiteSettings.objects.create(organisation_name="①髙﨑ラボ㈱")
    reader = make_subscriber(charset=Subscriber.Charset.ISO2022JP)
    message = welcome(reader)
    assert message.charset == "utf-8" and message.uncarried == ("髙", "﨑")
    assert "①髙﨑ラボ㈱" in parsed(message)["Subject"]
    outgoing.send(mail.build_reader_mail(reader, "welcome", {"topics": []}))
    assert mailoutbox[0].encoding == "utf-8"
    assert f"welcome mail to reader {reader.pk} prefers ISO-2022-JP but 髙﨑" in caplog.text


def test_characters_with_a_faithful_jis_form_keep_the_reader_on_iso_2022_jp():
    """The one charset rule (merumaga.charset.choose), as for mailings: ① and ㈱ have a form
    ISO-2022-JP carries, so the mail stays ISO-2022-JP instead of falling back to UTF-8."""
    SiteSettings.objects.create(organisation_name="①研究所㈱")
    reader = make_subscriber(charset=Subscriber.Charset.ISO2022JP)
    message = welcome(reader)
    assert message.charset == "iso-2022-jp"
    parsed_message = parsed(message)
    assert "(1)研究所(株)" in parsed_message["Subject"]
    assert "(1)研究所(株)" in parsed_message.get_body(("html",)).get_content()


def test_welcome_mail_names_the_topics_in_the_readers_language(
    mailoutbox, django_capture_on_commit_callbacks
):
    from merumaga.subscribers import services

    reader = make_subscriber(
        "en@example.com", status=Subscriber.Status.PENDING, topics=["weekly"], language="en"
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.confirm(reader, services.Evidence(source="form"))
    assert "Weekly report" in mailoutbox[0].body
    assert "週報" not in mailoutbox[0].body
