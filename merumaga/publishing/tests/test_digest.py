"""Offline digest drafts: sentences found where an editor would find them, Markdown left out,
within the budget, in the article's order, each with its place in the article."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from merumaga.publishing import digest

ARTICLE = """# 全固体電池、量産へ一歩

国内の電池メーカー各社が、全固体電池の量産ラインを2027年に立ち上げる計画を相次いで発表した。
大手のA社は「歩留まりは90%を超えた。価格も下がる」と述べ、電気自動車（EV。主に乗用車）向けの供給を始める。

## 背景

全固体電池は、液体の電解質を固体に置き換えることで、発火の危険を減らし、充電時間を短くできる。
一方で、製造コストは従来の電池の2倍以上とされ、価格の低下が課題だった。
詳しくは [A社の発表](https://example.jp/news/1) と https://example.jp/report を参照。

| 社名 | 量産開始 |
|---|---|
| A社 | 2027年 |

- 中国の電池大手も、2026年末に試作ラインを稼働させた
- 欧州では補助金の拡充が議論されている

```
print("コードは要約に入らない。")
```

調査会社の予測では、全固体電池の市場は2030年に3兆円規模に達する。
専門家は、量産の成否が日本の電池産業の競争力を左右すると指摘する。
"""


def test_sentences_end_where_a_reader_would_end_them():
    found = [sentence.text for sentence in digest.split_sentences(ARTICLE)]
    assert (
        "大手のA社は「歩留まりは90%を超えた。価格も下がる」と述べ、電気自動車（EV。主に乗用車）向けの供給を始める。"
        in found
    )
    assert "中国の電池大手も、2026年末に試作ラインを稼働させた" in found  # a list item
    assert "詳しくは A社の発表 と を参照。" in found  # link text kept, addresses gone
    joined = "".join(found)
    for left_out in ("#", "|", "量産開始", "print", "https://", "](", "- "):
        assert left_out not in joined


def test_each_sentence_keeps_its_place_in_the_article():
    for sentence in digest.split_sentences(ARTICLE):
        span = ARTICLE[sentence.start : sentence.end]
        assert span[0] == sentence.text[0] and span[-1] == sentence.text[-1]


def test_a_draft_fits_the_budget_in_the_articles_order():
    for budget in (60, 120, 200, 400):
        found = digest.draft(ARTICLE, budget)
        assert found.sentences and found.backend == "offline"
        assert len(found.digest) <= budget or len(found.sentences) == 1
        starts = [sentence.start for sentence in found.sentences]
        assert starts == sorted(starts)
    lead = digest.draft(ARTICLE, 60).sentences[0].text
    assert lead.startswith("国内の電池メーカー各社が")  # the lead carries the news


def test_a_connective_that_would_dangle_is_dropped():
    text = (
        "電池の価格が下がった。各社は増産を急いでいる。工場の新設も相次ぐ。\n\n"
        "ただし、原料の調達には不安が残る。"
    )
    sentences = digest.split_sentences(text)
    assert [s.opens_paragraph for s in sentences] == [True, False, False, True]
    cut = 0
    for budget in range(12, 60):
        found = digest.draft(text, budget)
        places = [sentences.index(s) if s in sentences else None for s in found.sentences]
        for sentence, place in zip(found.sentences, places, strict=True):
            if sentence.text == "原料の調達には不安が残る。":  # the word before the cut is gone
                assert place is None and text[sentence.start :].startswith("原料の")
                cut += 1
            if sentence.text.startswith("ただし、"):  # kept: the sentence before is there too
                assert sentences[2] in found.sentences
    assert cut  # some budget picked the last sentence without the one before it


def test_english_works_too():
    text = (
        "Battery makers in Japan announced mass production of solid-state cells for 2027. "
        "Mr. Tanaka of the U.S. unit said yields passed 90 percent.\n\n"
        "The cells charge faster and are less likely to catch fire. "
        "Costs remain twice those of lithium-ion cells."
    )
    found = [sentence.text for sentence in digest.split_sentences(text)]
    assert found[1] == "Mr. Tanaka of the U.S. unit said yields passed 90 percent."
    assert len(found) == 4
    assert digest.draft(text, 90).digest.startswith("Battery makers in Japan")


def test_a_very_long_text_is_drafted_from_its_first_sentences():
    endless = "電池の量産が始まった。" * 5000  # 5,000 sentences: the n² graph is bounded
    found = digest.draft(endless, 200)
    assert found.sentences and found.sentences[-1].end <= 400 * len("電池の量産が始まった。")


def test_nothing_to_summarise_gives_an_empty_draft():
    assert digest.draft("# 見出しだけ\n\n| a | b |\n", 200).digest == ""


def test_the_command_prints_the_draft_and_its_places(tmp_path):
    article = tmp_path / "article.md"
    article.write_text(ARTICLE, encoding="utf-8")
    out = io.StringIO()
    call_command("digest", str(article), "--chars", "120", "--json", stdout=out)
    answer = json.loads(out.getvalue())
    assert answer["backend"] == "offline" and answer["digest"]
    for sentence in answer["sentences"]:
        assert ARTICLE[sentence["start"] : sentence["end"]].endswith(sentence["text"][-1])
    with pytest.raises(CommandError, match="MERUMAGA_LLM_BASE_URL"):
        call_command("digest", str(article), "--backend", "llm")


@pytest.mark.django_db
def test_the_editor_gets_a_draft_to_use_or_discard_and_the_article_records_its_origin(
    admin_client,
):
    from django.urls import reverse

    from merumaga.publishing.models import Article

    url = reverse("admin:publishing_article_digest_draft")
    page = admin_client.post(url, {"text": ARTICLE, "chars": "120"}).content.decode()
    assert 'data-origin="offline"' in page and "国内の電池メーカー各社が" in page
    first = digest.draft(ARTICLE, 120).sentences[0]
    assert f'data-start="{first.start}" data-end="{first.end}"' in page  # to its passage
    assert not Article.objects.exists()  # a draft saves nothing
    empty = admin_client.post(url, {"text": "# 見出しだけ", "chars": "x"}).content.decode()
    assert "まだありません" in empty

    editor = admin_client.get(reverse("admin:publishing_article_add")).content.decode()
    assert 'name="digest_origin"' in editor and "publishing/digest-draft.js" in editor
    admin_client.post(
        reverse("admin:publishing_article_add"),
        {
            "title": "全固体電池",
            "digest": "下書きから。",
            "digest_origin": "offline",
            "body": ARTICLE,
        },
    )
    assert Article.objects.get().digest_origin == "offline"


@pytest.mark.django_db
def test_an_article_page_lists_the_articles_nearest_in_content(client):
    from merumaga.testing import make_article

    battery = make_article(
        title="全固体電池の量産が始まる",
        slug="battery",
        digest="電池メーカー各社が全固体電池の量産ラインを立ち上げ、EV向けの供給を始める。",
    )
    make_article(
        title="ナトリウムイオン電池、蓄電で採用",
        slug="sodium",
        digest="ナトリウムイオン電池の量産が進み、蓄電設備と二輪車向けの供給が始まった。",
    )
    make_article(
        title="ドローン配送が日常に",
        slug="drone",
        digest="都市部でドローンによる食品の配送が広がり、平均20分で届く。",
    )
    make_article(title="下書きの電池記事", slug="draft", digest="全固体電池", published=False)
    page = client.get(battery.get_absolute_url()).content.decode()
    related = page[page.index("関連記事") :]
    assert "ナトリウムイオン電池、蓄電で採用" in related  # the nearest
    assert related.index("ナトリウムイオン電池") < related.find("ドローン配送") or (
        "ドローン配送" not in related
    )
    assert "下書きの電池記事" not in related  # published articles only
