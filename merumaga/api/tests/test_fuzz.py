"""Every operation of the API fuzzed from its own OpenAPI schema (schemathesis + Hypothesis):
generated requests, valid and invalid, sent with a working token through the whole WSGI
application, must never meet a server error, and every answer must match the schema.

MERUMAGA_FUZZ_EXAMPLES sets the examples per operation and per mode (valid, invalid); run with
-s to see the count of operations, requests and failures."""

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from merumaga.testing import ApiClient, mailing_of, make_article, make_event, make_subscriber

pytestmark = pytest.mark.django_db
EXAMPLES = int(os.environ.get("MERUMAGA_FUZZ_EXAMPLES", "50"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def whole_application(settings):
    """The WSGI application as the web server runs it. Like Django's test client, it must not
    close the test's database connection at each request's start and end."""
    from merumaga.wsgi import application

    settings.API_RATE_LIMIT = 10**9  # the fuzzer is not the rate limit's test
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield application
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def test_no_operation_answers_with_a_server_error(roles, mail_catcher, whole_application):
    # Something for the generated ids to find: readers, content, a mailing.
    for n in range(3):
        make_subscriber(f"reader{n}@example.jp", topics=["weekly"])
    make_article()
    make_event()
    mailing_of("weekly")
    token = ApiClient().raw
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", whole_application)
    operations = [result.ok() for result in schema.get_all_operations()]
    sent, failures = 0, []

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case):
                nonlocal sent
                response = case.call(headers={"Authorization": f"Bearer {token}"})
                sent += 1
                case.validate_response(response, checks=CHECKS)

            try:
                fuzz()
            # One operation's failure (schemathesis groups them); the others are still tried.
            except (Exception, BaseExceptionGroup) as error:
                failures.append(f"{operation.label} ({mode.value}): {error}")

    print(f"\nfuzzed {len(operations)} operations: {sent} requests, {len(failures)} failures")
    assert len(operations) >= 25  # every operation is in the schema, so fuzzed
    assert failures == [], "\n\n".join(failures)
