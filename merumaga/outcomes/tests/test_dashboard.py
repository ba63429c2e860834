"""The admin's first page: readers over time, the last mailings, this week's deliverability,
and what needs attention."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from merumaga.bounces.models import BounceEvent, Kind, Source
from merumaga.mailings.models import Mailing
from merumaga.outcomes import charts, figures
from merumaga.subscribers import services
from merumaga.subscribers.models import Subscriber
from merumaga.testing import mailing_of, make_subscriber

pytestmark = pytest.mark.django_db
TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO)


def reader(email: str, confirmed: datetime, left: datetime | None = None) -> Subscriber:
    status = Subscriber.Status.UNSUBSCRIBED if left else Subscriber.Status.CONFIRMED
    subscriber = make_subscriber(email, status=status)
    Subscriber.objects.filter(pk=subscriber.pk).update(confirmed_at=confirmed, unsubscribed_at=left)
    return subscriber


def test_readers_per_day_are_counted_back_from_today_in_japan_time():
    reader("old@example.jp", NOW - timedelta(days=200))
    # Confirmed at 00:30 on 12/06 in Tokyo: 12/05 in UTC, 12/06 here.
    reader("new@example.jp", datetime(2026, 12, 6, 0, 30, tzinfo=TOKYO))
    reader(
        "gone@example.jp", NOW - timedelta(days=100), left=datetime(2026, 12, 7, 9, 0, tzinfo=TOKYO)
    )

    series = {day.day.isoformat(): day for day in figures.reader_series(NOW, days=5)}

    assert list(series) == ["2026-12-03", "2026-12-04", "2026-12-05", "2026-12-06", "2026-12-07"]
    assert [d.readers for d in series.values()] == [2, 2, 2, 3, 2]
    assert (series["2026-12-06"].joined, series["2026-12-07"].left) == (1, 1)
    assert series["2026-12-05"].joined == 0


def test_readers_of_one_topic_per_day_follow_their_consent_records(time_machine, mail_catcher):
    form = services.Evidence(source="form")
    link = services.Evidence(source="email_link")
    days = {n: datetime(2026, 12, n, 12, 0, tzinfo=TOKYO) for n in range(1, 8)}

    time_machine.move_to(datetime(2026, 10, 1, 12, 0, tzinfo=TOKYO))  # before the window
    make_subscriber("long@example.jp", topics=["weekly", "articles"])
    time_machine.move_to(days[3])
    services.request_subscription("new@example.jp", ["weekly"], form)
    newcomer = Subscriber.objects.get(email="new@example.jp")
    # Pending until now: joins on the day of confirming, 12/04 in Tokyo (12/03 in UTC).
    time_machine.move_to(datetime(2026, 12, 4, 0, 30, tzinfo=TOKYO))
    services.confirm(newcomer, form)
    time_machine.move_to(days[5])
    services.request_subscription("never@example.jp", ["weekly"], form)  # never confirms
    long = Subscriber.objects.get(email="long@example.jp")
    services.update_preferences(long, ["articles"], form)  # leaves the weekly report
    time_machine.move_to(days[6])
    services.update_preferences(long, ["articles", "weekly"], form)  # and comes back
    services.unsubscribe(newcomer, "weekly", link)
    time_machine.move_to(days[7])
    services.erase(long, link)

    series = {d.day.day: d for d in figures.topic_series("weekly", days[7], days=5)}

    assert list(series) == [3, 4, 5, 6, 7]
    assert [series[n].readers for n in series] == [1, 2, 1, 1, 0]
    assert [(series[n].joined, series[n].left) for n in series] == [
        (0, 0),
        (1, 0),
        (0, 1),
        (1, 1),
        (0, 1),
    ]
    # Today's count is the topic's subscribed, confirmed readers, as the table shows it.
    [weekly] = [t for t in figures.reader_figures(days[7]) if t.key == "weekly"]
    assert weekly.readers == series[7].readers == 0
    articles = figures.topic_series("articles", days[7], days=5)
    assert [d.readers for d in articles] == [1, 1, 1, 1, 0]


def test_the_figures_are_for_accounts_that_may_read_the_results(client, django_user_model):
    make_subscriber("reader@example.jp", topics=["weekly"])
    writer = django_user_model.objects.create_user("writer", password="pw", is_staff=True)
    writer.user_permissions.add(Permission.objects.get(codename="view_article"))
    client.force_login(writer)
    page = client.get(reverse("admin:index")).content.decode()
    assert "outcomes-dashboard" not in page and "配信結果」を見る権限" in page
    writer.user_permissions.add(Permission.objects.get(codename="view_mailingreport"))
    page = client.get(reverse("admin:index")).content.decode()
    assert "outcomes-dashboard" in page and "最近の配信" in page


def test_the_first_page_draws_the_chosen_topics_readers(admin_client):
    make_subscriber("reader@example.jp", topics=["weekly"])
    page = admin_client.get(reverse("admin:index"), {"topic": "weekly"}).content.decode()
    assert '<span class="current" aria-current="true">週報</span>' in page
    assert "「週報」の読者数" in page
    assert f"{reverse('admin:outcomes_readers_csv')}?topic=weekly" in page
    # An unknown topic draws everyone's, as without one.
    page = admin_client.get(reverse("admin:index"), {"topic": "nope"}).content.decode()
    assert '<span class="current" aria-current="true">すべての読者</span>' in page


def test_this_weeks_complaints_against_the_mailbox_providers_lines(time_machine):
    time_machine.move_to(NOW)
    mailing = mailing_of("custom")
    Mailing.objects.filter(pk=mailing.pk).update(started_at=NOW - timedelta(days=1), sent=1000)
    for n in range(2):
        BounceEvent.objects.create(
            source=Source.SMTP, kind=Kind.COMPLAINT, address_hash=str(n), domain="example.jp"
        )
    week = figures.deliverability(NOW)
    assert (week.sent, week.complaints) == (1000, 2)
    assert figures.COMPLAINT_WARNING < week.rate(week.complaints) < figures.COMPLAINT_LIMIT


def test_the_first_page_shows_the_figures_and_what_needs_attention(admin_client):
    make_subscriber("reader@example.jp", topics=["weekly"])
    paused = mailing_of("custom")
    Mailing.objects.filter(pk=paused.pk).update(
        status=Mailing.Status.PAUSED, started_at=timezone.now()
    )
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert "要対応" in page and f"一時停止中の配信: {paused.subject}" in page
    assert page.count('<svg class="outcomes-chart"') == 2
    assert 'aria-label="読者数の推移 (過去90日)"' in page
    assert "最近の配信" in page and "今週の到達状況" in page and "配信停止の理由" in page
    assert reverse("admin:outcomes_mailingreport_change", args=[paused.pk]) in page


def test_a_chart_scales_to_its_largest_value_and_escapes_its_labels():
    svg = charts.line_chart("<title>", ["a", "b", "c"], [charts.Line("x<", [0, 5, 10], "#000")])
    assert "&lt;title&gt;" in svg and "x&lt;" in svg
    points = svg.split('points="')[1].split('"')[0].split()
    ys = [float(p.split(",")[1]) for p in points]
    assert ys[0] == charts.HEIGHT - charts.PAD and ys[2] == charts.PAD  # 0 at the axis, 10 on top


def test_unsubscribe_reasons_are_counted_per_topic():
    from merumaga.subscribers import services

    left = make_subscriber("left@example.jp", topics=[])
    services.record_unsubscribe_reason("link-1", left, "weekly", "too_many")
    services.record_unsubscribe_reason("link-2", left, "weekly", "too_many")
    services.record_unsubscribe_reason("link-3", left, None, "never_asked")
    rows = dict(figures.unsubscribe_reasons())
    topics = figures.reason_topics()
    assert rows["配信の回数が多い"][topics.index("週報")] == 2
    assert rows["登録した覚えがない"][-1] == 1  # the last column: everything


def test_the_reader_figures_export_as_csv(admin_client, time_machine):
    time_machine.move_to(NOW)
    make_subscriber("reader@example.jp", topics=["weekly"])
    response = admin_client.get(reverse("admin:outcomes_readers_csv"))
    rows = response.content.decode("utf-8-sig").splitlines()
    assert rows[0] == "配信種別,読者数,新規 (30日),配信停止 (30日)"
    assert rows[1].startswith("週報,1,")
    assert rows[-1].startswith("2026-12-07,")  # today, in Japan time
    assert "すべての読者" in rows


def test_one_topics_readers_export_as_csv(admin_client, time_machine):
    time_machine.move_to(NOW)
    make_subscriber("reader@example.jp", topics=["weekly"])
    response = admin_client.get(reverse("admin:outcomes_readers_csv"), {"topic": "events"})
    rows = response.content.decode("utf-8-sig").splitlines()
    assert "イベントのお知らせ・招待状" in rows
    assert rows[-1] == "2026-12-07,0,0,0"  # the reader chose only the weekly report
