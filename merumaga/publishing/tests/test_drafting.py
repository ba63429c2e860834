"""Drafts by a language model (a local stand-in server, publishing.fake_llm): asked with the
configured model and key, checked against the article, retried once with the failures named,
marked when still unsupported, and replaced by the offline draft when the model cannot answer —
each time with the reason in words, never with the key."""

import io
import json
import logging
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse

from merumaga.conftest import LLM_TEST_KEY
from merumaga.publishing import drafting, grounding, llm
from merumaga.publishing.fake_llm import MADE_UP
from merumaga.publishing.models import DraftRequest
from merumaga.publishing.tests.test_digest import ARTICLE

ENGLISH = (
    "Battery makers in Japan announced mass production of solid-state cells for 2027. "
    "Toyo Cells said yields passed 90 percent in its Osaka plant.\n\n"
    "The cells charge faster and are less likely to catch fire. "
    "Costs remain twice those of lithium-ion cells."
)


def claimed(draft: str, article: str = ARTICLE) -> list[str]:
    return [part.text for part in grounding.unsupported(draft, article)]


def test_numbers_dates_and_percentages_must_occur_in_the_article():
    article = "A社の売上は２０２６年に前年比３０％増の1,200億円。3月には工場を開いた。"
    assert (
        claimed("A社の売上は2026年に30%増えて1200億円になった。3月に工場を開いた。", article) == []
    )
    assert claimed("売上は2025年に35%増え、1300億円。4月に開いた。", article) == [
        "2025年",
        "35%",
        "1300億",
        "4月",
    ]
    assert claimed("売上は3%増えた。", article) == ["3%"]  # not found inside 30%
    assert claimed("売上は1200万円。", article) == ["1200万"]  # 億 is not 万
    assert claimed("1億2000万円の投資。", "1億2000万円を投じる。") == []
    # Kanji numerals before a unit are numbers too, both ways; words with 一 or 十 are not.
    kanji = "シェアは三割で、二〇二六年に千五百万台。一方で十分な数だ。"
    assert claimed("シェアは3割、2026年に1500万台。一方で十分だ。", kanji) == []
    assert claimed("シェアは四割、二〇二五年に。", kanji) == ["四割", "二〇二五年"]
    assert claimed("It opens in 2027.", "It opened in 2027. Then more.") == []


def test_names_must_occur_in_the_article_but_common_words_need_not():
    article = (
        "深圳の比亜迪（BYD）は販売を伸ばした。王伝福会長は上海で語った。"
        "ファーウェイはコストの削減を進める。"
    )
    # Paraphrase with common words (費用, 増やした, データ) passes; the names are the article's.
    assert (
        claimed(
            "BYDは販売を増やした。王伝福氏は上海で、ファーウェイの費用とデータを語った。", article
        )
        == []
    )
    assert claimed("杭州のテンセントとGPT-4o、李強氏、C社。", article) == [
        "杭州",
        "テンセント",
        "GPT-4o",
        "李強氏",
        "C社",
    ]
    assert claimed("Tesla said BYD sales grew in the US.", "BYD sales grew in the U.S.") == [
        "Tesla"
    ]
    # A number's unit is not read again as the start of a name: 3月 and 上海 are two claims.
    assert claimed("3月上海で発表。", "上海で発表した。") == ["3月"]
    assert claimed("2024年中国で。", "2024年に中国で。") == []


def test_the_model_is_asked_with_the_configured_model_and_key(fake_llm):
    answer = llm.complete(
        [{"role": "user", "content": "要約を書いてください。\n\nタイトル: \n\n" + ARTICLE}]
    )
    assert answer
    sent = fake_llm.requests[0]
    assert sent["body"]["model"] == "fake-model"
    assert sent["authorization"] == f"Bearer {LLM_TEST_KEY}"


def test_a_failing_endpoint_is_tried_again_then_reported(fake_llm, settings, caplog):
    settings.LLM_BASE_URL = fake_llm.base_url("fail")
    with caplog.at_level(logging.WARNING), pytest.raises(llm.LlmError, match="HTTP 500"):
        llm.complete([{"role": "user", "content": "x"}])
    assert len(fake_llm.requests) == 2 and fake_llm.pauses == [1]  # 1 + LLM_RETRIES tries


def test_a_refused_key_is_never_shown_or_logged(fake_llm, settings, caplog):
    settings.LLM_BASE_URL = fake_llm.base_url("refuse")
    with caplog.at_level(logging.DEBUG), pytest.raises(llm.LlmError) as refused:
        llm.complete([{"role": "user", "content": "x"}])
    assert "APIキー" in str(refused.value) and LLM_TEST_KEY not in str(refused.value)
    assert len(fake_llm.requests) == 1  # a refusal is not retried
    assert LLM_TEST_KEY not in caplog.text


