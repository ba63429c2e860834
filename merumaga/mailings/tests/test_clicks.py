"""Click tracking: links of a mailing as sent go through /c/…, which counts and redirects."""

import re
import time
from email import message_from_bytes, policy

import pytest
from django.core.signals import request_finished, request_started
from django.db import OperationalError, close_old_connections

from merumaga.institute.models import SiteSettings
from merumaga.mailings import clicks, rendering
from merumaga.mailings.models import Click, Link
from merumaga.subscribers import services as subscriber_services
from merumaga.testing import mailing_of, make_subscriber

pytestmark = pytest.mark.django_db

TRACKED = re.compile(r"http://localhost:8000(/c/[0-9a-f-]+/(?:[0-9a-f-]+/)?)")


def sent_copy(mailing, reader):
    """The mail as the delivery worker sends it to `reader`: text, HTML."""
    compiled = rendering.compile_mailing(mailing, "ja", track=True)
    message = message_from_bytes(rendering.build(compiled, reader).data, policy=policy.default)
    text = message.get_body(("plain",)).get_content()
    return text, message.get_body(("html",)).get_content()


def test_every_link_of_a_sent_mailing_is_tracked_and_short_in_the_text():
    weekly = mailing_of("weekly")
    reader = make_subscriber("reader@example.jp", topics=["weekly"])
    text, html = sent_copy(weekly, reader)
    links = {link.url: link for link in Link.objects.filter(mailing=weekly)}
    article = weekly.articles.get()
    article_url = f"http://localhost:8000{article.get_absolute_url()}"
    assert links[article_url].article == article
    # No link leads anywhere directly but the reader's own (preferences, unsubscribe).
    direct = [u for u in re.findall(r"https?://\S+", text) if "/c/" not in u]
    assert all("/preferences/" in u or "/unsubscribe/" in u for u in direct), direct
    assert article_url not in html and article_url not in text
    tracked_in_text = TRACKED.findall(text)
    assert tracked_in_text and all(len(path) <= 24 for path in tracked_in_text)
    assert len(links) == len(set(TRACKED.findall(text)) | set(TRACKED.findall(html)))


def test_previews_and_test_sends_are_not_tracked():
    weekly = mailing_of("weekly")
    rendering.compile_mailing(weekly, "ja")
    rendering.compile_mailing(weekly, "ja", test=True)
    assert not Link.objects.exists()


def test_a_click_is_counted_and_sent_on_to_the_target(client):
    weekly = mailing_of("weekly")
    text, _ = sent_copy(weekly, make_subscriber("reader@example.jp", topics=["weekly"]))
    path = TRACKED.findall(text)[0]
    link = Link.objects.get(pk=int(path.split("/")[2].split("-")[0]))

    response = client.get(path)

    assert response.status_code == 302 and response["Location"] == link.url
    assert response["Cache-Control"].startswith("max-age=0")
    [click] = Click.objects.all()
    assert click.link == link and click.subscriber is None  # who clicked is not kept by default
    assert client.head(path).status_code == 302  # a link checker's HEAD is no click
    assert Click.objects.count() == 1


def test_a_forged_altered_or_unknown_link_gets_the_ordinary_404(client):
    weekly = mailing_of("weekly")
    text, _ = sent_copy(weekly, make_subscriber("reader@example.jp", topics=["weekly"]))
    path = TRACKED.findall(text)[0]
    link_id, mac = path.split("/")[2].split("-")
    ordinary = client.get("/no-such-page/")
    forged = [
        f"/c/{link_id}-{'0' * 16}/",  # a guessed signature
        f"/c/{int(link_id) + 1}-{mac}/",  # another link's id with this one's signature
        f"/c/{link_id}/",  # no signature
        f"{path}1-1-{'0' * 16}/",  # a made-up reader
        "/c/https%3A%2F%2Fevil.example%2F/",  # a target in the URL is never followed
    ]
    for bad in forged:
        response = client.get(bad)
        assert response.status_code == 404, bad
        assert [t.name for t in response.templates] == [t.name for t in ordinary.templates], bad
    Link.objects.all().delete()
    clicks.forget_cached()
    assert client.get(path).status_code == 404  # its mailing removed
    assert not Click.objects.exists()


def test_clicks_per_reader_when_the_site_asks_shown_in_their_data_and_forgotten_on_erasure(
    client,
):
    SiteSettings.objects.create(clicks_per_reader=True)
    weekly = mailing_of("weekly")
    reader = make_subscriber("reader@example.jp", topics=["weekly"])
    other = make_subscriber("other@example.jp", topics=["weekly"])
    text, _ = sent_copy(weekly, reader)
    other_text, _ = sent_copy(weekly, other)
    path = TRACKED.findall(text)[0]
    assert path.count("/") == 4 and path not in TRACKED.findall(other_text)

    assert client.get(path).status_code == 302
    assert Click.objects.get().subscriber == reader
    data = subscriber_services.export_data(reader)
    assert [click["mailing"] for click in data["clicks"]] == [str(weekly.pk)]
    assert subscriber_services.export_data(other)["clicks"] == []

    subscriber_services.erase(reader, subscriber_services.Evidence(source="admin"))
    click = Click.objects.get()
    assert click.subscriber is None and click.link.mailing == weekly  # still counted


