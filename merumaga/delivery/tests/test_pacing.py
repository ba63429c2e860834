"""A receiving domain's learned rate (AIMD), on a clock the test moves."""

import pytest

from merumaga.delivery import pacing
from merumaga.delivery.pacing import AdaptivePace
from merumaga.delivery.smtp import SendResult, _is_throttling


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pace(ceiling: float | None = 20.0, recovery: float = 10.0) -> tuple[AdaptivePace, Clock]:
    clock = Clock()
    return AdaptivePace("slow.example", ceiling, recovery, clock=clock), clock


def test_a_configured_domain_starts_at_its_ceiling_and_halves_on_throttling():
    domain, _clock = pace(20)
    assert domain.state().rate == 20
    domain.throttled()
    assert domain.rate == 10


def test_answers_to_mail_already_in_flight_halve_it_once():
    domain, clock = pace(20)
    for _ in range(8):  # eight messages were on their way when the domain started refusing
        domain.throttled()
    assert (domain.rate, domain.throttles) == (10, 8)
    clock.now += pacing.COOL_DOWN
    domain.throttled()
    assert domain.rate == 5


def test_it_climbs_back_to_the_ceiling_in_the_recovery_time_and_no_further():
    domain, _clock = pace(20, recovery=10)
    domain.throttled()
    # Sending at the current rate, one message per turn: half to full takes `recovery` seconds.
    elapsed = 0.0
    while domain.rate < 20:
        elapsed += 1 / domain.rate
        domain.delivered()
    assert elapsed == pytest.approx(10, rel=0.05)
    for _ in range(100):
        domain.delivered()
    assert domain.rate == 20


def test_it_never_goes_below_the_floor():
    domain, clock = pace(1)
    for _ in range(20):
        clock.now += pacing.COOL_DOWN
        domain.throttled()
    assert domain.rate == pacing.FLOOR


def test_an_unlimited_domain_learns_its_ceiling_from_the_rate_that_was_throttled():
    domain, clock = pace(None)
    assert domain.state().rate is None
    for _ in range(50):  # taken at 25 per second
        clock.now += 0.04
        domain.delivered()
    domain.throttled()
    assert domain.ceiling == pytest.approx(25)
    assert domain.rate == pytest.approx(12.5)


def test_an_unlimited_domain_throttled_at_once_starts_from_a_guess():
    domain, _clock = pace(None)
    domain.throttled()
    assert (domain.ceiling, domain.rate) == (pacing.FIRST_GUESS, pacing.FIRST_GUESS / 2)


@pytest.mark.parametrize(
    ("result", "throttling"),
    [
        (SendResult("deferred", 421, "4.7.0 Too many connections", "r", "RCPT"), True),
        (SendResult("deferred", 421, "4.3.2 Service shutting down", "r", "RCPT"), True),
        (SendResult("deferred", 451, "4.7.1 Rate limited, slow down", "r", "DATA"), True),
        (SendResult("deferred", 421, "4.7.0 [TSS04] temporarily deferred due to unexpected "
                    "volume or user complaints", "r", "RCPT"), True),
        (SendResult("deferred", 452, "4.2.2 Mailbox full", "r", "RCPT"), False),  # one reader
        (SendResult("deferred", 450, "4.2.1 Mailbox busy", "r", "RCPT"), False),
        (SendResult("deferred", 421, "4.3.2 Shutting down", "r", "connect"), False),  # the relay
        (SendResult("failed", 550, "5.1.1 No such user", "r", "RCPT"), False),
        (SendResult("sent", 250, "ok", "r", "DATA"), False),
    ],
)  # fmt: skip
def test_what_counts_as_a_domain_asking_us_to_slow_down(result, throttling):
    assert _is_throttling(result) is throttling
