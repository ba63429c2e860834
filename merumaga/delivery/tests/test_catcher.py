import smtplib
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.mime.text import MIMEText
from email.parser import BytesParser

import pytest
from django.core.management import CommandError, call_command

from merumaga import mailview
from merumaga.delivery import catcher
from merumaga.delivery.catcher import MessageNotFound, list_messages, raw_message, read_message

pytestmark = pytest.mark.django_db


def send(port: int, message, to: list[str]) -> None:
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(message, to_addrs=to)


def japanese_newsletter() -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = "【研究所だより】11月号のお知らせ"
    message["From"] = "メルマガ研究所 <news@example.jp>"
    message["To"] = "山田 太郎 <Taro.Yamada@Example.jp>"
    message.set_content("山田様\n今月の研究成果をお届けします。\n")
    message.add_alternative(
        "<p>山田様</p><p>今月の<b>研究成果</b>をお届けします。</p>", subtype="html"
    )
    return message


def carrier_mail() -> MIMEText:
    message = MIMEText("携帯電話のお客様へ\n配信停止はこちら\n", "plain", "iso-2022-jp")
    message["Subject"] = Header("ケータイ版のお知らせ", "iso-2022-jp")
    message["From"] = "news@example.jp"
    message["To"] = "hanako@docomo.ne.jp"
    return message


def test_catches_utf8_and_iso2022jp_mail_with_decoded_subjects_and_envelope(maildir, catcher_port):
    send(catcher_port, japanese_newsletter(), ["taro.yamada@example.jp", "audit@example.jp"])
    send(catcher_port, carrier_mail(), ["hanako@docomo.ne.jp"])

    caught, total = list_messages(maildir)

    assert total == 2
    carrier, newsletter = caught  # newest first
    assert carrier.subject == "ケータイ版のお知らせ"
    assert carrier.to == ("hanako@docomo.ne.jp",)
    assert b"=?iso-2022-jp?" in raw_message(maildir, carrier.key).lower()
    assert newsletter.subject == "【研究所だより】11月号のお知らせ"
    assert newsletter.sender == "メルマガ研究所 <news@example.jp>"
    # The envelope names the Bcc'd recipient, whom the headers do not.
    assert newsletter.to == ("taro.yamada@example.jp", "audit@example.jp")
    assert newsletter.date <= carrier.date

    assert (
        mailview.text_body(read_message(maildir, carrier.key))
        == "携帯電話のお客様へ\n配信停止はこちら\n"
    )
    parsed = read_message(maildir, newsletter.key)
    assert mailview.text_body(parsed) == "山田様\n今月の研究成果をお届けします。\n"
    assert "<b>研究成果</b>" in mailview.html_body(parsed)
    assert mailview.attachments(parsed) == []


def test_stores_the_original_bytes_after_the_envelope_headers(maildir, catcher_port):
    # 8-bit, SMTPUTF8: an international address and a raw UTF-8 body, byte for byte.
    data = "Subject: テスト\r\nTo: 宛先 <ユーザー@example.jp>\r\n\r\n本文\r\n".encode()
    with smtplib.SMTP("127.0.0.1", catcher_port) as smtp:
        smtp.sendmail("送信者@example.jp", ["ユーザー@example.jp"], data, mail_options=["SMTPUTF8"])

    [mail], _ = list_messages(maildir)

    assert raw_message(maildir, mail.key) == (
        "Return-Path: <送信者@example.jp>\r\nX-Envelope-To: ユーザー@example.jp\r\n".encode() + data
    )
    assert (mail.subject, mail.to) == ("テスト", ("ユーザー@example.jp",))


def test_recipient_search_looks_at_envelope_and_to_header_ignoring_case(maildir, catcher_port):
    send(catcher_port, japanese_newsletter(), ["taro.yamada@example.jp", "audit@example.jp"])
    send(catcher_port, carrier_mail(), ["hanako@docomo.ne.jp"])

    def subjects(query: str) -> list[str]:
        caught, total = list_messages(maildir, query)
        assert total == len(caught)
        return [mail.subject for mail in caught]

    assert subjects("HANAKO@DOCOMO") == ["ケータイ版のお知らせ"]
    assert subjects("audit@") == ["【研究所だより】11月号のお知らせ"]  # only in the envelope
    assert subjects("山田 太郎") == ["【研究所だより】11月号のお知らせ"]  # only in the To header
    assert subjects(".JP") == ["ケータイ版のお知らせ", "【研究所だより】11月号のお知らせ"]
    assert subjects("nobody@example.jp") == []


def test_pages_are_newest_first(maildir, catcher_port):
    for number in range(3):
        message = EmailMessage()
        message["Subject"] = f"第{number}号"
        message.set_content("本文")
        send(catcher_port, message, ["reader@example.jp"])

    first, total = list_messages(maildir, limit=2)
    second, _ = list_messages(maildir, offset=2, limit=2)

    assert total == 3
    assert [mail.subject for mail in first + second] == ["第2号", "第1号", "第0号"]


@pytest.mark.parametrize("key", ["nope", "..", "../../secret", "/etc/hostname", "", "new"])
def test_unknown_or_crafted_keys_are_not_found(maildir, catcher_port, key):
    (maildir.parent / "secret").write_text("Subject: not a mail\n\n")

    with pytest.raises(MessageNotFound):
        raw_message(maildir, key)
    with pytest.raises(MessageNotFound):
        read_message(maildir, key)


def test_listing_a_missing_maildir_is_empty(tmp_path):
    assert list_messages(tmp_path / "never-created") == ([], 0)


def test_a_bad_charset_is_shown_with_replacement_characters_not_an_error():
    data = (
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9 \xff\r\n"
    )
    message = BytesParser(policy=policy.default).parsebytes(data)

    assert mailview.text_body(message) == "café \ufffd\n"


def test_a_taken_port_raises_oserror(maildir, catcher_port):
    with pytest.raises(OSError):
        catcher.start_catcher(maildir, port=catcher_port)


def test_command_refuses_to_run_beside_a_relay(settings):
    settings.SMTP_URL = "smtp://relay.example.jp:587"

    with pytest.raises(CommandError, match="A relay is set"):
        call_command("mailcatcher", "--port", "0")


def test_command_reports_a_taken_port(maildir, catcher_port):
    with pytest.raises(CommandError, match=f"Port {catcher_port} .* is taken"):
        call_command("mailcatcher", "--port", str(catcher_port), "--dir", str(maildir))
