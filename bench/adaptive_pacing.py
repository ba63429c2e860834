"""Adaptive pacing against a relay that throttles one domain: a timeline. Prints one line per
second, then a summary:

    .venv/bin/python bench/adaptive_pacing.py --n 600 --limit 60 --server-rate 20

N messages to slow.example and N to fast.example go through one Pool (4 connections) whose
configured limit is LIMIT/s for both; the fault server takes at most SERVER_RATE a second for
slow.example and answers 421 beyond. A refused message is tried again at once (as the worker
does with first_retry 0). Each line: seconds since the start, slow.example's pace (msg/s), its
mails taken and 421s in that second, fast.example's pace and mails taken. Summary: when each
domain finished, the share of slow.example's attempts refused, and its refusals in the first and
the last thirds of its run (the pace converging: fewer 421s as it learns).
"""

import argparse
import asyncio
import os
import socket
import sys
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLOW, FAST = "slow.example", "fast.example"
MESSAGE = b"From: news@example.jp\r\nSubject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * 26


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def run(n: int, limit: float, server_rate: int, recovery: float) -> None:
    from merumaga.delivery.faultserver import start_fault_server
    from merumaga.delivery.smtp import Pool
    from merumaga.relays import build_relays

    port = free_port()
    server = start_fault_server(port, keep=0)
    server.handler.rules = lambda a: f"rate:{server_rate}" if a.endswith("@" + SLOW) else None
    relays = build_relays(f"smtp://127.0.0.1:{port}?connections=4", "", 0)
    started = time.monotonic()
    taken: Counter = Counter()  # (second, domain) → mails taken
    refused: Counter = Counter()  # second → 421s for slow.example
    finished: dict[str, float] = {}
    async with Pool(
        relays, domain_limits={SLOW: limit, FAST: limit}, helo_name="bench", pace_recovery=recovery
    ) as pool:

        async def send(domain: str, number: int) -> None:
            while True:
                result = await pool.send("bounce@example.jp", f"r{number}@{domain}", MESSAGE)
                second = int(time.monotonic() - started)
                if result.status == "sent":
                    taken[second, domain] += 1
                    return
                refused[second] += 1

        async def domain_done(domain: str) -> None:
            await asyncio.gather(*(send(domain, i) for i in range(n)))
            finished[domain] = time.monotonic() - started

        async def sample() -> None:
            second = 0
            while len(finished) < 2:
                await asyncio.sleep(max(0.0, started + second + 1 - time.monotonic()))
                paces = {pace.domain: pace for pace in pool.paces()}
                print(
                    f"t={second + 1:>3}s slow_pace={paces[SLOW].rate:5.1f}/s "
                    f"slow_taken={taken[second, SLOW]:>3} slow_421={refused[second]:>3} "
                    f"fast_pace={paces[FAST].rate:5.1f}/s fast_taken={taken[second, FAST]:>3}"
                )
                second += 1
                sys.stdout.flush()

        await asyncio.gather(domain_done(SLOW), domain_done(FAST), sample())
    server.stop()
    slow_seconds = int(finished[SLOW]) + 1
    third = max(1, slow_seconds // 3)
    first = sum(refused[s] for s in range(third))
    last = sum(refused[s] for s in range(slow_seconds - third, slow_seconds))
    attempts = n + sum(refused.values())
    print(
        f"n={n} limit={limit:g}/s server_rate={server_rate}/s recovery={recovery:g}s "
        f"fast_done_s={finished[FAST]:.1f} slow_done_s={finished[SLOW]:.1f} "
        f"slow_refused={sum(refused.values())} of {attempts} attempts "
        f"({sum(refused.values()) / attempts:.1%}) refused_first_third={first} "
        f"refused_last_third={last} throttles_seen={server.handler.throttled}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--limit", type=float, default=60.0)
    parser.add_argument("--server-rate", type=int, default=20)
    parser.add_argument("--recovery", type=float, default=60.0)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "merumaga.settings")
    os.environ.setdefault("MERUMAGA_LOG_LEVEL", "WARNING")
    sys.path.insert(0, ROOT)
    import django

    django.setup()
    asyncio.run(run(args.n, args.limit, args.server_rate, args.recovery))


if __name__ == "__main__":
    main()
