"""A mailing's figures come from what really happened to it: sent by the worker, bounced,
complained about, left through its links and its List-Unsubscribe address, clicked."""

import re
from datetime import timedelta
from email import message_from_bytes, policy
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from merumaga.bounces import services as bounces
from merumaga.bounces.models import Kind, Source
from merumaga.delivery.worker import run_until_idle
from merumaga.mailings import services
from merumaga.outcomes import figures
from merumaga.subscribers.models import ConsentRecord, Topic
from merumaga.testing import mailing_of, make_subscriber

pytestmark = pytest.mark.django_db(transaction=True)


def text_of(data: bytes) -> str:
    return message_from_bytes(data, policy=policy.default).get_body(("plain",)).get_content()


@pytest.fixture
def sent_weekly(relay):
    """A weekly report sent by the worker to five readers; their mails by address."""
    readers = [make_subscriber(f"r{n}@example.jp", topics=["weekly"]) for n in range(5)]
    weekly = mailing_of("weekly")
    services.start(weekly)
    run_until_idle(batch_size=50)
    mails = {recipient: data for _, recipient, data in relay.handler.accepted}
    return weekly, readers, mails


def test_every_figure_counts_what_happened_to_the_mailing(sent_weekly, client):
    weekly, readers, mails = sent_weekly
    # r0 bounces for good, r1 for now, r2 reports it as spam.
    for reader, kind in zip(readers, (Kind.HARD, Kind.SOFT, Kind.COMPLAINT), strict=False):
        bounces.record_event(
            kind=kind, source=Source.SMTP, address=reader.email, subscriber=reader, mailing=weekly
        )
    # r3 leaves with the link in the mail (one click, as a mail app's unsubscribe button does).
    unsubscribe = re.search(
        r"http://localhost:8000(/unsubscribe/\S+)", text_of(mails["r3@example.jp"])
    )
    assert client.post(unsubscribe[1]).status_code == 200
    # r4 leaves by mail to the List-Unsubscribe address (it names no mailing: the latest one).
    bounces.record_event(
        kind=Kind.UNSUBSCRIBE,
        source=Source.SMTP,
        address=readers[4].email,
        subscriber=readers[4],
        topic_id=Topic.objects.get(key="weekly").pk,
    )
    # Three clicks on the article's link, from two mails.
    for address in ("r3@example.jp", "r4@example.jp", "r4@example.jp"):
        path = re.search(r"http://localhost:8000(/c/\S+/)", text_of(mails[address]))[1]
        assert client.get(path).status_code == 302

    found = figures.mailing_figures(weekly)

    assert (found.audience, found.sent, found.deferred, found.failed) == (5, 5, 0, 0)
    assert (found.hard_bounces, found.soft_bounces, found.complaints) == (1, 1, 1)
    # The complaint unsubscribes too, but from no link of the mailing: it counts as a complaint.
    assert found.unsubscribes == 2
    assert ConsentRecord.objects.filter(mailing_id=weekly.pk).count() == 2
    assert found.clicks == 3 and found.unique_clickers is None  # not kept per reader
    assert sum(link.clicks for link in found.links) == 3
    assert found.rate(found.clicks) == 3 / 5

    out = StringIO()
    call_command("stats", "mailing", str(weekly.pk), stdout=out)
    line = dict(pair.split("=") for pair in out.getvalue().split())
    assert line["audience"] == "5" and line["sent"] == "5" and line["failed"] == "0"
    assert (line["hard_bounces"], line["soft_bounces"], line["complaints"]) == ("1", "1", "1")
    assert (line["unsubscribes"], line["clicks"], line["unique_clickers"]) == ("2", "3", "unknown")


def test_the_report_page_shows_the_funnel_and_the_links(sent_weekly, admin_client):
    weekly, _, _ = sent_weekly
    listing = admin_client.get(reverse("admin:outcomes_mailingreport_changelist"))
    assert weekly.subject in listing.content.decode()
    page = admin_client.get(reverse("admin:outcomes_mailingreport_change", args=[weekly.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "送信済み" in html and "リンクごとのクリック" in html and "クリック率" in html
    article = weekly.articles.get()
    assert article.title in html  # the article a link leads to


def test_stats_readers_and_a_missing_mailing(sent_weekly):
    out = StringIO()
    call_command("stats", "readers", stdout=out)
    lines = {line.split()[0]: line for line in out.getvalue().splitlines()}
    assert "readers=5" in lines["topic=weekly"]
    with pytest.raises(Exception, match="No mailing has ID 999999"):
        call_command("stats", "mailing", "999999")


def test_per_mailbox_provider_and_per_hour(relay, admin_client):
    for address in ("a@gmail.com", "b@docomo.ne.jp", "c@ezweb.ne.jp", "d@example.jp"):
        make_subscriber(address, topics=["weekly"])
    relay.handler.rules = {"b@docomo.ne.jp": "550"}
    weekly = mailing_of("weekly")
    services.start(weekly)
    run_until_idle(batch_size=50, first_retry=timedelta(0))

    groups = {group.name: group for group in figures.provider_figures(weekly)}
    assert set(groups) == {"Gmail", "docomo", "au", "others"}
    assert (groups["Gmail"].sent, groups["docomo"].sent, groups["docomo"].failed) == (1, 0, 1)
    assert groups["Gmail"].clicks is None  # clicks are not kept per reader
    assert figures.provider("I.SOFTBANK.JP") == "SoftBank"
    weekly.refresh_from_db()
    hours = figures.first_hours(weekly)
    assert len(hours) == 72 and sum(hour.sent for hour in hours) == 3

    page = admin_client.get(reverse("admin:outcomes_mailingreport_change", args=[weekly.pk]))
    assert "メールサービス別" in page.content.decode() and "docomo" in page.content.decode()
    exported = admin_client.get(
        reverse("admin:outcomes_mailingreport_change", args=[weekly.pk]), {"format": "csv"}
    )
    assert exported["Content-Type"] == "text/csv; charset=utf-8"
    rows = exported.content.decode("utf-8-sig").splitlines()
    assert rows[0] == "項目,件数,送信済みに対する割合" and "送信済み,3," in rows[2]
