import ssl
import threading

import pytest

from merumaga.bounces.server import start_receiver, stop_receiver
from merumaga.testing import (
    POP3Server,
    POP3TLSServer,
    free_port,
    self_signed_certificate,
    start_pop3,
)

BOUNCE_DOMAIN = "bounces.example.jp"


@pytest.fixture
def receiver_port(settings):
    """The bounce receiver (SMTP) for BOUNCE_DOMAIN on a free port."""
    settings.BOUNCE_DOMAIN = BOUNCE_DOMAIN
    port = free_port()
    controller = start_receiver("127.0.0.1", port)
    yield port
    stop_receiver(controller)


@pytest.fixture
def lmtp_port(settings):
    settings.BOUNCE_DOMAIN = BOUNCE_DOMAIN
    port = free_port()
    controller = start_receiver("127.0.0.1", port, lmtp=True)
    yield port
    stop_receiver(controller)


@pytest.fixture
def pop3():
    server = start_pop3(POP3Server, "pop3")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def pop3s(tmp_path):
    server = start_pop3(POP3TLSServer, "pop3s")
    server.cert_file, key_file = self_signed_certificate(tmp_path)
    server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.tls.load_cert_chain(server.cert_file, key_file)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()
