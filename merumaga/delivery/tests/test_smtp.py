"""The sending pool against the fault server on loopback. Every test is bounded by TIME_LIMIT."""

import asyncio
import shutil
import ssl
import subprocess
import time

import pytest

from merumaga.delivery.faultserver import CODES, REPLIES, close_connections, start_fault_server
from merumaga.delivery.pacing import Pacer
from merumaga.delivery.smtp import Pool
from merumaga.delivery.worker import run_in_own_loop
from merumaga.relays import Relay
from merumaga.testing import free_port

TIME_LIMIT = 30  # seconds, for any one test's sending
SENDER = "bounce+t1@news.example.jp"


def relay(port: int, **options) -> Relay:
    fields = {
        "name": f"relay{port}",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": "",
        "password": "",
        "weight": 1,
        "connections": 2,
        "per_second": None,
        "per_minute": None,
    }
    return Relay(**{**fields, **options})


def message(number: int) -> bytes:
    """A CRLF message in 8-bit UTF-8; an even-numbered one has lines starting with dots, which
    the pool hands to aiosmtplib to stuff (the others take the pool's direct way)."""
    dots = ".a line starting with a dot\r\n..and two\r\n" if number % 2 == 0 else ""
    return (
        f"From: news@example.jp\r\nTo: reader{number}@example.jp\r\nSubject: No. {number}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"研究所だより {number}\r\n{dots}{'x' * 900}\r\n"
    ).encode()


def run(coroutine):
    # In a thread of its own when a loop already runs here (after a browser test).
    return run_in_own_loop(lambda: asyncio.wait_for(coroutine, TIME_LIMIT))


async def send_all(pool: Pool, recipients: list[str]) -> list:
    return await asyncio.gather(
        *(pool.send(SENDER, rcpt, message(number)) for number, rcpt in enumerate(recipients))
    )


@pytest.fixture
def fault_server():
    """start(rules=None, delay=0, **options) → (controller, port); all stopped at the end."""
    controllers = []

    def start(rules=None, delay=0, **options):
        port = free_port()
        controller = start_fault_server(port, rules, delay, **options)
        controllers.append(controller)
        return controller, port

    yield start
    for controller in controllers:
        controller.stop()


def pool(*relays: Relay, **options) -> Pool:
    options.setdefault("domain_limits", {})
    return Pool(list(relays), helo_name="test.example.jp", **options)


def test_messages_arrive_intact_over_few_reused_connections(fault_server):
    server, port = fault_server()
    recipients = [f"reader{n}@example.jp" for n in range(60)]

    async def scenario():
        async with pool(relay(port, connections=3)) as smtp:
            results = await send_all(smtp, recipients)
            return results, smtp.stats()

    results, stats = run(scenario())
    handler = server.handler
    assert {r.status for r in results} == {"sent"}
    assert all(r.code == 250 and "queued as FS" in r.reply for r in results)
    assert handler.count == 60
    assert sorted(handler.accepted) == sorted(
        (SENDER, rcpt, message(n)) for n, rcpt in enumerate(recipients)
    )
    assert handler.connections <= 3
    assert handler.quits == handler.connections  # close() said QUIT on each
    assert stats[f"relay{port}"] == {
        "sent": 60,
        "deferred": 0,
        "failed": 0,
        "connections": handler.connections,
    }


def test_messages_that_need_rewriting_arrive_as_smtp_has_them(fault_server):
    server, port = fault_server()
    bare_lf = b"Subject: bare LF\n\n.dot\nend\n"
    unterminated = b"Subject: no final line end\r\n\r\nend"

    async def scenario():
        async with pool(relay(port, connections=1)) as smtp:
            for data in (bare_lf, unterminated):
                assert (await smtp.send(SENDER, "r@example.jp", data)).status == "sent"

    run(scenario())
    assert [content for _, _, content in server.handler.accepted] == [
        b"Subject: bare LF\r\n\r\n.dot\r\nend\r\n",
        unterminated + b"\r\n",
    ]


@pytest.mark.parametrize("number", [1, 2], ids=["direct", "stuffed"])
@pytest.mark.parametrize("stage", ["RCPT", "DATA"])
@pytest.mark.parametrize("code", CODES)
def test_reply_codes_are_classified_and_the_next_message_goes_through(
    fault_server, code, stage, number
):
    rule = code if stage == "RCPT" else f"data:{code}"
    server, port = fault_server({"refuse": rule})

    async def scenario():
        async with pool(relay(port, connections=1)) as smtp:
            refused = await smtp.send(SENDER, "refuse-1@example.jp", message(number))
            accepted = await smtp.send(SENDER, "ok@example.jp", message(2))
            return refused, accepted, smtp.stats()[f"relay{port}"]

    refused, accepted, stats = run(scenario())
    reply_code = int(REPLIES[code][:3])
    expected = "failed" if reply_code >= 500 else "deferred"
    assert (refused.status, refused.code, refused.stage) == (expected, reply_code, stage)
    assert "fault server" in refused.reply
    assert accepted.status == "sent"
    assert server.handler.per_recipient == {"ok@example.jp": 1}
    # A 421 closes the connection; after any other refusal it is reset (RSET) and reused.
    assert server.handler.connections == (2 if code == "421" else 1)
    assert (stats["sent"], stats[expected]) == (1, 1)


