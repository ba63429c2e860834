"""/metrics in the Prometheus text format (prometheus_client).

Two sources, each safe with many processes and machines:
- what the web processes count themselves (requests and their latency per view): in memory,
  or in PROMETHEUS_MULTIPROC_DIR when set (`merumaga run` sets it for its gunicorn workers), so
  that a scrape answered by any worker sums them all;
- what the platform did, read from the database every web process and delivery worker share
  (mailings by status, mails sent and failed, the delivery queue, worker heartbeats, bounces,
  complaints, sign-ups, clicks) at scrape time: a handful of GROUP BY queries, the answer kept
  for METRICS_CACHE_SECONDS so that several scrapers cost no more.
"""

import os
import time
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from huey.contrib.djhuey import HUEY
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from merumaga.bounces.models import BounceEvent
from merumaga.delivery.models import Delivery, WorkerBeat
from merumaga.mailings.models import Click, Mailing
from merumaga.subscribers.models import ConsentRecord

REQUESTS = Counter(
    "merumaga_http_requests",
    "HTTP requests answered, by view name, method and status code.",
    ["view", "method", "status"],
)
LATENCY = Histogram(
    "merumaga_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by view name.",
    ["view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class PlatformCollector:
    """What the database says, as metric families (a prometheus_client custom collector)."""

    def __init__(self) -> None:
        self._kept: tuple[float, list[Metric]] | None = None

    def collect(self) -> Iterator[Metric]:
        # Several scrapers (or one retrying) cost one reading of the database in this time.
        if self._kept is None or time.monotonic() - self._kept[0] >= settings.METRICS_CACHE_SECONDS:
            self._kept = (time.monotonic(), list(self._read()))
        yield from self._kept[1]

    def forget(self) -> None:
        """Read the database at the next scrape (tests)."""
        self._kept = None

    def _read(self) -> Iterator[Metric]:
        now = timezone.now()
        mailings = GaugeMetricFamily("merumaga_mailings", "Mailings by status.", labels=["status"])
        by_status = dict(Mailing.objects.values_list("status").annotate(n=Count("id")).order_by())
        for status in Mailing.Status.values:
            mailings.add_metric([status], by_status.get(status, 0))
        yield mailings

        totals = Mailing.objects.aggregate(sent=Sum("sent"), failed=Sum("failed"))
        mails = CounterMetricFamily(
            "merumaga_mails",
            "Mails of mailings, by outcome (the workers' counters).",
            labels=["result"],
        )
        mails.add_metric(["sent"], totals["sent"] or 0)
        mails.add_metric(["failed"], totals["failed"] or 0)
        yield mails

        # The rows still to send: the partial index "claimable" holds exactly these.
        waiting = Delivery.objects.filter(
            status__in=[Delivery.Status.QUEUED, Delivery.Status.DEFERRED, Delivery.Status.SENDING]
        )
        queue = waiting.aggregate(
            queued=Count("id", filter=Q(status=Delivery.Status.QUEUED)),
            deferred=Count("id", filter=Q(status=Delivery.Status.DEFERRED)),
            sending=Count("id", filter=Q(status=Delivery.Status.SENDING)),
            oldest=Min("available_at", filter=Q(status=Delivery.Status.QUEUED)),
        )
        depth = GaugeMetricFamily(
            "merumaga_delivery_queue", "Delivery rows still to send, by state.", labels=["state"]
        )
        for state in ("queued", "deferred", "sending"):
            depth.add_metric([state], queue[state])
        yield depth
        oldest = queue["oldest"]
        yield GaugeMetricFamily(
            "merumaga_delivery_oldest_queued_seconds",
            "How long the oldest row due to be sent has waited (0: none).",
            value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        )

        seen = GaugeMetricFamily(
            "merumaga_worker_last_seen_seconds",
            "Seconds since each delivery worker's last heartbeat.",
            labels=["worker"],
        )
        sent = CounterMetricFamily(
            "merumaga_worker_sent",
            "Mails each delivery worker sent since it started.",
            labels=["worker"],
        )
        outcomes = CounterMetricFamily(
            "merumaga_deliveries",
            "Mails each delivery worker tried since it started, by relay, mailbox provider "
            "(gmail, yahoo, docomo, …) and result (sent, deferred, failed).",
            labels=["worker", "relay", "provider", "result"],
        )
        for beat in WorkerBeat.objects.filter(seen_at__gte=now - timedelta(days=1)):
            seen.add_metric([beat.worker], (now - beat.seen_at).total_seconds())
            sent.add_metric([beat.worker], beat.sent)
            for key, count in beat.counts.items():
                relay, group, result = key.split("|", 2)
                outcomes.add_metric([beat.worker, relay, group, result], count)
        yield seen
        yield sent
        yield outcomes

        bounces = CounterMetricFamily(
            "merumaga_bounces",
            "Bounce events (hard, soft, complaint, …) by kind and reason.",
            labels=["kind", "reason"],
        )
        for kind, reason, n in (
            BounceEvent.objects.values_list("kind", "reason").annotate(n=Count("id")).order_by()
        ):
            bounces.add_metric([kind, reason or "unknown"], n)
        yield bounces

        readers = CounterMetricFamily(
            "merumaga_reader_events",
            "Consent records by act: sign-ups, confirmations, changes, unsubscribes, erasures.",
            labels=["action"],
        )
        acts = dict(ConsentRecord.objects.values_list("action").annotate(n=Count("id")).order_by())
        for action in ConsentRecord.Action.values:
            readers.add_metric([action], acts.get(action, 0))
        yield readers

        yield CounterMetricFamily(
            "merumaga_click_redirects",
            "Clicks on tracked links (written).",
            value=Click.objects.count(),
        )
        yield GaugeMetricFamily(
            "merumaga_task_queue",
            "Background tasks waiting in the task queue.",
            value=HUEY.pending_count(),
        )


# The platform's families in their own registry: registering reads nothing (no describe), and
# a scrape collects them once, whichever registry the process counts requests in.
PLATFORM_FIGURES = PlatformCollector()
PLATFORM = CollectorRegistry(auto_describe=False)
PLATFORM.register(PLATFORM_FIGURES)


def exposition() -> tuple[bytes, str]:
    """The scrape's body and content type: the web processes' own counts (all of them, in
    multiprocess mode) and the platform's from the database."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(PLATFORM), CONTENT_TYPE_LATEST
