from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections

from merumaga.subscribers import services, throttle
from merumaga.subscribers.models import RateCounter, Subscriber
from merumaga.subscribers.services import Evidence

# A few seconds into an hour: every test here stays inside one window, however slow the run.
HOUR = datetime(2026, 12, 7, 1, 0, 5, tzinfo=UTC)


@pytest.mark.django_db
def test_hits_up_to_the_limit_pass_and_the_next_is_refused():
    assert [throttle.allow("k", 3, now=HOUR) for _ in range(5)] == [True] * 3 + [False] * 2
    assert throttle.allow("other", 3, now=HOUR)


@pytest.mark.django_db
def test_a_new_window_starts_from_zero():
    for _ in range(3):
        throttle.allow("k", 2, now=HOUR)
    assert not throttle.allow("k", 2, now=HOUR + timedelta(minutes=59))
    assert throttle.allow("k", 2, now=HOUR + timedelta(hours=1))


@pytest.mark.django_db
def test_old_windows_are_forgotten_after_two_days():
    throttle.allow("k", 2, now=HOUR - timedelta(days=2, hours=1))
    throttle.allow("k", 2, now=HOUR - timedelta(days=1))
    assert throttle.forget_old_windows(now=HOUR) == 1
    assert list(RateCounter.objects.values_list("hits", flat=True)) == [1]


@pytest.mark.django_db
def test_a_one_use_key_is_spent_once_however_late_it_comes_back():
    issued = HOUR.replace(hour=14, minute=59)  # 23:59 in Tokyo
    assert throttle.first_use("stamp:abc", issued)
    throttle.forget_old_windows(now=issued + timedelta(hours=23))
    assert not throttle.first_use("stamp:abc", issued)
    assert throttle.first_use("stamp:other", issued)


@pytest.mark.django_db(transaction=True)
def test_the_ip_limit_holds_under_100_parallel_sign_ups(settings, time_machine):
    time_machine.move_to(HOUR, tick=True)
    settings.SIGNUP_LIMIT_PER_IP = 20
    evidence = Evidence(source="form", ip_address="203.0.113.9")

    def sign_up(number: int) -> str:
        try:
            services.request_subscription(f"reader{number}@example.jp", ["weekly"], evidence)
        except services.TooManyRequests:
            return "refused"
        finally:
            connections.close_all()
        return "accepted"

    with ThreadPoolExecutor(max_workers=16) as threads:
        outcomes = list(threads.map(sign_up, range(100)))

    assert outcomes.count("accepted") == 20
    assert Subscriber.objects.count() == 20


@pytest.mark.django_db(transaction=True)
def test_the_address_limit_holds_under_parallel_requests(settings, time_machine):
    time_machine.move_to(HOUR, tick=True)
    settings.SIGNUP_LIMIT_PER_ADDRESS = 3

    def sign_up(number: int) -> bool:
        evidence = Evidence(source="form", ip_address=f"198.51.100.{number}")
        try:
            services.request_subscription("target@example.jp", ["weekly"], evidence)
        except services.TooManyRequests:
            return False
        finally:
            connections.close_all()
        return True

    with ThreadPoolExecutor(max_workers=16) as threads:
        accepted = sum(threads.map(sign_up, range(40)))

    assert accepted == 3
