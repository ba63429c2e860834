"""The weekly report as the institute's magazine: 第N号, the logo, a 目次 that leads to each
article, articles in the editor's order or by tag, read-more and related links, a text part of
35 full-width characters a line with short links, and each reader's research fields first."""

import re
from datetime import timedelta
from email import message_from_bytes, policy
from unicodedata import east_asian_width

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from merumaga.institute.models import SiteSettings
from merumaga.institute.services import sender_identity
from merumaga.mailings import rendering, services
from merumaga.mailings.checks import broken_site_links
from merumaga.mailings.models import Mailing
from merumaga.publishing import services as publishing_services
from merumaga.publishing.models import DraftRequest, Tag
from merumaga.testing import make_article, make_event, make_subscriber

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def tags():
    return {
        name: Tag.objects.create(name=name, slug=slug)
        for name, slug in (("AI", "ai"), ("電池", "battery"), ("自動運転", "driving"))
    }


@pytest.fixture
def weekly(tags):
    day = timezone.now() - timedelta(days=1)
    for minutes, title, tag, slug in (
        (1, "電池の新工場が稼働", "電池", "電池工場"),
        (2, "大規模言語モデルの公開が続く", "AI", "言語モデル"),
        (3, "無人タクシーが黒字に", "自動運転", "無人タクシー"),
        (4, "AIチップの輸出規制", "AI", "AIチップ"),
    ):
        article = make_article(
            title,
            slug=slug,
            published_at=day + timedelta(minutes=minutes),
            digest=f"{title}。各社の動きと今後の見通しをまとめた記事。",
        )
        article.tags.add(tags[tag])
    mailing = services.compose_weekly().mailing
    mailing.intro = "今週は人工知能と電池の話題が中心です。"
    mailing.save()
    return mailing


def parts(mailing, reader, **compile_options):
    compiled = rendering.compile_mailing(mailing, "ja", **compile_options)
    message = message_from_bytes(rendering.build(compiled, reader).data, policy=policy.default)
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def columns(line: str) -> int:
    return sum(2 if east_asian_width(c) in "WF" else 1 for c in line)


def test_an_issue_carries_its_number_preface_contents_and_read_more_links(weekly):
    reader = make_subscriber()
    text, html = parts(weekly, reader)
    assert weekly.issue_number == 1 and "第1号" in weekly.subject
    titles = list(
        weekly.articles.order_by("mailingarticle__position").values_list("title", flat=True)
    )
    # HTML: the 目次 links to each article's anchor, in order, and each has a read-more link.
    toc = html[html.index("目次</h2>") : html.index('id="a1"')]
    assert re.findall(r'href="#a(\d)"', toc) == ["1", "2", "3", "4"]
    for number, title in enumerate(titles, start=1):
        assert f'id="a{number}"' in html and f">{title}</a></li>" in toc
    assert html.count("続きを読む →") == 4
    assert "第1号" in html and "今週は人工知能と電池の話題が中心です。" in html
    # Text: numbered items in the 目次, then the same numbers in the body.
    contents = text[text.index("■ 目次") : text.index("■ 今週の記事")]
    assert [line for line in contents.splitlines()[1:] if line] == [
        f"{n}. {title}" for n, title in enumerate(titles, start=1)
    ]
    assert f"【1】{titles[0]}" in text and "週報 第1号をお届けします" in text


def test_the_text_part_holds_35_wide_characters_a_line_and_short_links(weekly):
    text, _html = parts(weekly, make_subscriber(), test=True)  # a test send: links not tracked
    for line in text.splitlines():  # an address is never broken: the rest of its line fits
        assert columns(re.sub(r"https?://\S+", "", line)) <= 70, line
    read_more = re.findall(r"続きを読む: (\S+)", text)
    assert len(read_more) == 4 and all(
        re.fullmatch(r"http://localhost:8000/a/\d+/", u) for u in read_more
    )
    assert "%E" not in text  # no percent-encoded Japanese slug
    assert broken_site_links(rendering.compile_mailing(weekly, "ja").html) == []


def test_a_short_link_leads_to_the_page_while_it_is_published(client, weekly):
    article = weekly.articles.first()
    response = client.get(f"/a/{article.pk}/")
    assert response.status_code == 302 and response["Location"] == article.get_absolute_url()
    publishing_services.unpublish(article)
    assert client.get(f"/a/{article.pk}/").status_code == 404
    assert broken_site_links(f'<a href="http://localhost:8000/a/{article.pk}/">x</a>') != []
    scheduled = make_event(status="scheduled", published_at=timezone.now() + timedelta(days=1))
    assert client.get(f"/e/{scheduled.pk}/").status_code == 404  # not shown yet: no slug told