def test_a_redirect_is_not_followed_with_the_key(fake_llm, settings):
    settings.LLM_BASE_URL = fake_llm.base_url("redirect")
    with pytest.raises(llm.LlmError, match="転送"):
        llm.complete([{"role": "user", "content": "x"}])
    assert [r["mode"] for r in fake_llm.requests] == ["redirect"]  # /v1 never reached


def test_an_answer_cut_short_is_reported_as_a_failed_connection(fake_llm, settings):
    settings.LLM_BASE_URL = fake_llm.base_url("broken")
    with pytest.raises(llm.LlmError, match="接続できませんでした"):
        llm.complete([{"role": "user", "content": "x"}])
    assert len(fake_llm.requests) == 2  # tried again


def test_a_slow_endpoint_times_out(fake_llm, settings):
    settings.LLM_BASE_URL = fake_llm.base_url("slow")
    with pytest.raises(llm.LlmError, match="1秒以内に応答しませんでした"):
        llm.complete([{"role": "user", "content": "x"}])
    assert len(fake_llm.requests) == 2


def test_an_answer_trickling_in_times_out_as_a_whole(fake_llm, settings):
    settings.LLM_BASE_URL = fake_llm.base_url("trickle")  # each byte in time, the whole not
    with pytest.raises(llm.LlmError, match="1秒以内に応答しませんでした"):
        llm.complete([{"role": "user", "content": "x"}])
    assert len(fake_llm.requests) == 2


