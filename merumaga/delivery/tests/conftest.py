import pytest

from merumaga.delivery.catcher import start_catcher
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
