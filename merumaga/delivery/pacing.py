"""How fast mail may go: a relay's fixed limits (Pacer) and a receiving domain's learned rate
(AdaptivePace).

Mailbox providers throttle a sender they find too fast: Yahoo answers "421 4.7.0 [TS01]
Messages from … temporarily deferred", docomo and au a bare 421 or 450. Each such answer halves
the domain's rate (at most once per cool-down: the answers to the messages already in flight say
the same thing once); each message taken raises it a little, so that it climbs back from half to
the ceiling in PACE_RECOVERY_SECONDS of quiet sending (AIMD, as TCP does). The ceiling is the
configured limit (MERUMAGA_DOMAIN_LIMITS); a domain without one goes unpaced until its first
throttling answer, which sets its ceiling to the rate it was being sent at.
"""

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

# Never slower than this: a domain that throttles everything still gets a probe now and then.
FLOOR = 0.2
# One halving per cool-down at most (seconds).
COOL_DOWN = 2.0
# A domain without a limit, throttled before we know how fast it was sent: start from this.
FIRST_GUESS = 10.0
# How many recent sends tell the rate an unlimited domain was sent at.
RECENT = 64


class Pacer:
    """At most `per_second` events, evenly spaced, and at most `per_minute` in any 60 s.

    `reserve()` books the next free turn at once and returns how long to wait for it, so that
    concurrent callers queue in the order they asked and each sleeps once. The spacing is strict
    (no burst): a relay or a carrier sees a steady stream, never a spike after a pause.
    """

    def __init__(
        self,
        per_second: float | None = None,
        per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.interval = 1 / per_second if per_second else 0.0
        self.next_turn = -math.inf
        # The turns of the last `per_minute` events: a new one comes 60 s after the oldest.
        self.recent: deque[float] | None = deque(maxlen=per_minute) if per_minute else None

    def set_rate(self, per_second: float) -> None:
        """A new spacing from the next reservation on (those made keep their turns)."""
        self.interval = 1 / per_second

    def reserve(self) -> float:
        now = self.clock()
        turn = max(now, self.next_turn)
        if self.recent is not None:
            if len(self.recent) == self.recent.maxlen:
                turn = max(turn, self.recent[0] + 60)
            self.recent.append(turn)
        self.next_turn = turn + self.interval
        return turn - now

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass(frozen=True)
class PaceState:
    """What a domain's pace is now, for the progress page and `mailing status`."""

    domain: str
    rate: float | None  # messages per second now; None: not limited
    ceiling: float | None
    throttles: int  # throttling answers since the pool started
    sent: int


class AdaptivePace:
    """One receiving domain's rate: halved on throttling, raised slowly on success.

    Waiters queue in order and one turn is given every 1/rate seconds, at the rate of the
    moment: unlike Pacer's booking ahead, a halving spaces the very next turn, so the messages
    already queued do not keep going at the old rate into more refusals. Costs one future per
    message while the domain is paced, nothing while it is not.
    """

    def __init__(
        self,
        domain: str,
        ceiling: float | None,
        recovery: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.domain = domain
        self.ceiling = ceiling
        self.rate = ceiling
        self.recovery = recovery
        self.clock = clock
        self.throttles = 0
        self.sent = 0
        self.last_halved = -math.inf
        self.next_turn = -math.inf
        self.waiters: deque[asyncio.Future] = deque()
        self.dispatcher: asyncio.Task | None = None
        # When the last messages went, while the domain is unpaced: the rate to learn.
        self.recent: deque[float] = deque(maxlen=RECENT)

    async def wait(self) -> None:
        if self.rate is None:
            return
        now = self.clock()
        if not self.waiters and now >= self.next_turn:
            self.next_turn = now + 1 / self.rate
            return
        future = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        if self.dispatcher is None or self.dispatcher.done():
            self.dispatcher = asyncio.create_task(self._dispatch())
        await future

    async def _dispatch(self) -> None:
        while self.waiters:
            delay = self.next_turn - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            future = self.waiters.popleft()
            if future.done():  # its sender was cancelled: the turn goes to the next
                continue
            future.set_result(None)
            if self.rate is None:  # turns queue only while paced, and a pace is never lifted
                raise RuntimeError(f"{self.domain}: turns queued without a rate")
            self.next_turn = max(self.clock(), self.next_turn) + 1 / self.rate

    def delivered(self) -> None:
        """A message taken: +ceiling/(2 × recovery) per second of sending at the current rate."""
        self.sent += 1
        if self.rate is None:
            self.recent.append(self.clock())
            return
        if self.ceiling is None:  # set whenever the rate is: at the start, or by throttled()
            raise RuntimeError(f"{self.domain}: a rate without a ceiling")
        if self.rate < self.ceiling:
            step = self.ceiling / (2 * self.recovery)
            self.rate = min(self.ceiling, self.rate + step / self.rate)

    def throttled(self) -> None:
        """A throttling answer (421, or a 4xx that says "too many"): half the rate."""
        self.throttles += 1
        now = self.clock()
        if now - self.last_halved < COOL_DOWN:
            return
        self.last_halved = now
        if self.rate is None:
            # No ceiling configured: the rate that drew the answer is the most it takes.
            self.ceiling = self._observed_rate()
            self.rate = self.ceiling
        self.rate = max(FLOOR, self.rate / 2)  # from the turn after the next on

    def state(self) -> PaceState:
        return PaceState(self.domain, self.rate, self.ceiling, self.throttles, self.sent)

    def _observed_rate(self) -> float:
        if len(self.recent) < 2 or self.recent[-1] <= self.recent[0]:
            return FIRST_GUESS
        return max(FLOOR, (len(self.recent) - 1) / (self.recent[-1] - self.recent[0]))
