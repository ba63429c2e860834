import importlib
import os
import shutil

import pytest
from django.core.cache import cache

CHROMIUM = "/usr/bin/chromium"
# Set by CI: a test that would be skipped for a missing service fails instead.
REQUIRE_ALL = os.environ.get("MERUMAGA_REQUIRE_ALL_TESTS") == "1"

# Playwright's sync API runs an event loop in the test thread, and Django refuses ORM calls in a
# thread with a running loop. Browser tests query the database between clicks (and the test
# database may be created inside that loop), so the guard is off in tests. The platform has no
# async code that touches the ORM.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped, but MERUMAGA_REQUIRE_ALL_TESTS=1: {report.longrepr}"


@pytest.fixture(autouse=True, scope="session")
def huey_runs_tasks_inline():
    """Tasks run as soon as they are queued (at transaction commit), inside the test."""
    from huey.contrib.djhuey import HUEY

    HUEY.immediate = True
    yield HUEY
    HUEY.immediate = False


@pytest.fixture(autouse=True)
def empty_cache(request, settings):
    """Each test starts with an empty cache (cached pages, the content version).

    Redis keeps entries across tests; the database cache keeps them across transactional tests
    only, and can be reached only by tests that may use the database.
    """
    in_database = settings.CACHES["default"]["BACKEND"].endswith("DatabaseCache")
    may_use_database = request.node.get_closest_marker("django_db") or {
        "db",
        "transactional_db",
        "live_server",
    } & set(request.fixturenames)
    if in_database and not may_use_database:
        yield
        return
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def migration_data(request):
    """The data migrations create (the four topics), present in every database test.

    A transactional test empties every table when it ends, and plugins may run such tests before
    others; so each database test puts the data back if it is gone, with the migration's own
    function (one query when it is there).
    """
    fixtures = set(request.fixturenames)
    marker = request.node.get_closest_marker("django_db")
    if (marker and marker.kwargs.get("transaction")) or fixtures & {
        "transactional_db",
        "live_server",
    }:
        request.getfixturevalue("transactional_db")
    elif marker or "db" in fixtures:
        request.getfixturevalue("db")
    else:
        return
    from django.apps import apps

    from merumaga.subscribers.models import Topic

    if not Topic.objects.exists():
        importlib.import_module("merumaga.subscribers.migrations.0002_topics").create_topics(
            apps, None
        )


@pytest.fixture(scope="session")
def browser_type_launch_args():
    """Debian's Chromium, never a downloaded browser."""
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return {
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    # A phone: 375 px wide, touch, Japanese.
    return {
        **browser_context_args,
        "viewport": {"width": 375, "height": 740},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
        "locale": "ja-JP",
    }


@pytest.fixture
def mail_catcher(settings, tmp_path):
    """The built-in catcher on a free port, with every mail sent to it as in production (the
    relay backend, no relay configured: the catcher is the relay).

    Yields the Maildir, to be read with merumaga.delivery.catcher.list_messages/read_message.
    """
    import socket

    from merumaga.delivery.catcher import start_catcher

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory = tmp_path / "mail"
    controller = start_catcher(directory, port=port)
    settings.MAILCATCHER_DIR = directory
    settings.EMAIL_BACKEND = "merumaga.delivery.transactional.RelayBackend"
    settings.SMTP_RELAYS, settings.SMTP_URL, settings.MAILCATCHER_PORT = "", "", port
    yield directory
    controller.stop()


LLM_TEST_KEY = "sk-test-9f8e7d6c5b4a"


@pytest.fixture
def fake_llm(settings, monkeypatch):
    """The stand-in OpenAI-compatible server (publishing.fake_llm) on a free port, with the LLM
    settings pointing at it: a 1 s timeout, one retry, and the pauses between tries recorded in
    `server.pauses` instead of waited."""
    from merumaga.publishing import llm
    from merumaga.publishing.fake_llm import FakeLlm

    server = FakeLlm(delay=3.0).start()
    server.pauses = []
    monkeypatch.setattr(llm, "pause", server.pauses.append)
    settings.LLM_BASE_URL = server.base_url()
    settings.LLM_MODEL = "fake-model"
    settings.LLM_API_KEY = LLM_TEST_KEY
    settings.LLM_TIMEOUT = 1.0
    settings.LLM_RETRIES = 1
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def inside_one_rate_window(time_machine):
    """The clock a few seconds into an hour, running: a test counting against an hourly rate
    limit stays inside one window however slow the run."""
    time_machine.move_to("2026-12-07 10:00:05 +09:00", tick=True)


@pytest.fixture(autouse=True)
def site_language():
    """Each test starts in the site's language. A request in English leaves English active in
    the thread (LocaleMiddleware activates, nothing deactivates), which would otherwise leak
    into the next test's mails and messages, depending on the order tests run in."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def clicks_written_at_once(settings):
    """Each click written as it comes (no buffer thread writing beside the test's transaction),
    and no link target or site setting remembered from another test."""
    from merumaga.mailings import clicks

    settings.CLICK_FLUSH_SECONDS = 0
    clicks.forget_cached()


@pytest.fixture
def sender():
    """The institute that sends the mail, filled in as in production."""
    from merumaga.institute.models import SiteSettings

    return SiteSettings.objects.create(
        organisation_name="テスト経済研究所",
        postal_address="〒100-0005 東京都千代田区丸の内0-0-0",
        contact_email="info@example.jp",
        contact_url="https://example.jp/contact/",
        contact_phone="03-0000-0000",
        from_email="news@example.jp",
    )


@pytest.fixture
def relay(settings):
    """A fault server as the only relay; rules are set per test on `relay.handler.rules`."""
    from merumaga.delivery.faultserver import start_fault_server
    from merumaga.testing import free_port

    port = free_port()
    controller = start_fault_server(port)
    settings.SMTP_RELAYS = f"smtp://127.0.0.1:{port}?connections=4"
    yield controller
    controller.stop()


@pytest.fixture
def roles(db):
    """The role groups, as the migration made them: a test that flushes the database (those
    with transaction=True) takes them away for the tests after it."""
    from merumaga.team.roles import sync_roles

    sync_roles()
