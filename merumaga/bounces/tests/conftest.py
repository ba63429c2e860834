import pytest

from merumaga.bounces.server import start_receiver, stop_receiver
from merumaga.delivery.faultserver import start_fault_server
from merumaga.testing import free_port

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
def relay(settings):
    """A fault server as the only relay; rules are set per test on `relay.handler.rules`."""
    port = free_port()
    controller = start_fault_server(port)
    settings.SMTP_RELAYS = f"smtp://127.0.0.1:{port}?connections=4"
    yield controller
    controller.stop()
