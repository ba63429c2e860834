"""MERUMAGA_LOG_FORMAT=json: one object per line, with the request id and ids passed with
extra=, never a reader's address; every response names its request id."""

import json
import logging

import pytest

from merumaga import logs


def test_a_json_line_carries_ids_and_no_address():
    record = logging.makeLogRecord(
        {
            "name": "merumaga.delivery",
            "levelname": "WARNING",
            "msg": "mailing %d: taro.yamada+news@example.co.jp refused",
            "args": (12,),
            "mailing_id": 12,
            "reader_id": 3401,
        }
    )
    token = logs.request_id.set("req-1")
    try:
        logs.RequestIdFilter().filter(record)
    finally:
        logs.request_id.reset(token)
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["message"] == "mailing 12: (address) refused"
    assert (line["mailing_id"], line["reader_id"], line["request_id"]) == (12, 3401, "req-1")
    assert line["level"] == "WARNING" and line["logger"] == "merumaga.delivery"


@pytest.mark.django_db
def test_every_response_names_its_request_id(client):
    made = client.get("/healthz")["X-Request-ID"]
    assert len(made) == 32 and int(made, 16) >= 0
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a")["X-Request-ID"] == "lb-7f3a"
    odd = client.get("/healthz", HTTP_X_REQUEST_ID="x" * 100)["X-Request-ID"]
    assert odd != "x" * 100 and len(odd) == 32  # not a sane id: one of ours instead
