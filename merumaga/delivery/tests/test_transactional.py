"""Mail sent one at a time goes through the delivery engine's pool, over the transactional lane."""

import logging

import dkim
import pytest
from django.core.mail import send_mail

from merumaga import outgoing
from merumaga.delivery.faultserver import start_fault_server
from merumaga.subscribers.mail import build_reader_mail
from merumaga.testing import free_port, make_subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture
def relays(settings):
    """Two fault servers: one for mailings only, one for mail sent one at a time."""
    ports = free_port(), free_port()
    bulk, transactional = (start_fault_server(port) for port in ports)
    settings.EMAIL_BACKEND = "merumaga.delivery.transactional.RelayBackend"
    settings.SMTP_RELAYS = (
        f"smtp://127.0.0.1:{ports[0]}?lane=bulk smtp://127.0.0.1:{ports[1]}?lane=transactional"
    )
    yield bulk.handler, transactional.handler
    bulk.stop()
    transactional.stop()


def confirmation(reader) -> outgoing.Mail:
    return build_reader_mail(reader, "confirm", {"confirm_url": "https://example.jp/c/x/"})


def test_a_confirmation_leaves_by_the_transactional_relay_as_built(relays):
    bulk, transactional = relays
    reader = make_subscriber("reader@example.jp")
    built = outgoing.send(confirmation(reader))
    assert built is not None
    [(envelope_from, recipient, content)] = transactional.accepted
    assert (recipient, content) == ("reader@example.jp", built.data)
    assert envelope_from == built.envelope_from
    assert bulk.count == 0


def test_mail_composed_by_django_goes_the_same_way_to_each_recipient(relays):
    _, transactional = relays
    assert send_mail("件名", "本文\n", "ops@example.jp", ["a@example.jp", "b@example.jp"]) == 2
    assert sorted(transactional.per_recipient) == ["a@example.jp", "b@example.jp"]
    assert {mail_from for mail_from, _, _ in transactional.accepted} == {"ops@example.jp"}


def test_a_temporary_refusal_raises_so_that_the_task_tries_again(relays):
    _, transactional = relays
    transactional.rules = {"reader@example.jp": "451"}
    with pytest.raises(outgoing.NotSent) as refused:
        outgoing.send(confirmation(make_subscriber("reader@example.jp")))
    assert refused.value.temporary and "451" in str(refused.value)


def test_a_permanent_refusal_is_set_aside_with_its_reason_in_the_log(relays, caplog):
    _, transactional = relays
    transactional.rules = {"gone@example.jp": "550"}
    reader = make_subscriber("gone@example.jp")
    with caplog.at_level(logging.ERROR, logger="merumaga.outgoing"):
        assert outgoing.send(confirmation(reader)) is None
    assert f"confirm mail to reader {reader.pk} refused by the relay: 550 at RCPT" in caplog.text
    assert "gone@example.jp" not in caplog.text  # readers by id, never by address


def test_an_address_our_headers_cannot_carry_is_set_aside_with_its_reason(relays, caplog):
    _, transactional = relays
    reader = make_subscriber("ok@example.jp")
    reader.email = "読者@example.jp"  # stored before such addresses were refused at the door
    with caplog.at_level(logging.ERROR, logger="merumaga.outgoing"):
        assert outgoing.send(confirmation(reader)) is None
    assert f"confirm mail to reader {reader.pk} not sent: invalid or non-ASCII" in caplog.text
    assert transactional.count == 0


def test_mail_is_signed_when_dkim_is_configured(relays, settings, key_pair):
    private, public = key_pair
    settings.DKIM_DOMAIN, settings.DKIM_SELECTOR = "example.jp", "mm2026"
    settings.DKIM_KEY_FILE = str(private)
    _, transactional = relays
    outgoing.send(confirmation(make_subscriber("reader@example.jp")))
    [(_, _, content)] = transactional.accepted
    assert content.startswith(b"DKIM-Signature:")
    assert dkim.verify(content, dnsfunc=lambda name, timeout=5: b"v=DKIM1; k=rsa; p=" + public)
