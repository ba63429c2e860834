"""/healthz answers while the process lives; /readyz says, check by check, whether the
database (migrated), the task queue, a delivery worker and the mail relay are there."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from merumaga.delivery.models import WorkerBeat
from merumaga.delivery.worker import run_until_idle
from merumaga.operations import health
from merumaga.testing import free_port


@pytest.fixture(autouse=True)
def fresh_answers():
    health.forget()
    yield
    health.forget()


def beat(seconds_ago: float) -> None:
    seen = timezone.now() - timedelta(seconds=seconds_ago)
    WorkerBeat.objects.create(worker="host:1", started_at=seen, seen_at=seen)


@pytest.mark.django_db
def test_healthz_asks_nothing_of_the_database(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert len(queries) == 0


@pytest.mark.django_db
def test_ready_when_every_dependency_answers(client, mail_catcher, time_machine):
    time_machine.move_to("2026-12-07 10:00 +09:00", tick=False)
    beat(seconds_ago=20)
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ready", body
    assert set(body["checks"]) == {
        "database",
        "migrations",
        "task_queue",
        "delivery_worker",
        "mail_relay",
    }
    assert body["checks"]["delivery_worker"]["detail"] == "1 alive"
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_not_ready_says_which_dependency_is_missing(client, settings, time_machine):
    time_machine.move_to("2026-12-07 10:00 +09:00", tick=False)
    settings.SMTP_URL = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    response = client.get("/readyz")
    checks = response.json()["checks"]
    assert response.status_code == 503
    assert "merumaga worker" in checks["delivery_worker"]["detail"]
    assert not checks["mail_relay"]["ok"] and checks["database"]["ok"]

    beat(seconds_ago=90)  # a worker that stopped
    assert "90 s" in client.get("/readyz").json()["checks"]["delivery_worker"]["detail"]

    MigrationRecorder.Migration.objects.filter(app="api").delete()  # as if never applied
    health.forget()
    migrations = client.get("/readyz").json()["checks"]["migrations"]
    assert not migrations["ok"] and "api.0001_api_tokens" in migrations["detail"]


@pytest.mark.django_db(transaction=True)
def test_a_worker_beats_even_with_nothing_to_send(relay, time_machine):
    time_machine.move_to("2026-12-07 10:00 +09:00", tick=False)
    run_until_idle()
    beat = WorkerBeat.objects.get()
    assert beat.seen_at == timezone.now()  # the frozen clock: it beat while running
    assert beat.sent == 0


@pytest.mark.django_db(transaction=True)
def test_a_worker_counts_what_it_sent_by_relay_and_provider(relay, client):
    from merumaga.delivery import queue
    from merumaga.mailings import services
    from merumaga.operations.metrics import PLATFORM_FIGURES
    from merumaga.testing import mailing_of, make_subscriber

    for address in ("hanako@gmail.com", "taro@docomo.ne.jp", "jiro@institute.example.jp"):
        make_subscriber(address, topics=["weekly"])
    weekly = mailing_of("weekly")
    services.start(weekly)
    queue.freeze_audience(weekly)
    run_until_idle()
    counts = WorkerBeat.objects.get().counts
    assert sorted(key.split("|", 1)[1] for key in counts) == [
        "Gmail|sent",
        "docomo|sent",
        "others|sent",
    ]
    PLATFORM_FIGURES.forget()
    scraped = client.get("/metrics").content.decode()
    assert 'provider="Gmail",relay="' in scraped and 'result="sent"' in scraped
