"""The API's contract: tokens (shown once, hashed, scoped, expiring, revocable, rate limited),
each resource through the services the admin uses, one error body, the audit log."""

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client

from merumaga import audit
from merumaga.api import services
from merumaga.api.models import ApiToken
from merumaga.delivery.catcher import list_messages
from merumaga.outcomes import figures
from merumaga.publishing.models import Article, Event
from merumaga.subscribers.models import ConsentRecord, Subscriber, Suppression, address_hash
from merumaga.team.models import AuditEntry
from merumaga.testing import (
    ApiClient,
    mailing_of,
    make_article,
    make_subscriber,
    wait_for_mail,
)

pytestmark = pytest.mark.django_db


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]


# Tokens.


def test_a_token_is_printed_once_and_kept_only_as_a_hash(roles):
    api = ApiClient()  # an administrator, for the account
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "api-token",
        "create",
        "--user",
        api.user.username,
        "--scopes",
        "readers:read,stats:read",
        "--expires-days",
        "30",
        stdout=out,
        stderr=err,
    )
    raw = out.getvalue().strip()
    assert raw.startswith("mmg_") and "shown only now" in err.getvalue()
    token = ApiToken.objects.get(prefix=raw[:12])
    assert token.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(list(ApiToken.objects.values()))  # nowhere in the table
    assert token.scopes == ["readers:read", "stats:read"]
    assert token.expires_at - token.created_at == timedelta(days=30)

    listing = io.StringIO()
    call_command("api-token", "list", stdout=listing)
    assert token.prefix in listing.getvalue() and raw not in listing.getvalue()

    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/readers").status_code == 200
    call_command("api-token", "revoke", token.prefix, stdout=io.StringIO())
    refused = client.get("/api/v1/readers")
    assert refused.status_code == 401 and error_of(refused)["code"] == "invalid_token"


def test_a_token_is_refused_when_expired_unknown_or_missing(roles, time_machine):
    time_machine.move_to("2026-12-07 10:00 +09:00", tick=False)
    api = ApiClient()
    assert api.get("/readers").status_code == 200
    time_machine.move_to(api.token.expires_at + timedelta(seconds=1), tick=False)
    assert error_of(api.get("/readers"))["code"] == "invalid_token"

    unknown = Client(HTTP_AUTHORIZATION="Bearer mmg_not-a-token").get("/api/v1/readers")
    assert unknown.status_code == 401 and error_of(unknown)["code"] == "invalid_token"
    missing = Client().get("/api/v1/readers")
    assert missing.status_code == 401 and missing["WWW-Authenticate"] == "Bearer"
    assert error_of(missing)["code"] == "no_token"


def test_a_token_does_only_what_its_scopes_and_its_accounts_role_allow(roles):
    reading = ApiClient(["readers:read"], role="運用")
    assert reading.get("/readers").status_code == 200
    refused = reading.post("/readers", {"email": "a@example.jp", "topics": ["weekly"]})
    assert refused.status_code == 403 and error_of(refused)["code"] == "insufficient_scope"

    # The role taken away: the token stops at once, though its scope is still there.
    reading.user.groups.clear()
    reading.user = type(reading.user).objects.get(pk=reading.user.pk)  # no cached permissions
    gone = reading.get("/readers")
    assert gone.status_code == 403 and error_of(gone)["code"] == "permission_denied"

    # A writer may not even be given a scope beyond their role.
    writer = ApiClient(["content:write"], role="執筆")
    with pytest.raises(services.TokenError, match="readers:read"):
        services.create_token(writer.user, ["readers:read"])
    with pytest.raises(services.TokenError, match="readers:everything"):
        services.create_token(writer.user, ["readers:everything"])


def test_each_token_has_its_own_rate_limit_with_retry_after(roles, settings, time_machine):
    settings.API_RATE_LIMIT = 2
    time_machine.move_to("2026-12-07 10:00:50 +09:00", tick=False)
    first, second = ApiClient(), ApiClient()
    assert [first.get("/topics").status_code for _ in range(2)] == [200, 200]
    over = first.get("/topics")
    assert over.status_code == 429 and over["Retry-After"] == "10"
    assert error_of(over)["code"] == "rate_limited"
    assert second.get("/topics").status_code == 200  # another token counts on its own
    time_machine.move_to("2026-12-07 10:01:00 +09:00", tick=False)
    assert first.get("/topics").status_code == 200  # the next minute


