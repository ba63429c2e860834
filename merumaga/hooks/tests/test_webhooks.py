"""Outgoing webhooks against a local receiver: signed, retried with growing waits for a day,
never sent into our own network, and raised by what happens to readers, bounces and mailings."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse
from django.utils import timezone

from merumaga.bounces.webhooks import signature_problem
from merumaga.hooks import services
from merumaga.hooks.models import Endpoint, WebhookDelivery
from merumaga.mailings import services as mailing_services
from merumaga.subscribers import services as reader_services
from merumaga.subscribers.models import Subscriber
from merumaga.testing import mailing_of, make_subscriber

pytestmark = pytest.mark.django_db


class Receiver:
    """A stdlib HTTP server that records each POST and answers with the codes it is given."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                if code == 302:
                    self.send_header("Location", "http://10.0.0.1/internal")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _headers, body in self.requests]


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True  # the receiver is on loopback
    found = Receiver()
    yield found
    found.server.shutdown()


def test_an_event_is_posted_signed_to_the_endpoints_that_want_it(
    receiver, django_capture_on_commit_callbacks
):
    endpoint = Endpoint.objects.create(url=receiver.url, events=["reader.confirmed"])
    Endpoint.objects.create(url=receiver.url + "/other", events=["complaint"])
    reader = make_subscriber("new@example.jp", status=Subscriber.Status.PENDING)
    with django_capture_on_commit_callbacks(execute=True):
        reader_services.confirm(reader, reader_services.Evidence(source="form"))

    assert receiver.events() == ["reader.confirmed"]
    headers, body = receiver.requests[0]
    assert headers["X-Merumaga-Event"] == "reader.confirmed"
    assert (
        signature_problem(
            endpoint.secret, headers["X-Merumaga-Timestamp"], headers["X-Merumaga-Signature"], body
        )
        == ""
    )
    payload = json.loads(body)
    assert payload["data"]["reader"] == reader.pk and payload["data"]["email"] == "new@example.jp"
    assert WebhookDelivery.objects.get().status == "delivered"


def test_a_failed_try_is_retried_with_growing_waits_for_a_day(receiver, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    endpoint = Endpoint.objects.create(url=receiver.url)
    [delivery] = services.emit("complaint", {"reader": 1})
    receiver.answers = [500, 503]

    delivery = services.deliver(delivery)
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("pending", 1, 500)
    assert delivery.next_at == timezone.now() + timedelta(minutes=1)
    delivery = services.deliver(delivery)
    assert delivery.next_at == timezone.now() + timedelta(minutes=2)  # twice as long
    delivery = services.deliver(delivery)
    assert delivery.status == "delivered" and delivery.attempts == 3

    receiver.answers = [500] * 50
    [late] = services.emit("complaint", {"reader": 2})
    time_machine.move_to(timezone.now() + timedelta(days=1), tick=False)
    late = services.deliver(late)
    assert late.status == "failed" and late.last_error == "HTTP 500"  # a day has passed
    assert endpoint.deliveries.count() == 2


def test_a_redirect_is_not_followed(receiver):
    Endpoint.objects.create(url=receiver.url)
    [delivery] = services.emit("complaint", {})
    receiver.answers = [302]
    delivery = services.deliver(delivery)
    assert delivery.status == "pending" and delivery.last_status == 302
    assert len(receiver.requests) == 1  # never to the internal address it pointed at


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://10.1.2.3/hook",
        "http://192.168.0.5/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "ftp://93.184.216.34/",
        "http://localhost/",
    ],
)
def test_addresses_inside_our_networks_are_refused(url):
    assert services.address_problem(url) != ""


def test_a_public_address_is_accepted_and_a_private_one_never_tried(receiver, settings):
    assert services.address_problem("https://93.184.216.34/hook") == ""
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    Endpoint.objects.create(url=receiver.url)
    [delivery] = services.emit("complaint", {})
    delivery = services.deliver(delivery)
    assert delivery.status == "failed" and "not a public address" in delivery.last_error
    assert receiver.requests == []