def test_a_drop_mid_data_defers_and_the_next_send_uses_a_new_connection(fault_server):
    server, port = fault_server({"drop": "drop"})

    async def scenario():
        async with pool(relay(port, connections=1)) as smtp:
            dropped = await smtp.send(SENDER, "drop@example.jp", message(1))
            after = await smtp.send(SENDER, "ok@example.jp", message(2))
            return dropped, after

    dropped, after = run(scenario())
    assert (dropped.status, dropped.code, dropped.stage) == ("deferred", 0, "DATA")
    assert after.status == "sent"
    assert server.handler.connections == 2
    assert server.handler.per_recipient == {"ok@example.jp": 1}


def test_a_slow_server_times_out_as_deferred(fault_server):
    server, port = fault_server({"slow": "slow"}, delay=3)

    async def scenario():
        async with pool(relay(port, connections=1), timeout=0.5) as smtp:
            started = time.monotonic()
            slow = await smtp.send(SENDER, "slow@example.jp", message(1))
            waited = time.monotonic() - started
            after = await smtp.send(SENDER, "ok@example.jp", message(2))
            return slow, waited, after

    slow, waited, after = run(scenario())
    assert (slow.status, slow.code, slow.stage) == ("deferred", 0, "DATA")
    assert "Timeout" in slow.reply or "timed out" in slow.reply.lower()
    assert waited < 2.5  # our timeout ended the wait, not the server's reply
    assert after.status == "sent"
    assert server.handler.connections == 2


def test_a_cancelled_send_leaves_the_pool_usable(fault_server):
    server, port = fault_server({"slow": "slow"}, delay=10)

    async def scenario():
        async with pool(relay(port, connections=1)) as smtp:
            slow = asyncio.create_task(smtp.send(SENDER, "slow@example.jp", message(1)))
            while not server.handler.delayed:  # until the content is in, the reply pending
                await asyncio.sleep(0.01)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            return await smtp.send(SENDER, "ok@example.jp", message(2))

    assert run(scenario()).status == "sent"
    assert server.handler.connections == 2  # the interrupted connection was not reused
    assert server.handler.per_recipient == {"ok@example.jp": 1}


def test_a_connection_closed_by_the_relay_while_idle_is_replaced(fault_server):
    server, port = fault_server()

    async def scenario():
        async with pool(relay(port, connections=1)) as smtp:
            first = await smtp.send(SENDER, "a@example.jp", message(1))
            close_connections(server)
            second = await smtp.send(SENDER, "b@example.jp", message(2))
            return first, second

    first, second = run(scenario())
    assert (first.status, second.status) == ("sent", "sent")
    assert server.handler.connections == 2


def test_refused_connections_defer_then_the_relay_backs_off(fault_server):
    _, live_port = fault_server()
    dead_port = free_port()  # nothing listens there

    async def scenario():
        async with pool(relay(dead_port), relay(live_port), backoff=30) as smtp:
            results = [await smtp.send(SENDER, f"r{n}@example.jp", message(n)) for n in range(20)]
            return results, smtp.stats()

    results, stats = run(scenario())
    deferred = [r for r in results if r.status == "deferred"]
    # Round-robin 1:1 tries the dead relay twice, then it backs off and the live one takes all.
    assert len(deferred) == 2
    assert all(r.stage == "connect" and r.relay == f"relay{dead_port}" for r in deferred)
    assert stats[f"relay{dead_port}"]["deferred"] == 2
    assert stats[f"relay{live_port}"]["sent"] == 18


def test_when_every_relay_backs_off_sends_are_deferred_at_once():
    dead = relay(free_port())

    async def scenario():
        async with pool(dead, backoff=30) as smtp:
            results = [await smtp.send(SENDER, "r@example.jp", message(n)) for n in range(5)]
            return results, smtp.stats()

    results, stats = run(scenario())
    assert [r.status for r in results] == ["deferred"] * 5
    assert [r.reply for r in results[2:]] == ["every relay is backing off"] * 3
    assert stats["(no relay)"]["deferred"] == 3


def test_the_per_second_limit_spaces_sends(fault_server):
    _, port = fault_server()

    async def scenario():
        async with pool(relay(port, connections=4, per_second=10)) as smtp:
            started = time.monotonic()
            results = await send_all(smtp, [f"r{n}@example.jp" for n in range(20)])
            return results, time.monotonic() - started

    results, elapsed = run(scenario())
    assert {r.status for r in results} == {"sent"}
    assert 1.8 <= elapsed < 10  # 20 sends 0.1 s apart: the last one 1.9 s after the first