# Readers.


def test_readers_are_paged_by_cursor_and_filtered(roles, time_machine):
    time_machine.move_to("2026-12-01 09:00 +09:00", tick=False)
    early = [make_subscriber(f"early{n}@example.jp", topics=["weekly"]) for n in range(4)]
    time_machine.move_to("2026-12-03 09:00 +09:00", tick=False)
    late = [make_subscriber(f"late{n}@example.jp", topics=["events"]) for n in range(3)]
    make_subscriber("left@example.jp", status=Subscriber.Status.UNSUBSCRIBED, topics=[])
    api = ApiClient()

    seen, cursor, pages = [], "", 0
    while True:
        body = api.get(f"/readers?limit=3&status=confirmed{cursor}").json()
        seen += [reader["id"] for reader in body["items"]]
        pages += 1
        if body["next"] is None:
            break
        cursor = f"&cursor={body['next']}"
    assert seen == [reader.pk for reader in early + late] and pages == 3

    weekly = api.get("/readers?topic=weekly").json()["items"]
    assert [r["email"] for r in weekly] == [r.email for r in early]
    assert all(r["topics"] == ["weekly"] for r in weekly)
    since = api.get("/readers?created_after=2026-12-02T00:00:00%2B09:00").json()["items"]
    assert len(since) == 4  # the late ones and the one who left
    bad = api.get("/readers?cursor=nonsense")
    assert bad.status_code == 422 and error_of(bad)["code"] == "invalid_cursor"


def test_a_new_reader_confirms_by_mail_unless_the_caller_holds_their_consent(
    roles, mail_catcher, django_capture_on_commit_callbacks
):
    api = ApiClient()
    with django_capture_on_commit_callbacks(execute=True):
        asked = api.post(
            "/readers", {"email": "Taro@Example.jp", "topics": ["weekly"], "name": "太郎"}
        )
    assert asked.status_code == 202 and asked.json()["outcome"] == "confirmation_sent"
    pending = Subscriber.objects.get(email="taro@example.jp")
    assert pending.status == Subscriber.Status.PENDING
    assert wait_for_mail(mail_catcher)["To"] == "taro@example.jp"
    assert pending.consent_records.get().source == ConsentRecord.Source.API

    basis = "2026年12月 展示会の申込フォーム (同意欄にチェック)"
    added = api.post(
        "/readers",
        {"email": "hanako@example.jp", "topics": ["weekly", "events"], "consent": {"basis": basis}},
    )
    assert added.status_code == 201
    assert added.json()["status"] == "confirmed"
    assert added.json()["topics"] == ["weekly", "events"]
    record = ConsentRecord.objects.get(email="hanako@example.jp")
    assert (record.source, record.wording) == (ConsentRecord.Source.API, basis)
    assert len(list_messages(mail_catcher)[0]) == 1  # no mail to a reader added with consent

    again = api.post(
        "/readers",
        {"email": "hanako@example.jp", "topics": ["weekly"], "consent": {"basis": basis}},
    )
    assert again.status_code == 409 and error_of(again)["code"] == "conflict"
    Suppression.objects.create(address_hash=address_hash("gone@example.jp"), reason="hard")
    gone = api.post(
        "/readers", {"email": "gone@example.jp", "topics": ["weekly"], "consent": {"basis": basis}}
    )
    assert gone.status_code == 409 and not Subscriber.objects.filter(email="gone@example.jp")

    wrong = api.post("/readers", {"email": "not an address", "topics": ["weekly"]})
    assert wrong.status_code == 422 and "メールアドレス" in error_of(wrong)["message"]


def test_preferences_unsubscribing_and_erasing_go_through_the_services(roles):
    reader = make_subscriber("reader@example.jp", topics=["weekly"])
    api = ApiClient()
    unasked = api.put(f"/readers/{reader.pk}/preferences", {"topics": ["weekly", "events"]})
    assert unasked.status_code == 422 and error_of(unasked)["code"] == "consent_required"
    basis = "電話で本人に確認 (2026-12-05)"
    changed = api.put(
        f"/readers/{reader.pk}/preferences",
        {"topics": ["weekly", "events"], "consent": {"basis": basis}},
    )
    assert changed.status_code == 200 and changed.json()["topics"] == ["weekly", "events"]
    assert reader.consent_records.order_by("id").last().wording == basis
    one = api.post(f"/readers/{reader.pk}/unsubscribe", {"topic": "weekly"})
    assert one.json()["topics"] == ["events"] and one.json()["status"] == "confirmed"
    unknown = api.post(f"/readers/{reader.pk}/unsubscribe", {"topic": "daily"})
    assert unknown.status_code == 422
    actions = list(reader.consent_records.order_by("id").values_list("action", "source"))
    assert actions[-2:] == [("change", "api"), ("unsubscribe", "api")]

    assert api.delete(f"/readers/{reader.pk}").status_code == 204
    erased = api.get(f"/readers/{reader.pk}").json()
    assert erased["status"] == "erased" and erased["email"] is None
    assert Suppression.objects.filter(address_hash=address_hash("reader@example.jp")).exists()