def test_an_unreachable_endpoint_is_reported(fake_llm, settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    with pytest.raises(llm.LlmError, match="接続できませんでした"):
        llm.complete([{"role": "user", "content": "x"}])


def test_a_truthful_draft_is_shown_with_each_sentence_linked_to_its_passage(fake_llm):
    found = drafting.draft(ARTICLE, 200, "全固体電池、量産へ")
    assert found.backend == "llm" and found.notice == "" and found.digest
    assert len(fake_llm.requests) == 1
    for sentence in found.sentences:
        assert sentence.unsupported == ()
        passage = ARTICLE[sentence.start : sentence.end]
        assert passage and sentence.text[:6] in passage  # the fake answers extractively


def test_a_made_up_fact_is_named_in_one_retry(fake_llm, settings):
    settings.LLM_BASE_URL = fake_llm.base_url("hallucinate")
    progress = []
    found = drafting.draft(ARTICLE, 200, on_progress=progress.append)
    assert progress == [drafting.ASKING, drafting.RETRYING]
    retry = fake_llm.requests[1]["body"]["messages"][-1]["content"]
    for named in ("ゼータ精機", "2031年", "237%", "9876"):
        assert named in retry
    assert "ゼータ精機" not in found.digest and "1回書き直させました" in found.notice
    assert all(sentence.unsupported == () for sentence in found.sentences)


def test_what_stays_unsupported_is_marked_never_dropped(fake_llm, settings):
    settings.LLM_BASE_URL = fake_llm.base_url("stubborn")
    found = drafting.draft(ARTICLE, 200)
    assert len(fake_llm.requests) == 2 and "必ず確認" in found.notice
    assert MADE_UP["ja"] in found.digest  # shown, not cut
    marked = [s.text[a:b] for s in found.sentences for a, b in s.unsupported]
    assert marked == ["ゼータ精機", "2031年", "237%", "9876億"]


def test_english_articles_get_english_requests(fake_llm, settings):
    settings.LLM_BASE_URL = fake_llm.base_url("stubborn")
    found = drafting.draft(ENGLISH, 200)
    assert fake_llm.requests[0]["body"]["messages"][0]["content"].startswith("You are an editor")
    marked = [s.text[a:b] for s in found.sentences for a, b in s.unsupported]
    assert marked == ["Zeta", "Instruments", "237", "9876", "2031"]


def test_when_the_model_cannot_answer_the_offline_draft_comes_with_the_reason(fake_llm, settings):
    settings.LLM_BASE_URL = fake_llm.base_url("refuse")
    found = drafting.draft(ARTICLE, 120)
    assert found.backend == "offline" and found.digest.startswith("国内の電池メーカー各社が")
    assert "オフラインの下書き" in found.notice and "APIキー" in found.notice
    assert LLM_TEST_KEY not in found.notice


def test_the_command_uses_the_model_when_asked(fake_llm, settings, tmp_path):
    settings.LLM_BASE_URL = fake_llm.base_url("stubborn")
    article = tmp_path / "article.md"
    article.write_text(ARTICLE, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    call_command("digest", str(article), "--backend", "llm", "--json", stdout=out, stderr=err)
    answer = json.loads(out.getvalue())
    assert answer["backend"] == "llm" and "必ず確認" in answer["notice"]
    assert any(sentence["unsupported"] for sentence in answer["sentences"])
    assert "必ず確認" in err.getvalue()


@pytest.mark.django_db
def test_the_editor_polls_a_background_draft_and_sees_the_marks(
    admin_client, fake_llm, settings, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to("2026-12-05 10:00:00+09:00", tick=False)
    settings.LLM_BASE_URL = fake_llm.base_url("stubborn")
    url = reverse("admin:publishing_article_digest_draft")
    editor = admin_client.get(reverse("admin:publishing_article_add")).content.decode()
    assert 'data-digest-llm", "1"' in editor and LLM_TEST_KEY not in editor

    with django_capture_on_commit_callbacks(execute=False) as queued:
        waiting = admin_client.post(url, {"text": ARTICLE, "chars": "200", "backend": "llm"})
    asked = DraftRequest.objects.get()
    poll = reverse("admin:publishing_article_digest_draft_state", args=[asked.pk])
    assert (
        f'data-poll="{poll}"' in waiting.content.decode() and "順番待ち" in waiting.content.decode()
    )

    queued[0]()  # the task runs
    page = admin_client.get(poll).content.decode()
    assert 'data-origin="llm"' in page and 'class="mm-unsupported"' in page
    assert ">ゼータ精機</mark>" in page and "必ず確認" in page
    assert LLM_TEST_KEY not in page

    admin_client.force_login(User.objects.create_superuser("someone", "", "pw-for-test"))
    assert admin_client.get(poll).status_code == 404  # another account's draft


@pytest.mark.django_db
def test_a_draft_nobody_works_on_falls_back_to_offline_with_the_reason(
    admin_client, fake_llm, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to("2026-12-05 10:00:00+09:00", tick=False)
    url = reverse("admin:publishing_article_digest_draft")
    with django_capture_on_commit_callbacks(execute=False):  # no task process runs it
        admin_client.post(url, {"text": ARTICLE, "chars": "120", "backend": "llm"})
    asked = DraftRequest.objects.get()
    poll = reverse("admin:publishing_article_digest_draft_state", args=[asked.pk])
    assert "data-poll" in admin_client.get(poll).content.decode()
    time_machine.move_to(asked.requested_at + timedelta(seconds=61), tick=False)
    page = admin_client.get(poll).content.decode()
    assert 'data-origin="offline"' in page and "タスク処理" in page
    assert "国内の電池メーカー各社が" in page
    time_machine.move_to(asked.requested_at + timedelta(days=2), tick=False)
    with django_capture_on_commit_callbacks(execute=False):
        admin_client.post(url, {"text": ARTICLE, "chars": "120", "backend": "llm"})
    assert DraftRequest.objects.count() == 1  # the day-old request is forgotten


@pytest.mark.django_db
def test_a_request_given_up_on_is_not_taken_up_again(admin_user, fake_llm, time_machine):
    from merumaga.publishing import drafts

    time_machine.move_to("2026-12-05 10:00:00+09:00", tick=False)
    asked = DraftRequest.objects.create(requested_by=admin_user, text=ARTICLE, budget=120)
    time_machine.move_to(asked.requested_at + timedelta(seconds=61), tick=False)
    drafts.draft_state(asked)  # the page gave up: the offline draft, with the reason
    drafts.make_draft.call_local(asked.pk)  # the task starts at last
    asked.refresh_from_db()
    assert asked.result["backend"] == "offline" and "タスク処理" in asked.result["notice"]
    assert fake_llm.requests == []  # the model was not asked for a draft nobody will read
    time_machine.move_to(asked.requested_at + timedelta(days=1, seconds=1), tick=False)
    assert drafts.forget_drafts_hourly.call_local() == 1


@pytest.mark.django_db
def test_offline_stays_the_choice_without_a_model(admin_client):
    url = reverse("admin:publishing_article_digest_draft")
    page = admin_client.post(url, {"text": ARTICLE, "backend": "llm"}).content.decode()
    assert 'data-origin="offline"' in page and not DraftRequest.objects.exists()
    editor = admin_client.get(reverse("admin:publishing_article_add")).content.decode()
    assert "data-digest-llm" not in editor
