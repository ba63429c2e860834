import base64
import subprocess

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


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory):
    """A 2048-bit RSA key for DKIM: (private key file, public key as in the DNS record)."""
    folder = tmp_path_factory.mktemp("dkim")
    private = folder / "private.pem"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(private), "2048"], check=True, capture_output=True
    )
    public_der = subprocess.run(
        ["openssl", "rsa", "-in", str(private), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return private, base64.b64encode(public_der)