def test_every_error_has_the_same_body(roles):
    api = ApiClient()
    cases = {
        "/readers/999999": (404, "not_found"),
        "/nowhere": (404, "not_found"),
        "/readers?limit=0": (422, "invalid"),
        "/readers?status=everyone": (422, "invalid"),
    }
    for path, (status, code) in cases.items():
        response = api.get(path)
        assert (response.status_code, error_of(response)["code"]) == (status, code), path
    assert error_of(api.get("/readers/999999"))["message"] == "見つかりません。"
    english = api.get("/readers/999999", HTTP_ACCEPT_LANGUAGE="en")
    assert error_of(english)["message"] == "Not found."  # in the client's language
    fields = error_of(api.get("/readers?limit=0"))["fields"]
    assert list(fields) == ["limit"]
    nul = api.post("/readers", {"email": "a\x00@example.jp", "topics": ["weekly"]})
    assert nul.status_code == 422 and "NUL" in str(error_of(nul))
    offset = api.get("/readers?created_after=2026-12-01T00:00:00-23:00")
    assert offset.status_code == 422  # no zone is 23 hours behind


# Content.


def test_content_is_checked_saved_and_published_as_in_the_admin(roles):
    api = ApiClient()
    empty = api.post("/articles", {"body": "本文だけ"})
    assert empty.status_code == 422 and "title" in error_of(empty)["fields"]

    made = api.post("/articles", {"title": "新型電池の量産", "body": "# 見出し\n\n本文。"})
    assert made.status_code == 201
    article = Article.objects.get(pk=made.json()["id"])
    assert article.slug == "新型電池の量産" and "<p>本文。</p>" in article.body_html  # derived
    no_digest = api.post(f"/articles/{article.pk}/publish")
    assert no_digest.status_code == 409 and "要約" in error_of(no_digest)["message"]
    patched = api.patch(f"/articles/{article.pk}", {"digest": "量産が始まった。"})
    assert patched.json()["title"] == "新型電池の量産"  # what was not sent stays
    published = api.post(f"/articles/{article.pk}/publish")
    assert published.json()["status"] == "published"

    backwards = api.post(
        "/events",
        {
            "title": "勉強会",
            "starts_at": "2027-01-20T15:00:00+09:00",
            "ends_at": "2027-01-20T14:00:00+09:00",
        },
    )
    assert backwards.status_code == 422 and "ends_at" in error_of(backwards)["fields"]
    event = api.post(
        "/events",
        {
            "title": "勉強会",
            "starts_at": "2027-01-20T15:00:00+09:00",
            "ends_at": "2027-01-20T17:00:00+09:00",
            "capacity": 30,
        },
    )
    assert event.status_code == 201 and Event.objects.get().capacity == 30


def test_notifying_readers_on_publishing_needs_a_role_that_may_send(roles):
    writer = ApiClient(["content:write"], role="執筆")
    refused = writer.post("/articles", {"title": "記事", "notify_subscribers": True})
    assert refused.status_code == 403 and not Article.objects.exists()
    assert writer.post("/articles", {"title": "記事"}).status_code == 201


