"""Every public endpoint answers 2xx, 3xx or 4xx to any input: never a server error.

The URL patterns are walked, not listed by hand, so a new public page is covered the day it is
added. Each pattern gets hostile values for its parameters, query strings and form fields: NUL
(PostgreSQL refuses it in text), control characters, broken percent-encoding, very long values,
markup. Staff pages (admin, mail viewer) are out of scope: they answer anonymous visitors with the
login page.
"""

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from merumaga.testing import make_event, make_subscriber

pytestmark = pytest.mark.django_db

STAFF_PREFIXES = ("admin/",)
HOSTILE = [
    "a%00b",
    "%00",
    "%FF%FE",
    "%E3%81",  # a UTF-8 sequence cut short
    "x" * 3000,
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "..%2F..%2Fetc%2Fpasswd",
    "%0D%0ASet-Cookie:%20x=1",
    "1e9",
    "-1",
    "%EF%BF%BF",
]
QUERY_KEYS = ["q", "page", "email", "r", "next", "subscriber", "charset"]
FORM_FIELDS = ["email", "name", "topics", "stamp", "website", "answer", "organisation", "text"]


def server_error(response) -> bool:
    """A 5xx that is a failure: /readyz answers 503 by design while a dependency is missing
    (here, no delivery worker and no relay), with its checks in JSON."""
    if response.status_code < 500:
        return False
    designed = response.status_code == 503 and response.get("Content-Type") == "application/json"
    return not (designed and response.json().get("status") == "not ready")


def public_routes() -> list[str]:
    """Each public URL pattern as a route string with <converters> left in."""
    routes = []

    def walk(patterns, prefix=""):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern) and not route.startswith(STAFF_PREFIXES):
                routes.append(route)

    walk(get_resolver().url_patterns)
    return routes


def fill(route: str, value: str) -> str:
    path = re.sub(r"<(?:\w+:)?\w+>", value, route)
    return "/" + path.lstrip("^").rstrip("$")


def test_the_walk_finds_the_public_pages():
    routes = public_routes()
    for expected in ("subscribe/", "search/", "articles/<str:slug>/", "events/<str:slug>/rsvp/"):
        assert expected in routes
    assert not any(route.startswith("admin/") for route in routes)


@pytest.fixture
def content():
    make_subscriber("reader@example.jp")
    return make_event(slug="event")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_paths_and_queries_never_answer_5xx(content, value):
    client = Client(raise_request_exception=False)
    failures = []
    for route in public_routes():
        path = fill(route, value)
        query = "&".join(f"{key}={value}" for key in QUERY_KEYS)
        for method in ("get", "post"):
            response = getattr(client, method)(f"{path}?{query}")
            if server_error(response):
                failures.append(f"{method.upper()} {path[:80]}?… → {response.status_code}")
    assert failures == []


@pytest.mark.parametrize("value", ["a\x00b", "\x00", "\x1b[2J", "x" * 5000, "\ufffd\u202e"])
def test_hostile_form_fields_never_answer_5xx(content, value):
    client = Client(raise_request_exception=False)
    failures = []
    data = {field: value for field in FORM_FIELDS}
    for route in public_routes():
        path = fill(route, "event")
        response = client.post(path, data)
        if server_error(response):
            failures.append(f"POST {path} → {response.status_code}")
    assert failures == []


@pytest.mark.parametrize(
    "header",
    [
        {"HTTP_COOKIE": 'sessionid="abcdefgh\\000x"'},
        {"HTTP_COOKIE": "csrftoken=\x00"},
        {"HTTP_USER_AGENT": "Mozilla\x00/5.0"},
        {"HTTP_ACCEPT_LANGUAGE": "ja\x00"},
        {"HTTP_X_FORWARDED_FOR": "1.2.3.4\x00"},
    ],
)
def test_hostile_cookies_and_headers_never_answer_5xx(content, header):
    client = Client(raise_request_exception=False, **header)
    failures = []
    for route in public_routes():
        path = fill(route, "event")
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            if server_error(response):
                failures.append(f"{method.upper()} {path} → {response.status_code}")
    assert failures == []


def token_pages(reader, event) -> list[str]:
    """Pages behind a valid link: the hostile input reaches their forms, not the 404."""
    from django.urls import reverse

    from merumaga.publishing import rsvp, rsvp_links
    from merumaga.subscribers import tokens

    reader.pending_email = "new@example.jp"
    reader.save()
    answer = rsvp.answer(event, "someone@example.jp", rsvp.ATTEND)
    return [
        reverse("confirm", args=[tokens.make_token(reader, tokens.CONFIRM, "weekly,events")]),
        reverse("preferences", args=[tokens.make_token(reader, tokens.PREFERENCES)]),
        reverse("preferences_address", args=[tokens.make_token(reader, tokens.PREFERENCES)]),
        reverse("erase", args=[tokens.make_token(reader, tokens.PREFERENCES)]),
        reverse("confirm_address", args=[tokens.make_token(reader, tokens.ADDRESS, "new@x.jp")]),
        reverse("unsubscribe", args=[tokens.make_token(reader, tokens.UNSUBSCRIBE, "weekly")]),
        reverse("rsvp_link", args=[tokens.make_token(reader, tokens.RSVP, str(event.pk))]),
        reverse("rsvp_answer_link", args=[rsvp_links.answer_token(answer)]),
    ]


@pytest.mark.parametrize("value", ["a\x00b", "\x00", "x" * 5000, "\ufffd\u202e", ""])
def test_hostile_form_fields_behind_valid_links_never_answer_5xx(value):
    from merumaga.subscribers.models import Subscriber

    reader = make_subscriber("reader@example.jp", status=Subscriber.Status.PENDING)
    event = make_event(slug="event")
    failures = []
    fields = [*FORM_FIELDS, "language", "charset", "stop_all", "List-Unsubscribe"]
    for path in token_pages(reader, event):
        client = Client(raise_request_exception=False)
        response = client.post(path, {field: value for field in fields})
        if server_error(response):
            failures.append(f"POST {path[:60]}… → {response.status_code}")
    assert failures == []
