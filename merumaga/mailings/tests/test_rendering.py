"""Every kind of mail, built for a reader and read back with the standard library."""

import re
from email import message_from_bytes, policy
from unicodedata import east_asian_width

import pytest
from django.conf import settings

from merumaga.institute.models import SiteSettings
from merumaga.mailings import rendering, services
from merumaga.subscribers import tokens
from merumaga.subscribers.models import Subscriber
from merumaga.testing import (
    KINDS,
    mailing_of,
    make_subscriber,
)

pytestmark = pytest.mark.django_db


def parsed(outgoing):
    return message_from_bytes(outgoing.data, policy=policy.default)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_carries_the_headers_and_the_legal_footer(kind, sender):
    reader = make_subscriber("yamada@example.jp", name="山田 花子")
    mailing = mailing_of(kind)
    outgoing = rendering.build(rendering.compile_mailing(mailing, "ja"), reader)
    message = parsed(outgoing)

    assert message["To"] == "yamada@example.jp"
    assert "テスト経済研究所" in message["From"] and "news@example.jp" in message["From"]
    assert message["Subject"].strip()
    assert message["Date"].endswith("+0900")
    assert re.fullmatch(r"<[^@\s]+@example\.jp>", message["Message-ID"])
    https_part, mailto_part = [p.strip() for p in message["List-Unsubscribe"].split(",")]
    assert https_part.startswith(f"<{settings.SITE_URL}/unsubscribe/")
    assert mailto_part.startswith("<mailto:unsubscribe+") and mailto_part.endswith(
        f"@{settings.BOUNCE_DOMAIN}>"
    )
    link, from_mailing = https_part.strip("<>").split("?m=")
    assert from_mailing == str(mailing.pk)  # so that unsubscribes are counted per mailing
    assert tokens.read_token(link.rstrip("/").rsplit("/", 1)[1], tokens.UNSUBSCRIBE) == (
        reader,
        mailing.topic.key,
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"].endswith(f"<{mailing.topic.key}.{settings.LIST_ID_DOMAIN}>")
    assert message["Feedback-ID"] == f"{mailing.pk}:{mailing.topic.key}:{mailing.kind}:merumaga"
    assert outgoing.envelope_from.startswith("bounce+") and outgoing.envelope_from.endswith(
        f"@{settings.BOUNCE_DOMAIN}"
    )
    token = outgoing.envelope_from.split("+", 1)[1].split("@")[0]
    assert tokens.read_address_token("bounce", token, 2) == (mailing.pk, reader.pk)

    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for part in (text, html):
        for item in [
            "テスト経済研究所",
            "東京都千代田区丸の内0-0-0",
            "info@example.jp",
            "03-0000-0000",
            "https://example.jp/contact/",
            "配信はいつでも停止できます",
            "/preferences/",
            "/unsubscribe/",
            "yamada@example.jp",
            "山田 花子 様",
        ]:
            assert item in part, (kind, item)
    assert f"/archive/{kind}-{mailing.pk}/" in html  # view in browser
    assert "<style" not in html and 'style="' in html  # CSS inlined
    assert "\ue000" not in text + html  # every personal marker was filled


def test_weekly_text_part_is_readable_japanese(sender):
    reader = make_subscriber()
    mailing = mailing_of("weekly")
    text = (
        parsed(rendering.build(rendering.compile_mailing(mailing, "ja"), reader))
        .get_body(("plain",))
        .get_content()
    )
    assert (
        "■ 今週の記事" in text and "【1】週報の記事" in text and "出典: 架空新聞 (12月号)" in text
    )
    assert "<" not in text.replace("<http", "")  # no HTML left in the text part
    # Wrapped at 76 display columns (38 Japanese characters); URLs are never broken.
    prose = [line for line in text.splitlines() if "http" not in line]
    columns = [sum(2 if east_asian_width(c) in "WF" else 1 for c in line) for line in prose]
    assert max(columns) <= 76


def test_a_reader_without_a_name_gets_the_general_greeting(sender):
    reader = make_subscriber(name="")
    text = (
        parsed(rendering.build(rendering.compile_mailing(mailing_of("article"), "ja"), reader))
        .get_body(("plain",))
        .get_content()
    )
    assert text.startswith("読者の皆様")


def test_english_readers_get_english(sender):
    reader = make_subscriber(language="en", name="Taro")
    mailing = mailing_of("article")
    message = parsed(rendering.build(rendering.compile_mailing(mailing, "en"), reader))
    text = message.get_body(("plain",)).get_content()
    assert "Taro" in text and "配信はいつでも停止できます" not in text


def test_event_invitation_has_rsvp_link_and_ics(sender):
    reader = make_subscriber()
    mailing = mailing_of("event_invitation")
    message = parsed(rendering.build(rendering.compile_mailing(mailing, "ja"), reader))
    assert "/events/rsvp/" in message.get_body(("html",)).get_content()
    calendar = [
        part for part in message.iter_attachments() if part.get_content_type() == "text/calendar"
    ]
    assert calendar and b"BEGIN:VEVENT" in calendar[0].get_content().encode()
    assert calendar[0].get_param("charset") == "utf-8"  # whatever the mail's own charset


def test_iso_2022_jp_reader_with_mappable_characters(sender):
    SiteSettings.objects.filter(pk=sender.pk).update(organisation_name="テスト研究所㈱")
    reader = make_subscriber(charset=Subscriber.Charset.ISO2022JP, name="佐藤 一郎")
    mailing = mailing_of("custom")
    mailing.intro = "①休業日～のお知らせ ｶﾀｶﾅ"
    mailing.save()
    outgoing = rendering.build(rendering.compile_mailing(mailing, "ja"), reader)
    assert outgoing.charset == "iso-2022-jp" and not outgoing.uncarried
    assert max(outgoing.data) < 128
    assert b"=?iso-2022-jp?b?" in outgoing.data.lower()
    text = parsed(outgoing).get_body(("plain",)).get_content()
    assert "(1)休業日〜のお知らせ カタカナ" in text and "(株)" in text
    html = parsed(outgoing).get_body(("html",))
    assert html.get_content_charset() == "iso-2022-jp"
    assert "charset" not in html.get_content().lower()  # no <meta charset="utf-8"> inside


def test_iso_2022_jp_reader_whose_name_it_cannot_carry_gets_utf8(sender):
    reader = make_subscriber(charset=Subscriber.Charset.ISO2022JP, name="髙橋 﨑子")
    outgoing = rendering.build(rendering.compile_mailing(mailing_of("article"), "ja"), reader)
    assert outgoing.charset == "utf-8" and "髙" in outgoing.uncarried
    assert "髙橋 﨑子 様" in parsed(outgoing).get_body(("plain",)).get_content()


def test_the_web_copy_has_no_personal_data(sender):
    reader = make_subscriber("private@example.jp", name="秘密 太郎")
    mailing = mailing_of("weekly")
    html = rendering.render_for_web(mailing)
    assert "週報の記事" in html and "読者の皆様" in html
    assert "private@example.jp" not in html and "秘密" not in html and "/unsubscribe/" not in html
    assert reader.email not in html


@pytest.mark.parametrize("kind", ["weekly", "article", "report", "event_invitation", "custom"])
def test_the_web_copy_is_written_for_a_page_not_copied_from_a_mail(sender, kind):
    make_subscriber()
    html = rendering.render_for_web(mailing_of(kind))
    assert 'href=""' not in html and "\ue000" not in html  # no empty link, no marker left
    assert "宛にお送りしています" not in html  # no "sent to ␣"
    assert "配信停止" not in html and "配信設定の変更" not in html  # nothing to stop on a page
    assert "添付" not in html  # the page has no attachment
    assert "ブラウザで読む" not in html  # it is the browser copy
    assert "<html" not in html and "<head" not in html and "preheader" not in html
    assert "テスト経済研究所" in html and "東京都千代田区丸の内" in html  # the sender, still
    assert re.search(
        rf'href="{settings.SITE_URL}/subscribe/"[^>]*>メールマガジンの登録 \(無料\)</a>', html
    )


def test_the_web_copy_of_an_invitation_leads_to_the_event_page(sender):
    mailing = mailing_of("event_invitation")
    html = rendering.render_for_web(mailing)
    event_url = f"{settings.SITE_URL}{mailing.event.get_absolute_url()}"
    assert f'href="{event_url}"' in html and "イベントのページで申し込む" in html
    assert f"{event_url}calendar.ics" in html and "/events/rsvp/" not in html


def test_content_check_catches_problems(sender):
    mailing = mailing_of("custom")
    mailing.subject = "<b>太字</b>"
    mailing.intro = "[壊れたリンク](http://localhost:8000/articles/no-such-article/)"
    mailing.save()
    from merumaga.mailings.checks import content_problems

    problems = " ".join(content_problems(mailing))
    assert "HTML" in problems
    mailing.subject = "ふつうの件名"
    mailing.save()
    problems = " ".join(content_problems(mailing))
    assert "リンク切れ" in problems and "no-such-article" in problems


def test_a_draft_referencing_a_deleted_article_cannot_start(sender):
    make_subscriber()
    mailing = mailing_of("article")
    mailing.article.delete()
    mailing.refresh_from_db()
    with pytest.raises(services.MailingError, match="削除"):
        services.start(mailing)


def test_a_topic_with_no_readers_cannot_start(sender):
    mailing = mailing_of("article")
    with pytest.raises(services.MailingError, match="購読者がいません"):
        services.start(mailing)


def test_a_tracked_link_with_the_readers_part_is_never_broken_across_lines():
    link = "http://localhost:8000/c/12-0123456789abcdef/" + rendering.marker("clicker") + "/"
    for prose in range(20, 40):  # the link meets the 70th column at every place
        lines = rendering.wrap_text("あ" * prose + "。詳しくは" + link).splitlines()
        assert any(line.endswith(link) for line in lines)
        assert all(rendering.marker("clicker")[0] not in line[: -len(link)] for line in lines)