def test_the_logo_is_a_hosted_image_with_its_alt_text(weekly):
    row = SiteSettings.objects.create(logo_alt="テスト経済研究所 週報")
    row.logo.save("logo.png", ContentFile(PNG))
    _text, html = parts(weekly, make_subscriber())
    [img] = re.findall(r"<img [^>]*>", html)
    assert 'src="http://localhost:8000/media/site/logo' in img
    assert 'alt="テスト経済研究所 週報"' in img
    row.logo_alt = ""
    row.save()
    _text, html = parts(weekly, make_subscriber("other@example.jp"))
    name = sender_identity().organisation_name
    assert f'alt="{name}"' in re.findall(r"<img [^>]*>", html)[0]  # the sender's name


def test_articles_grouped_by_tag_with_related_articles(weekly, tags):
    older = make_article(
        "電池の価格競争",
        slug="電池価格",
        published_at=timezone.now() - timedelta(days=30),
        digest="電池の新工場が相次ぎ、各社の動きと価格の見通しをまとめた記事。",
    )
    weekly.grouping, weekly.show_related = Mailing.Grouping.TAG, True
    weekly.save()
    text, html = parts(weekly, make_subscriber())
    # Newest first in the editor's order: AIチップ, 無人タクシー, 言語モデル, 電池の新工場.
    headings = re.findall(r"<h2[^>]*>([^<]+)</h2>", html)
    assert headings[:4] == ["目次", "AI", "自動運転", "電池"]  # in the order they first appear
    assert "■ AI" in text and "〈電池〉" in text
    # Numbering follows the sections: the two AI articles are 1 and 2.
    assert re.search(r"【1】AIチップの輸出規制", text)
    assert re.search(r"【2】大規模言語モデルの公開が続く", text)
    assert re.search(r"【3】無人タクシーが黒字に", text)
    battery = html[html.index(">電池の新工場が稼働</a></h3>") :]
    assert "関連記事" in battery and older.title in battery[: battery.index("</div>")]


def test_issue_numbers_count_what_went_out(weekly, tags):
    make_subscriber()
    assert weekly.issue_number == 1
    services.cancel(weekly)  # given up before it went out: its number goes to the next
    make_article("次の記事", published_at=timezone.now())
    second = services.compose_weekly().mailing
    assert second.issue_number == 1
    services.start(second)
    make_article("その次の記事", published_at=timezone.now())
    assert services.compose_weekly(timezone.now() + timedelta(minutes=1)).mailing.issue_number == 2


def test_a_reader_gets_their_research_fields_first(weekly, tags):
    reader = make_subscriber()
    publishing_services.set_reader_interests(reader.pk, [tags["自動運転"].pk])
    text, html = parts(weekly, reader, interests=frozenset({tags["自動運転"].pk}))
    assert "ご登録の関心分野 (自動運転) の記事を先に載せています。" in text
    assert re.search(r"【1】無人タクシーが黒字に", text)
    assert html.index(">無人タクシーが黒字に</a></h3>") < html.index(">電池の新工場が稼働</a></h3>")
    plain, _html = parts(weekly, reader)  # no fields: the editor's order
    assert "ご登録の関心分野" not in plain and re.search(r"【1】AIチップの輸出規制", plain)


def test_a_preface_is_drafted_by_the_model_from_the_weeks_articles(
    admin_client, weekly, fake_llm, settings, django_capture_on_commit_callbacks
):
    change = reverse("admin:mailings_mailing_change", args=[weekly.pk])
    draft_url = reverse("admin:mailings_mailing_preface_draft", args=[weekly.pk])
    assert "data-preface-draft-url" in admin_client.get(change).content.decode()
    settings.LLM_BASE_URL = fake_llm.base_url("hallucinate")
    with django_capture_on_commit_callbacks(execute=True):  # the task runs after the answer
        waiting = admin_client.post(draft_url).content.decode()
    poll = re.search(r'data-poll="([^"]+)"', waiting)[1]
    page = admin_client.get(poll).content.decode()
    asked = fake_llm.requests[0]["body"]["messages"][-1]["content"]
    assert "前書き" in asked and "無人タクシーが黒字に" in asked  # the week's articles
    assert len(fake_llm.requests) == 2  # a made-up company: asked again, with it named
    assert 'data-origin="llm"' in page and "ゼータ精機" not in page
    assert DraftRequest.objects.get().what == DraftRequest.What.PREFACE

    settings.LLM_BASE_URL = ""
    assert "data-preface-draft-url" not in admin_client.get(change).content.decode()
    assert admin_client.post(draft_url).status_code == 404