def test_a_reader_part_from_another_mailing_is_refused(client):
    SiteSettings.objects.create(clicks_per_reader=True)
    weekly = mailing_of("weekly")
    reader = make_subscriber("reader@example.jp", topics=["weekly"])
    path = TRACKED.findall(sent_copy(weekly, reader)[0])[0]
    link_part = path.split("/")[2]
    elsewhere = clicks.reader_token(weekly.pk + 1, reader.pk)
    assert client.get(f"/c/{link_part}/{elsewhere}/").status_code == 404


def test_clicks_wait_in_the_buffer_until_written_and_a_gone_link_loses_only_its_own(settings):
    settings.CLICK_FLUSH_SECONDS = 3600  # the writer thread would not wake during the test
    weekly = mailing_of("weekly")
    sent_copy(weekly, make_subscriber("reader@example.jp", topics=["weekly"]))
    first, second = Link.objects.order_by("pk")[:2]
    buffer = clicks.ClickBuffer()
    for link in (first, first, second):
        buffer.add(clicks.target_of(link.pk), None)
    assert not Click.objects.exists()
    second.delete()
    assert buffer.flush() == 2
    assert list(Click.objects.values_list("link", flat=True)) == [first.pk, first.pk]
    assert buffer.flush() == 0


def test_the_click_url_names_no_reader_and_no_target():
    weekly = mailing_of("weekly")
    reader = make_subscriber("reader@example.jp", topics=["weekly"])
    sent_copy(weekly, reader)
    link = Link.objects.first()
    url = clicks.link_url(link)
    assert re.fullmatch(rf"http://localhost:8000/c/{link.pk}-[0-9a-f]{{16}}/", url)
    assert url.count("/") == 5  # http://host/c/<link>/: no reader part by default
    assert link.url not in url


def test_text_around_a_link_in_the_text_part_stays_as_written():
    weekly = mailing_of("custom")
    weekly.intro = (
        "詳しくは[こちら](https://example.jp/event)をご覧ください。"
        "出典は https://ja.wikipedia.org/wiki/Foo_(bar) です。"
    )
    weekly.save()
    text, _ = sent_copy(weekly, make_subscriber("reader@example.jp", topics=["articles"]))
    links = set(Link.objects.filter(mailing=weekly).values_list("url", flat=True))
    assert "https://example.jp/event" in links
    unwrapped = re.sub(r"\r?\n", "", text)  # lines end at 35 wide characters
    assert "をご覧ください" in unwrapped and "です。" in unwrapped
    assert all(url.isascii() for url in links)


@pytest.mark.django_db(transaction=True)
def test_the_writer_thread_writes_what_waits(settings):
    settings.CLICK_FLUSH_SECONDS = 0.05
    weekly = mailing_of("weekly")
    sent_copy(weekly, make_subscriber("reader@example.jp", topics=["weekly"]))
    buffer = clicks.ClickBuffer()
    buffer.add(clicks.target_of(Link.objects.first().pk), None)
    deadline = time.monotonic() + 60  # polls until the thread has written: margin for slow runs
    while not Click.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Click.objects.count() == 1 and buffer.flush() == 0
    deadline = time.monotonic() + 60  # with nothing left to write, the writer ends
    while buffer.writing and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not buffer.writing


def test_a_non_ascii_digit_in_a_link_is_the_ordinary_404(client):
    assert client.get("/c/%C2%B2-0000000000000000/").status_code == 404


def test_a_batch_the_database_refuses_waits_for_the_next_flush(settings, monkeypatch):
    settings.CLICK_FLUSH_SECONDS = 3600
    weekly = mailing_of("weekly")
    sent_copy(weekly, make_subscriber("reader@example.jp", topics=["weekly"]))
    link = Link.objects.first()
    buffer = clicks.ClickBuffer()
    buffer.add(clicks.target_of(link.pk), None)
    create = Click.objects.bulk_create

    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(Click.objects, "bulk_create", locked)
    with pytest.raises(OperationalError):
        buffer.flush()
    buffer.add(clicks.target_of(link.pk), None)
    monkeypatch.setattr(Click.objects, "bulk_create", create)
    assert buffer.flush() == 2 and Click.objects.count() == 2


def test_the_web_servers_application_answers_clicks_as_the_view_does(rf):
    from merumaga.wsgi import application

    weekly = mailing_of("weekly")
    text, _ = sent_copy(weekly, make_subscriber("reader@example.jp", topics=["weekly"]))
    path = TRACKED.findall(text)[0]
    link = Link.objects.get(pk=int(path.split("/")[2].split("-")[0]))

    def call(method: str, url: str) -> tuple[str, dict[str, str]]:
        answered = {}

        def start_response(status, headers, exc_info=None):
            answered["status"], answered["headers"] = status, dict(headers)

        environ = rf.generic(method, url).environ
        # As Django's test client does: the request's end must not close the test's database.
        for signal in (request_started, request_finished):
            signal.disconnect(close_old_connections)
        try:
            b"".join(application(environ, start_response))
        finally:
            for signal in (request_started, request_finished):
                signal.connect(close_old_connections)
        return answered["status"], answered["headers"]

    status, headers = call("GET", path)
    assert status == "302 Found" and headers["Location"] == link.url
    assert headers["Referrer-Policy"] == "same-origin"  # the link's token stays with us
    assert headers["Cache-Control"].startswith("max-age=0")
    assert Click.objects.filter(link=link).count() == 1
    assert call("HEAD", path)[0] == "302 Found" and Click.objects.count() == 1
    # Anything else goes on to Django: a bad link gets the site's ordinary 404.
    assert call("GET", f"/c/{link.pk}-{'0' * 16}/")[0].startswith("404")
    assert call("POST", path)[0] != "302 Found" and Click.objects.count() == 1
