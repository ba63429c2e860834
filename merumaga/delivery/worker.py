"""The delivery worker: claim a batch → render each mail → send over the SMTP pool → record.

Runs any number of times on any number of machines against one database. The event loop does the
rendering and the SMTP; the database is used from one dedicated thread (Django connections belong
to a thread), so a claim or a record never blocks sending. Two batch loops run at once: while one
batch is on the wire, the next is claimed and rendered.

One mailing that fails (a template that raises, data that cannot be read, a database error
while claiming or recording it) gives its unsent rows back and is tried again after a delay; when
it fails three times in a row it is set aside: paused, with the reason in its history. The worker
goes on with the other mailings all the while. Trouble with the database itself
makes the worker wait, longer each time, and try again; it does not exit.

Duplicates are bounded: a row is marked sent in the batch commit that follows its 250 reply. A
worker killed between the two leaves at most its in-flight batches (2 × batch size rows) to be
sent again when their lease runs out; a worker stopped by SIGTERM finishes what is in flight
and records it before it exits.
"""

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import make_msgid
from typing import Any, TypeAlias, TypeVar, TypeVarTuple

from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone
from django.utils.translation import gettext

from merumaga import reasons
from merumaga.delivery import domains, queue
from merumaga.delivery import services as delivery_services
from merumaga.delivery.dkim import configured_signer
from merumaga.delivery.fastrender import READER_FIELDS, FastTemplate, Reader
from merumaga.delivery.models import Delivery, DomainHold, DomainPace, WorkerBeat
from merumaga.delivery.pacing import PaceState
from merumaga.delivery.signals import DeliveryFailure, deliveries_failed
from merumaga.delivery.smtp import Pool
from merumaga.mailings import rendering, services
from merumaga.mailings.archive import archive
from merumaga.mailings.audience import deliverable
from merumaga.mailings.contents import weekly_tags
from merumaga.mailings.models import Mailing
from merumaga.outgoing import Built
from merumaga.providers import provider
from merumaga.publishing.interests import interests_of
from merumaga.relays import configured_relays

logger = logging.getLogger(__name__)
_T = TypeVar("_T")
_Args = TypeVarTuple("_Args")
Status = Delivery.Status
RENDER = "render"  # the stage of a message that could not be built
PACES_EVERY = 2.0  # seconds between writes of the domains' paces
BEAT_EVERY = 15.0  # seconds between a worker's heartbeats (readyz wants one in the last minute)


@dataclass
class Options:
    batch_size: int = 500
    lease: timedelta = timedelta(minutes=5)
    loops: int = 2  # batches in flight at once
    idle_sleep: float = 1.0
    max_attempts: int = 8  # deferred this often → failed
    first_retry: timedelta = timedelta(minutes=5)  # doubled at each attempt
    error_window: int = 200
    error_threshold: float = 0.5  # auto-pause when half of the last 200 sends failed or deferred
    record_attempts: int = 3  # a batch's results are written this many times before giving up
    give_up_after: int = 3  # failed steps in a row that end `run_until_idle` (tests, --once)
    # A mailing that fails is tried again after trouble_delay seconds, doubling, and set aside
    # (paused, with the reason) when it fails this many times in a row: a database that
    # stumbles once must not stop a mailing until someone resumes it.
    set_aside_after: int = 3
    trouble_delay: float = 5.0


@dataclass
class MailingState:
    """What a worker keeps about a mailing it is sending: compiled templates, recent outcomes."""

    mailing: Mailing
    # One per (language, the reader's research fields among the report's tags): a weekly report
    # puts each reader's fields first, and readers with the same choice share the body.
    templates: dict[tuple[str, frozenset[int]], FastTemplate] = field(default_factory=dict)
    tags: frozenset[int] | None = None  # the weekly report's tags, read once
    message_id_domain: str = ""
    recent: deque[bool] = field(default_factory=lambda: deque(maxlen=200))


# A claimed batch: its mailing, the rows to send now, the readers they go to (by subscriber id)
# and the probes among the rows (by delivery id).
_Batch: TypeAlias = tuple[
    MailingState, list[queue.Claimed], dict[int, Reader], dict[int, DomainHold]
]