def test_pacer_reservations():
    # A clock that stands still: every reservation is made at the same moment.
    pacer = Pacer(per_second=10, clock=lambda: 1000.0)
    delays = [pacer.reserve() for _ in range(5)]
    assert delays == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])
    # Any 60 s window holds at most per_minute turns: the fourth waits for the first's minute.
    pacer = Pacer(per_minute=3, clock=lambda: 1000.0)
    delays = [pacer.reserve() for _ in range(5)]
    assert delays == pytest.approx([0, 0, 0, 60, 60])


def test_a_pacer_asked_late_does_not_make_up_for_lost_time():
    now = [1000.0]
    pacer = Pacer(per_second=10, clock=lambda: now[0])
    assert pacer.reserve() == 0
    now[0] += 5  # nothing asked for five seconds
    assert pacer.reserve() == 0 and pacer.reserve() == pytest.approx(0.1)


def test_weights_split_the_traffic(fault_server):
    heavy, heavy_port = fault_server()
    light, light_port = fault_server()

    async def scenario():
        relays = relay(heavy_port, weight=3, connections=4), relay(light_port, connections=4)
        async with pool(*relays) as smtp:
            return await send_all(smtp, [f"r{n}@example.jp" for n in range(400)])

    results = run(scenario())
    assert {r.status for r in results} == {"sent"}
    assert 240 <= heavy.handler.count <= 360
    assert heavy.handler.count + light.handler.count == 400


def test_a_domain_limit_delays_only_that_domain(fault_server, settings):
    # Slow enough that the 30 other sends finish long before it, however loaded the machine.
    settings.DOMAIN_LIMITS = {"slow.example.jp": 2.0}
    server, port = fault_server()

    async def scenario():
        async with Pool([relay(port, connections=4)], helo_name="test.example.jp") as smtp:
            started = time.monotonic()

            async def timed(rcpt: str, number: int) -> float:
                result = await smtp.send(SENDER, rcpt, message(number))
                assert result.status == "sent"
                return time.monotonic() - started

            slow = [timed(f"r{n}@Slow.Example.jp", n) for n in range(5)]
            fast = [timed(f"r{n}@fast.example.jp", n) for n in range(30)]
            times = await asyncio.gather(*slow, *fast)
            return sorted(times[:5]), times[5:]

    slow, fast = run(scenario())
    assert slow[-1] >= 1.95  # five sends 0.5 s apart
    assert max(fast) < slow[-1]  # the other domain did not queue behind the limited one
    assert server.handler.count == 35


def test_non_ascii_addresses_go_with_smtputf8_and_bad_ones_fail(fault_server):
    server, port = fault_server()

    async def scenario():
        async with pool(relay(port, connections=1)) as smtp:
            japanese = await smtp.send("差出人@例え.jp", "テスト@例え.jp", message(1))
            injected = await smtp.send(SENDER, "a@example.jp>\r\nRCPT TO:<b@example.jp", b"x")
            after = await smtp.send(SENDER, "ok@example.jp", message(2))
            return japanese, injected, after

    japanese, injected, after = run(scenario())
    assert japanese.status == "sent"
    assert (injected.status, injected.code) == ("failed", 0)
    assert after.status == "sent"
    assert server.handler.per_recipient == {"テスト@例え.jp": 1, "ok@example.jp": 1}


# TLS and AUTH, with a certificate made for the test and trusted through SSL_CERT_FILE.


@pytest.fixture
def certificate(tmp_path, monkeypatch):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = (
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
        " -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost"
    )
    subprocess.run(
        [*command.split(), "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # read by OpenSSL for each new client context
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def test_starttls_with_auth(fault_server, certificate):
    server, port = fault_server(starttls_context=certificate, credentials=("mailer", "s3cret"))
    good = relay(port, security="starttls", username="mailer", password="s3cret")
    wrong = relay(port, name="wrong", security="starttls", username="mailer", password="nope")
    plain = relay(port, name="plain")  # no STARTTLS: the server refuses to go on without AUTH

    async def scenario():
        results = []
        for each in (good, wrong, plain):
            async with pool(each) as smtp:
                results.append(await smtp.send(SENDER, "r@example.jp", message(1)))
        return results

    sent, refused, unauthenticated = run(scenario())
    assert sent.status == "sent"
    assert (refused.status, refused.code, refused.stage) == ("deferred", 535, "connect")
    assert (unauthenticated.status, unauthenticated.stage) == ("deferred", "MAIL")
    assert server.handler.count == 1


def test_starttls_is_required_when_configured(fault_server, certificate):
    server, port = fault_server()  # offers no STARTTLS

    async def scenario():
        async with pool(relay(port, security="starttls")) as smtp:
            return await smtp.send(SENDER, "r@example.jp", message(1))

    result = run(scenario())
    assert (result.status, result.stage) == ("deferred", "connect")
    assert server.handler.count == 0  # nothing went in plain text


def test_implicit_tls(fault_server, certificate):
    server, port = fault_server(tls_context=certificate)

    async def scenario():
        async with pool(relay(port, security="tls")) as smtp:
            return await smtp.send(SENDER, "r@example.jp", message(1))

    assert run(scenario()).status == "sent"
    assert server.handler.per_recipient == {"r@example.jp": 1}
