import os
import shutil

import pytest
from django.core.cache import cache

CHROMIUM = "/usr/bin/chromium"
# Set by CI: a test that would be skipped for a missing service fails instead.
REQUIRE_ALL = os.environ.get("MERUMAGA_REQUIRE_ALL_TESTS") == "1"


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
def empty_cache():
    # The cache (rate-limit counters) lives outside the rolled-back test transaction.
    cache.clear()
    yield
    cache.clear()


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