class Worker:
    def __init__(
        self, name: str | None = None, options: Options | None = None, pool: Pool | None = None
    ) -> None:
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.options = options or Options()
        self.pool = pool
        self.database = ThreadPoolExecutor(max_workers=1, thread_name_prefix="merumaga-db")
        self.stopping = asyncio.Event()
        self.mailings: dict[int, MailingState] = {}
        # mailing id -> (failures in a row, monotonic time before which it is not tried again)
        self.troubles: dict[int, tuple[int, float]] = {}
        self.sent = 0
        self.signer = configured_signer()
        self.paces_due = 0.0  # when the domains' paces are next written for the progress page
        self.beat_due = 0.0  # when the worker next says it is alive (WorkerBeat)
        # Outcomes by relay, mailbox provider and result, for /metrics (through WorkerBeat).
        self.outcomes: Counter[str] = Counter()
        self.started_at = timezone.now()

    async def db(self, function: Callable[[*_Args], _T], *args: *_Args) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.database, function, *args)

    async def run(self, until_idle: bool = False) -> None:
        """Work until stopped (SIGTERM), or with `until_idle` until nothing is left to do."""
        own_pool = self.pool is None
        pool = self.pool = self.pool if self.pool is not None else Pool(configured_relays("bulk"))
        try:
            await asyncio.gather(*(self._loop(until_idle) for _ in range(self.options.loops)))
        finally:
            with contextlib.suppress(DatabaseError):  # the rates and counts as they ended
                await self.db(self._save_paces, pool.paces())
                await self.db(self._beat)
            if own_pool:
                await pool.close()
            # The database thread's connection goes with it (persistent connections would
            # otherwise outlive the worker).
            await self.db(connections.close_all)
            self.database.shutdown(wait=True)

    def stop(self) -> None:
        self.stopping.set()

    async def _loop(self, until_idle: bool) -> None:
        troubles = 0
        while not self.stopping.is_set():
            try:
                if time.monotonic() >= self.beat_due:
                    self.beat_due = time.monotonic() + BEAT_EVERY
                    await self.db(self._beat)
                worked = await self.step()
            except Exception:
                # Whatever one mailing does is set aside inside step(); what reaches here is the
                # database or the pool itself being unwell. The worker stays up, waits longer
                # each time, and tries again.
                troubles += 1
                logger.exception("worker %s: a step failed (%d in a row)", self.name, troubles)
                if until_idle and troubles >= self.options.give_up_after:
                    raise
                await self._wait(min(60.0, self.options.idle_sleep * 2**troubles))
                continue
            troubles = 0
            if worked:
                continue
            if until_idle:
                return
            await self._wait(self.options.idle_sleep)

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def step(self) -> bool:
        """One batch of one mailing; False when there was nothing to do.

        One mailing's failure (its templates, its data) pauses that mailing with the reason and
        gives its unsent rows back; the other mailings go on.
        """
        batch = await self.db(self._claim_next)
        if batch is None:
            return False
        state, claimed, readers, probes = batch
        skipped = [c for c in claimed if c.subscriber_id not in readers]
        results = [queue.Result(c.delivery_id, Status.SKIPPED, "opted out") for c in skipped]
        to_send = [c for c in claimed if c.subscriber_id in readers]
        try:
            jobs = self._render_all(state, to_send, readers)
        except Exception as error:  # nothing of this batch has been sent yet: all of it goes back
            ids = [c.delivery_id for c in claimed]
            await self.db(self._trouble, state.mailing, error, ids)
            return True
        results += await asyncio.gather(*jobs)
        await self._record(state, results)
        # One dictionary increment per mail: the per-relay, per-provider counts of /metrics.
        for claim, result in zip(to_send, results[len(skipped) :], strict=True):
            address = readers[claim.subscriber_id].email or ""
            group = provider(address.rpartition("@")[2])
            self.outcomes[f"{result.relay or '-'}|{group}|{result.status}"] += 1
        failures = [
            DeliveryFailure(
                state.mailing.pk,
                claim.subscriber_id,
                result.reply,
                result.stage,
                result.relay,
                final=result.status == Status.FAILED,
            )
            for claim, result in zip(to_send, results[len(skipped) :], strict=True)
            if result.status in (Status.FAILED, Status.DEFERRED)
        ]
        if failures:
            await self.db(self._report_failures, failures)
        if probes:
            await self.db(self._probes_answered, probes, results)
        await self.db(self._after_batch, state, results)
        if time.monotonic() >= self.paces_due:
            self.paces_due = time.monotonic() + PACES_EVERY
            await self.db(self._save_paces, self._pool().paces())
        return True

    def _pool(self) -> Pool:
        if self.pool is None:  # run() opens one before any step
            raise RuntimeError("the worker is not running: no SMTP pool")
        return self.pool

    async def _record(self, state: MailingState, results: list[queue.Result]) -> None:
        """Record a batch that was sent, retrying a database that stumbles: the mails are gone,
        so their rows must not come back to be sent again if it can be helped."""
        for attempt in range(1, self.options.record_attempts + 1):
            try:
                await self.db(queue.record, results, self.name)
                self.troubles.pop(state.mailing.pk, None)  # it works again
                return
            except DatabaseError as error:
                if attempt == self.options.record_attempts:
                    # The rows stay leased; they come back after the lease (resent: the
                    # documented bound on duplicates).
                    await self.db(self._trouble, state.mailing, error, [])
                    return
                logger.warning("mailing %s: recording failed (%s); again", state.mailing.pk, error)
                await asyncio.sleep(self.options.idle_sleep * attempt)

    # Database side (runs in the database thread).

    def _claim_next(self) -> _Batch | None:
        """A batch of the oldest mailing being sent that has rows to take now.

        Not simply the oldest: one whose last rows wait hours for a retry must not hold back
        the mailings started after it, and one that fails is set aside. Each mailing's audience
        is frozen here the first time.
        """
        close_old_connections()
        sending = (
            Mailing.objects.filter(status=Mailing.Status.SENDING)
            .select_related("topic", "article", "report", "event")
            .order_by("started_at", "id")
        )
        for mailing in sending:
            if self.troubles.get(mailing.pk, (0, 0.0))[1] > time.monotonic():
                continue  # failed a moment ago: tried again once its delay is over
            try:
                if mailing.audience_frozen_at is None and queue.freeze_audience(mailing):
                    logger.info("mailing %s: audience frozen", mailing.pk)
                batch = self._claim(mailing)
            except DatabaseError as error:
                if not connections["default"].is_usable():
                    raise  # the database, not this mailing: the loop waits and tries again
                self._trouble(mailing, error, [])
                continue
            except Exception as error:
                self._trouble(mailing, error, [])
                continue
            if batch is not None:
                return batch
        return None

    def _claim(self, mailing: Mailing) -> _Batch | None:
        claimed = queue.claim(mailing.pk, self.name, self.options.batch_size, self.options.lease)
        if not claimed:
            if queue.is_done(mailing.pk):
                self._finish(mailing)
            return None
        try:
            state, readers = self._prepare(mailing, claimed)
        except Exception as error:
            self._trouble(mailing, error, [c.delivery_id for c in claimed])
            return None
        claimed, probes = self._hold_back(claimed, readers)
        return state, claimed, readers, probes

    def _hold_back(
        self, claimed: list[queue.Claimed], readers: dict[int, Reader]
    ) -> tuple[list[queue.Claimed], dict[int, DomainHold]]:
        """The rows to send now, and the probes among them: rows for a held domain wait for its
        probe (services.py), except one that goes as the probe when it is due. One query when
        no domain is held."""
        holds = domains.active_holds()
        if not holds:
            return claimed, {}
        waiting: dict[str, list[queue.Claimed]] = {}
        for claim in claimed:
            reader = readers.get(claim.subscriber_id)
            domain = reader.email.rpartition("@")[2].lower() if reader and reader.email else ""
            if domain in holds:
                waiting.setdefault(domain, []).append(claim)
        probes: dict[int, DomainHold] = {}
        held_back: set[int] = set()
        now = timezone.now()
        for domain, rows in waiting.items():
            hold = holds[domain]
            if delivery_services.start_probe(hold, self.options.lease):
                probes[rows[0].delivery_id] = hold
                rows = rows[1:]
            ids = [row.delivery_id for row in rows]
            delivery_services.wait_for_hold(ids, self.name, hold, now)
            held_back.update(ids)
        return [c for c in claimed if c.delivery_id not in held_back], probes

    def _probes_answered(self, probes: dict[int, DomainHold], results: list[queue.Result]) -> None:
        for result in results:
            if result.delivery_id in probes:
                delivery_services.probe_answered(
                    probes[result.delivery_id],
                    result.reply,
                    result.stage,
                    result.status == Status.SENT,
                )

    def _prepare(
        self, mailing: Mailing, claimed: list[queue.Claimed]
    ) -> tuple[MailingState, dict[int, Reader]]:
        """The readers still wanted (an opt-out after the snapshot wins), as light rows, and the
        mailing's templates for their languages (and research fields), compiled the first time."""
        state = self.mailings.get(mailing.pk)
        if state is None:
            state = self.mailings[mailing.pk] = MailingState(mailing)
        wanted = deliverable(mailing).filter(pk__in=[c.subscriber_id for c in claimed])
        rows = wanted.values(*READER_FIELDS)
        if state.tags is None:
            state.tags = weekly_tags(mailing)
        # One query a batch, and only for a weekly report whose articles have tags.
        chosen = interests_of([c.subscriber_id for c in claimed], state.tags) if state.tags else {}
        readers = {
            row["pk"]: Reader(**row, interests=chosen.get(row["pk"], frozenset())) for row in rows
        }
        for key in {(reader.language, reader.interests) for reader in readers.values()}:
            if key not in state.templates:
                compiled = rendering.compile_mailing(mailing, key[0], track=True, interests=key[1])
                state.templates[key] = FastTemplate(compiled)
                state.message_id_domain = compiled.sender.from_email.rsplit("@", 1)[-1]
        return state, readers

    def _trouble(self, mailing: Mailing, error: Exception, delivery_ids: list[int]) -> None:
        """One mailing failed (not one message): its unsent rows go back at once; it is tried
        again after a delay, and set aside when it keeps failing."""
        failures = self.troubles.get(mailing.pk, (0, 0.0))[0] + 1
        if failures >= self.options.set_aside_after:
            self.troubles.pop(mailing.pk, None)
            self._set_aside(mailing, error, delivery_ids)
            return
        if delivery_ids:
            queue.release(delivery_ids, self.name)
        delay = self.options.trouble_delay * 2 ** (failures - 1)
        self.troubles[mailing.pk] = (failures, time.monotonic() + delay)
        logger.warning(
            "mailing %s failed (%d of %d before it is set aside), again in %.0f s: %r",
            mailing.pk,
            failures,
            self.options.set_aside_after,
            delay,
            error,
        )

    def _set_aside(self, mailing: Mailing, error: Exception, delivery_ids: list[int]) -> None:
        """One mailing failed (not one message): pause it with the reason on its page, give its
        unsent rows back, and let the worker go on with the others (Mailman's shunt)."""
        logger.error("mailing %s set aside: %r", mailing.pk, error, exc_info=error)
        self.mailings.pop(mailing.pk, None)  # compiled afresh if it is resumed
        if delivery_ids:
            queue.release(delivery_ids, self.name)
        reason = f"{type(error).__name__}: {error}"
        note = gettext("配信中にエラーが起きたため一時停止しました: %(reason)s") % {
            "reason": reason
        }
        with contextlib.suppress(services.MailingError):  # paused or cancelled meanwhile
            services.pause(mailing, note=note[:300])

    def _beat(self) -> None:
        """One upsert: this worker is alive, and what it has sent, by relay, provider and
        result."""
        WorkerBeat.objects.update_or_create(
            worker=self.name[:64],
            defaults={"seen_at": timezone.now(), "sent": self.sent, "counts": dict(self.outcomes)},
            create_defaults={
                "started_at": self.started_at,
                "seen_at": timezone.now(),
                "sent": self.sent,
                "counts": dict(self.outcomes),
            },
        )

    def _save_paces(self, paces: Iterable[PaceState]) -> None:
        """This worker's paced domains as they are now (one upsert), for the progress page and
        `mailing status`; rows of workers gone for a day are dropped."""
        now = timezone.now()
        rows = [
            DomainPace(
                worker=self.name[:64],
                domain=pace.domain[:255],
                rate=pace.rate,
                ceiling=pace.ceiling,
                throttles=pace.throttles,
                sent=pace.sent,
                updated_at=now,
            )
            for pace in paces
        ]
        if rows:
            DomainPace.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["worker", "domain"],
                update_fields=["rate", "ceiling", "throttles", "sent", "updated_at"],
            )
        DomainPace.objects.filter(updated_at__lt=now - timedelta(days=1)).delete()

    def _report_failures(self, failures: list[DeliveryFailure]) -> None:
        # The rows are recorded already; a listener's error must not stop the sending.
        for receiver, error in deliveries_failed.send_robust(Worker, failures=failures):
            if isinstance(error, Exception):
                logger.error("%s failed on %d failures: %r", receiver, len(failures), error)

    def _finish(self, mailing: Mailing) -> None:
        counts = queue.counts(mailing.pk)
        sent, failed = counts[Status.SENT], counts[Status.FAILED]
        try:
            services.finish(mailing, sent=sent, failed=failed)
        except services.MailingError:  # finished by another worker, or paused, or cancelled
            services.record_counts(mailing, sent=sent, failed=failed)
            return
        self.mailings.pop(mailing.pk, None)
        logger.info("mailing %s: done %s", mailing.pk, counts)
        try:
            archive(mailing)
        except Exception as error:  # it was sent all the same: say so where editors look
            logger.exception("mailing %s: the archive copy could not be made", mailing.pk)
            services.record_note(mailing, f"archive copy failed: {type(error).__name__}: {error}")

    def _after_batch(self, state: MailingState, results: list[queue.Result]) -> None:
        """Pause and cancel take effect here; too many errors pause the mailing by itself."""
        # What the relays said, not what could not be rendered (an address our headers cannot
        # carry, stored long ago): those rows fail on their own and say why.
        state.recent.extend(
            r.status in (Status.FAILED, Status.DEFERRED) and r.stage != RENDER for r in results
        )
        mailing = state.mailing
        current = Mailing.objects.filter(pk=mailing.pk).values_list("status", flat=True).first()
        if current == Mailing.Status.CANCELLED:
            queue.cancel_remaining(mailing)
            return
        window = self.options.error_window
        if len(state.recent) >= window and sum(state.recent) / len(state.recent) >= (
            self.options.error_threshold
        ):
            with contextlib.suppress(services.MailingError):  # paused or cancelled meanwhile
                services.pause(mailing, note="auto-paused: too many errors")
            state.recent.clear()

    # Sending side (runs in the event loop).

    def _render_all(
        self, state: MailingState, claimed: list[queue.Claimed], readers: dict[int, Reader]
    ) -> list[Awaitable[queue.Result]]:
        """The send job of each claimed row; a message that cannot be built fails on its own."""
        now = timezone.localtime(timezone.now())
        jobs: list[Awaitable[queue.Result]] = []
        fell_back: dict[str, None] = {}  # characters that made ISO-2022-JP readers get UTF-8
        fallbacks = 0
        # Per message: one template fill and MIME assembly (tens of µs), then the SMTP round trip.
        for claim in claimed:
            reader = readers[claim.subscriber_id]
            template = state.templates[(reader.language, reader.interests)]
            message_id = make_msgid(domain=state.message_id_domain)
            try:
                outgoing = template.render(reader, date=now, message_id=message_id)
            except ValueError as error:  # one bad message never stops the loop
                result = queue.Result(claim.delivery_id, Status.FAILED, str(error), stage=RENDER)
                jobs.append(_done(result))
                continue
            if outgoing.uncarried:
                fallbacks += 1
                fell_back.update(dict.fromkeys(outgoing.uncarried))
            data = self.signer.sign(outgoing.data) if self.signer else outgoing.data
            jobs.append(self._send_one(claim, outgoing, data))
        if fallbacks:
            logger.warning(
                "mailing %s: %d readers who chose ISO-2022-JP got UTF-8, because of %s",
                state.mailing.pk,
                fallbacks,
                " ".join(fell_back),
            )
        return jobs

    async def _send_one(self, claim: queue.Claimed, outgoing: Built, data: bytes) -> queue.Result:
        result = await self._pool().send(outgoing.envelope_from, outgoing.to, data)
        reply = f"{result.code} {result.reply}".strip()
        if result.status == "sent":
            self.sent += 1
            return queue.Result(claim.delivery_id, Status.SENT, reply)
        # A permanent refusal whose reason is ours (a blocklist, SPF, a spam filter) says nothing
        # about the reader: tried again later like a deferral, while the domain may be held.
        ours = reasons.group(reasons.reason(reply=reply)) == reasons.OURS
        if (result.status == "deferred" or ours) and claim.attempts < self.options.max_attempts:
            delay = self.options.first_retry * (2 ** (claim.attempts - 1))
            return queue.Result(
                claim.delivery_id,
                Status.DEFERRED,
                reply,
                retry_at=timezone.now() + delay,
                stage=result.stage,
                relay=result.relay,
            )
        return queue.Result(
            claim.delivery_id, Status.FAILED, reply, stage=result.stage, relay=result.relay
        )


async def _done(result: queue.Result) -> queue.Result:
    return result


def run_until_idle(worker: Worker | None = None, **options: Any) -> Worker:
    """Deliver everything that is due now, then return: for `merumaga worker --once` and tests."""
    worker = worker or Worker(options=Options(**options))
    run_in_own_loop(lambda: worker.run(until_idle=True))
    return worker


def run_in_own_loop(make_coroutine: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """asyncio.run, also from a thread that already runs an event loop (a caller that is itself
    async, or a test process where a browser driver keeps one): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coroutine())
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(lambda: asyncio.run(make_coroutine())).result()


def serve(worker: Worker) -> None:
    """Run until SIGTERM/SIGINT: finish the batches in flight and record them, then exit."""
    import signal

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.stop)
        started = time.monotonic()
        await worker.run()
        logger.info(
            "worker %s stopped after %.0f s, %d sent",
            worker.name,
            time.monotonic() - started,
            worker.sent,
        )

    asyncio.run(main())