def test_the_admin_refuses_an_internal_endpoint_in_words(admin_client, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    response = admin_client.post(
        reverse("admin:hooks_endpoint_add"), {"url": "http://10.0.0.8/hook", "active": "on"}
    )
    assert "この送信先には送れません" in response.content.decode()
    assert not Endpoint.objects.exists()


def test_the_admin_sends_a_test_event(receiver, admin_client):
    endpoint = Endpoint.objects.create(url=receiver.url, events=["complaint"])
    admin_client.post(
        reverse("admin:hooks_endpoint_changelist"),
        {"action": "send_test_event", "_selected_action": [endpoint.pk]},
    )
    assert receiver.events() == ["test"]
    assert WebhookDelivery.objects.get().status == "delivered"


def test_mailings_readers_and_bounces_raise_their_events(
    receiver, django_capture_on_commit_callbacks
):
    Endpoint.objects.create(url=receiver.url)
    reader = make_subscriber("reader@example.jp")
    weekly = mailing_of("weekly")
    with django_capture_on_commit_callbacks(execute=True):
        mailing_services.start(weekly)
        mailing_services.finish(weekly, sent=1, failed=0)
    with django_capture_on_commit_callbacks(execute=True):
        reader_services.unsubscribe(reader, None, reader_services.Evidence(source="email_link"))
    with django_capture_on_commit_callbacks(execute=True):
        reader_services.erase(reader, reader_services.Evidence(source="form"))
    assert receiver.events() == [
        "mailing.started",
        "mailing.finished",
        "reader.unsubscribed",
        "reader.erased",
    ]
    finished = json.loads(receiver.requests[1][1])["data"]
    assert finished["sent"] == 1 and finished["mailing"] == weekly.pk
    erased = json.loads(receiver.requests[3][1])["data"]
    assert "email" not in erased  # gone with the reader's data


def test_a_batch_of_bounces_raises_one_event_each(receiver, django_capture_on_commit_callbacks):
    from merumaga.bounces import services as bounce_services

    readers = [make_subscriber(f"r{n}@example.jp") for n in range(3)]
    specs = [
        bounce_services.EventSpec(kind="hard", source="smtp", address=r.email, subscriber=r)
        for r in readers
    ]
    bounce_services.record_events(specs[:1])  # no endpoint registered: nothing to send
    assert not WebhookDelivery.objects.exists()

    Endpoint.objects.create(url=receiver.url, events=["bounce.hard"])
    with django_capture_on_commit_callbacks(execute=True):
        bounce_services.record_events(specs[1:])
    assert receiver.events() == ["bounce.hard", "bounce.hard"]
    assert json.loads(receiver.requests[0][1])["data"]["reader"] == readers[1].pk


def test_readers_added_in_bulk_raise_their_events(receiver, django_capture_on_commit_callbacks):
    Endpoint.objects.create(url=receiver.url, events=["reader.subscribed"])
    csv = b"email,topics\nimported@example.jp,weekly\n"
    evidence = reader_services.Evidence(source="import", user_agent="pytest")
    with django_capture_on_commit_callbacks(execute=True):
        reader_services.import_subscribers(csv, "2026年セミナー申込者", evidence)
    with django_capture_on_commit_callbacks(execute=True):
        reader_services.add_with_consent(
            "crm@example.jp",
            ["weekly"],
            "展示会の名刺交換 (同意欄あり)",
            reader_services.Evidence(source="api", user_agent="pytest"),
        )
    sent = [json.loads(body)["data"] for _headers, body in receiver.requests]
    assert [(data["email"], data["source"]) for data in sent] == [
        ("imported@example.jp", "import"),
        ("crm@example.jp", "api"),
    ]


def test_a_batch_of_clicks_raises_one_event_each(
    receiver, settings, django_capture_on_commit_callbacks
):
    from merumaga.mailings import clicks
    from merumaga.mailings.models import Link

    settings.CLICK_FLUSH_SECONDS = 0  # written as they come
    reader = make_subscriber("clicker@example.jp")
    link = Link.objects.create(
        mailing=mailing_of("weekly"), url="https://example.org/a", position=1
    )
    clicks.buffer.add(clicks.target_of(link.pk), None)  # no endpoint: nothing recorded
    assert not WebhookDelivery.objects.exists()

    Endpoint.objects.create(url=receiver.url, events=["link.clicked"])
    with django_capture_on_commit_callbacks(execute=True):
        clicks.buffer.add(clicks.target_of(link.pk), reader.pk)
    assert receiver.events() == ["link.clicked"]
    data = json.loads(receiver.requests[0][1])["data"]
    assert data["url"] == "https://example.org/a" and data["reader"] == reader.pk
    assert data["mailing"] == link.mailing_id
