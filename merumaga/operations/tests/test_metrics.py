"""/metrics: the Prometheus text format, from this machine or with the token; the platform's
figures from the database, the requests of every web process summed."""

import os
import subprocess
import sys

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from merumaga.bounces.services import EventSpec, record_events
from merumaga.delivery.models import WorkerBeat
from merumaga.operations.metrics import PLATFORM_FIGURES
from merumaga.testing import mailing_of, make_subscriber

pytestmark = pytest.mark.django_db


def samples(response) -> dict[tuple[str, tuple], float]:
    assert response["Content-Type"].startswith("text/plain; version=")
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.fixture(autouse=True)
def read_afresh():
    PLATFORM_FIGURES.forget()  # the answer kept from an earlier test


def test_the_platforms_figures_come_from_the_database(client, time_machine):
    time_machine.move_to("2026-12-07 10:00 +09:00", tick=False)
    reader = make_subscriber("reader@example.jp")
    mailing_of("weekly")
    record_events([EventSpec(kind="hard", source="smtp", address=reader.email, subscriber=reader)])
    WorkerBeat.objects.create(
        worker="host:7", started_at=timezone.now(), seen_at=timezone.now(), sent=12
    )
    client.get("/readyz")
    found = samples(client.get("/metrics"))
    assert found[("merumaga_mailings", (("status", "draft"),))] == 1
    assert found[("merumaga_worker_sent_total", (("worker", "host:7"),))] == 12
    assert found[("merumaga_worker_last_seen_seconds", (("worker", "host:7"),))] == 0
    hard = [v for (name, labels), v in found.items() if name == "merumaga_bounces_total"]
    assert hard == [1]
    assert found[("merumaga_delivery_oldest_queued_seconds", ())] == 0
    ready = found[
        ("merumaga_http_requests_total", (("method", "GET"), ("status", "503"), ("view", "readyz")))
    ]
    assert ready >= 1


def test_only_this_machine_or_the_token_may_scrape(client, settings):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    settings.BEHIND_PROXY = True  # through nginx on this machine: the client is who counts
    proxied = client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert proxied.status_code == 403
    settings.BEHIND_PROXY = False
    settings.METRICS_TOKEN = "s3cret-token-for-tests"
    assert client.get("/metrics").status_code == 403  # with a token set, the token is needed
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403
    right = client.get(
        "/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer s3cret-token-for-tests"
    )
    assert right.status_code == 200


def test_the_requests_of_every_web_process_are_summed(tmp_path):
    """Two processes count a request each into PROMETHEUS_MULTIPROC_DIR (as gunicorn's workers
    do under `merumaga run`); a third one's scrape shows both."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = (
        "from merumaga.operations.metrics import REQUESTS; "
        "REQUESTS.labels('home', 'GET', '200').inc()"
    )
    for _ in range(2):
        subprocess.run(
            [sys.executable, "-m", "merumaga.cli", "shell", "-c", count], env=env, check=True
        )
    scrape = (
        "from merumaga.operations.metrics import CollectorRegistry, MultiProcessCollector, "
        "generate_latest; registry = CollectorRegistry(); MultiProcessCollector(registry); "
        "print(generate_latest(registry).decode())"
    )
    out = subprocess.run(
        [sys.executable, "-m", "merumaga.cli", "shell", "-c", scrape],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert 'merumaga_http_requests_total{method="GET",status="200",view="home"} 2.0' in out
