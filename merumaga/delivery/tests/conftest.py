import pytest

from merumaga.delivery.catcher import start_catcher
from merumaga.delivery.faultserver import start_fault_server
from merumaga.testing import free_port


@pytest.fixture
def maildir(settings, tmp_path):
    settings.MAILCATCHER_DIR = tmp_path / "mail"
    return settings.MAILCATCHER_DIR


@pytest.fixture
def catcher_port(maildir):
    """A running catcher storing into `maildir`; its port."""
    port = free_port()
    controller = start_catcher(maildir, port=port)
    yield port
    controller.stop()


@pytest.fixture
def relay(settings):
    """A fault server as the only relay; rules are set per test on `relay.handler.rules`."""
    port = free_port()
    controller = start_fault_server(port)
    settings.SMTP_RELAYS = f"smtp://127.0.0.1:{port}?connections=4"
    yield controller
    controller.stop()