def test_a_report_takes_only_a_pdf(roles):
    api = ApiClient()
    report = api.post("/reports", {"title": "電池産業レポート", "summary": "概要。"}).json()
    upload = api.client.post(
        f"/api/v1/reports/{report['id']}/pdf",
        {"pdf": io.BytesIO(b"<html>not a pdf</html>")},
        HTTP_AUTHORIZATION=f"Bearer {api.raw}",
    )
    assert upload.status_code == 422 and "pdf" in error_of(upload)["fields"]
    pdf = io.BytesIO(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n")
    pdf.name = "report.pdf"
    stored = api.client.post(
        f"/api/v1/reports/{report['id']}/pdf",
        {"pdf": pdf},
        HTTP_AUTHORIZATION=f"Bearer {api.raw}",
    )
    assert stored.status_code == 200 and stored.json()["has_pdf"] is True
    assert api.post(f"/reports/{report['id']}/publish").json()["status"] == "published"


# Mailings and figures.


def test_a_mailing_is_made_previewed_test_sent_and_started_through_the_api(
    roles, mail_catcher, settings, client
):
    reader = make_subscriber("reader@example.jp", name="読者 花子", topics=["weekly"])
    make_subscriber("other@example.jp", topics=["weekly"])
    api = ApiClient()
    made = api.post(
        "/mailings", {"topic": "weekly", "subject": "年末のお知らせ", "intro": "休業日のご案内。"}
    )
    assert made.status_code == 201 and made.json()["status"] == "draft"
    mailing = made.json()["id"]

    preview = api.get(f"/mailings/{mailing}/preview?reader={reader.pk}").json()
    assert preview["reader"] == reader.pk and "読者 花子" in preview["text"]
    assert preview["recipients"] == 2
    links = {
        "/" + part.split("://", 1)[1].split("/", 1)[1].split()[0]
        for part in preview["text"].split("http")[1:]
        if "/unsubscribe/" in part or "/preferences/" in part
    }
    assert links and all(client.get(link).status_code == 404 for link in links)

    sent = api.post(f"/mailings/{mailing}/test-send", {"addresses": ["editor@example.jp"]})
    assert sent.json()["sent"] == ["editor@example.jp"]
    assert "年末のお知らせ" in wait_for_mail(mail_catcher)["Subject"]

    settings.MAILING_APPROVAL_ABOVE = 1  # two readers: a second account must approve
    blocked = api.post(f"/mailings/{mailing}/start")
    assert blocked.status_code == 409 and "承認" in error_of(blocked)["message"]
    settings.MAILING_APPROVAL_ABOVE = 0
    started = api.post(f"/mailings/{mailing}/start")
    assert started.json()["status"] == "sending"
    assert api.post(f"/mailings/{mailing}/pause").json()["status"] == "paused"
    assert api.post(f"/mailings/{mailing}/resume").json()["status"] == "sending"
    again = api.post(f"/mailings/{mailing}/resume")
    assert again.status_code == 409  # not paused: the service's own words say so
    assert api.get("/mailings?status=sending").json()["items"][0]["id"] == mailing


def test_the_figures_are_the_dashboards(roles):
    make_subscriber("a@example.jp", topics=["weekly"])
    make_subscriber("b@example.jp", topics=["weekly", "events"])
    analyst = ApiClient(["stats:read"], role="分析")
    by_topic = analyst.get("/stats/readers").json()
    assert by_topic == [
        {"key": f.key, "name": f.name, "readers": f.readers, "joined": f.joined, "left": f.left}
        for f in figures.reader_figures()
    ]
    assert {row["key"]: row["readers"] for row in by_topic}["weekly"] == 2
    daily = analyst.get("/stats/readers/daily?days=7&topic=events").json()
    assert len(daily) == 7 and daily[-1]["readers"] == 1
    weekly = mailing_of("weekly")
    assert analyst.get(f"/mailings/{weekly.pk}/stats").json()["sent"] == 0
    assert analyst.get("/readers").status_code == 403  # no personal data for the analyst


def test_what_a_token_changes_is_on_the_audit_log_under_its_account(roles):
    article = make_article(title="元の題")
    api = ApiClient()
    api.patch(f"/articles/{article.pk}", {"title": "新しい題"})
    entry = AuditEntry.objects.get(action="publishing.Article.change")
    assert (entry.user, entry.via) == (api.user, "api")
    assert entry.changes["title"] == ["元の題", "新しい題"]
    assert audit.current_actor.get() is None  # the request's actor ended with the request
    Article.objects.filter(pk=article.pk).get().save()  # a change outside any request
    assert AuditEntry.objects.filter(action="publishing.Article.change").count() == 1


def test_the_schema_and_its_documentation_are_served(roles):
    client = Client()
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"
    assert {"/api/v1/readers", "/api/v1/mailings/{mailing_id}/start"} <= set(schema["paths"])
    docs = client.get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in docs and "cdn" not in docs


def test_an_administrator_revokes_a_token_in_the_admin(roles, admin_client):
    api = ApiClient()
    response = admin_client.post(
        "/admin/api/apitoken/",
        {"action": "revoke_tokens", "_selected_action": [api.token.pk]},
        follow=True,
    )
    assert "取り消しました" in response.content.decode()
    assert error_of(api.get("/topics"))["code"] == "invalid_token"
    # No token is added, edited or deleted by hand: they are made where they are shown once.
    assert admin_client.get("/admin/api/apitoken/add/").status_code == 403


def test_an_opt_out_is_never_undone_and_consent_is_for_those_who_may_import(roles):
    left = make_subscriber("left@example.jp", status=Subscriber.Status.UNSUBSCRIBED, topics=[])
    api = ApiClient()
    consent = {"basis": "展示会で口頭で"}
    back = api.put(f"/readers/{left.pk}/preferences", {"topics": ["weekly"], "consent": consent})
    assert back.status_code == 409 and "POST /readers" in error_of(back)["message"]
    assert api.put(f"/readers/{left.pk}/preferences", {"topics": []}).status_code == 200

    operator = ApiClient(["readers:write"], role="運用")  # may change readers, not import them
    reader = make_subscriber("reader@example.jp", topics=["weekly"])
    more = {"topics": ["weekly", "events"], "consent": consent}
    assert operator.put(f"/readers/{reader.pk}/preferences", more).status_code == 403
    fewer = operator.put(f"/readers/{reader.pk}/preferences", {"topics": []})
    assert fewer.json()["status"] == "unsubscribed"
    added = operator.post(
        "/readers", {"email": "new@example.jp", "topics": ["weekly"], "consent": consent}
    )
    assert added.status_code == 403 and not Subscriber.objects.filter(email="new@example.jp")
    said = operator.post(
        "/readers", {"email": "new@example.jp", "topics": ["weekly"], "organisation": "研究所"}
    )
    assert said.status_code == 422 and "organisation" in error_of(said)["fields"]  # not dropped


def test_odd_input_is_a_clear_client_error(roles, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    api = ApiClient()
    far = api.get("/readers?created_after=9999-12-31T23:00:00-05:00")
    assert far.status_code == 422
    bad_ip = api.post(
        "/readers", {"email": "a@example.jp", "topics": ["weekly"], "ip_address": "not-an-ip"}
    )
    assert bad_ip.status_code == 422 and "ip_address" in error_of(bad_ip)["fields"]
    huge = api.post("/articles", {"title": "大きすぎる記事", "body": "あ" * 40_000})
    assert huge.status_code == 413 and error_of(huge)["code"] == "too_large"


def test_a_token_stops_with_its_accounts_staff_status_and_refusals_count(roles, settings):
    settings.API_RATE_LIMIT = 2
    reading = ApiClient(["readers:read"], role="運用")
    assert [reading.post("/articles", {"title": "x"}).status_code for _ in range(3)] == [
        403,
        403,
        429,  # refused requests count against the limit too
    ]
    api = ApiClient()
    api.user.is_staff = False
    api.user.save()
    assert error_of(api.get("/topics"))["code"] == "invalid_token"


def test_a_writer_cannot_switch_a_notice_off_and_null_clears_a_field(roles):
    sender, writer = ApiClient(), ApiClient(["content:write"], role="執筆")
    article = sender.post("/articles", {"title": "記事", "notify_subscribers": True}).json()
    off = writer.patch(f"/articles/{article['id']}", {"notify_subscribers": False})
    assert off.status_code == 403 and Article.objects.get().notify_subscribers
    assert writer.patch(f"/articles/{article['id']}", {"title": "新しい題"}).status_code == 200
    assert writer.patch(f"/articles/{article['id']}", {"tags": None}).json()["tags"] == []

    times = {"starts_at": "2027-01-20T15:00:00+09:00", "ends_at": "2027-01-20T17:00:00+09:00"}
    event = sender.post("/events", {"title": "勉強会", "capacity": 30, **times}).json()
    cleared = sender.patch(f"/events/{event['id']}", {"capacity": None})
    assert cleared.json()["capacity"] is None and Event.objects.get().capacity is None
    no_title = sender.patch(f"/events/{event['id']}", {"title": None})
    assert no_title.status_code == 422 and "title" in error_of(no_title)["fields"]
