import logging
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, lock_task
from huey.exceptions import TaskLockedException

from merumaga.bounces import mailbox, services

logger = logging.getLogger(__name__)

POLL_LOCK = lock_task("bounces-poll-mailbox")
# When the poll holding the lock began. The storages in use cannot expire a lock, so one left by a
# consumer killed mid-poll would stop polling for good; past this age it is taken over. A poll
# stops starting messages after mailbox.MAX_SECONDS, far less than this.
POLL_STARTED_KEY = "bounces-poll-mailbox-started"
STALE_LOCK_SECONDS = 60 * 60
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def poll_due(now: datetime) -> bool:
    """Every BOUNCE_POLL_MINUTES, counted from the epoch: unlike a crontab "*/N", any N works
    (7, 90…) without a short gap at each hour or midnight."""
    # Huey passes its clock naive (UTC, its default): read as such.
    minute = (now.replace(tzinfo=UTC) - _EPOCH) // timedelta(minutes=1)
    return minute % settings.BOUNCE_POLL_MINUTES == 0


@db_periodic_task(poll_due)
def poll_bounce_mailbox() -> None:
    """Poll MERUMAGA_BOUNCE_MAILBOX_URL, when set; never two polls at once."""
    if not settings.BOUNCE_MAILBOX_URL:
        return
    if not _acquire():
        return
    try:
        HUEY.put(POLL_STARTED_KEY, time.time())
        report = mailbox.poll_mailbox()
    except mailbox.MailboxError as error:
        if error.report is not None:
            logger.error("bounce mailbox poll cut short: %s; so far %s", error, error.report)
        else:
            logger.error("bounce mailbox poll failed: %s", error)
        return
    finally:
        HUEY.delete(POLL_STARTED_KEY)
        POLL_LOCK.clear()
    log = logger.warning if report.failed else logger.info
    log("bounce mailbox polled: %s", report)


def _acquire() -> bool:
    try:
        return POLL_LOCK.acquire()
    except TaskLockedException:
        pass
    started = HUEY.get(POLL_STARTED_KEY, peek=True)
    if started is None:
        # Held by a poll about to record its start, or by one killed before it could: record now,
        # so that the second case becomes stale in time.
        HUEY.put(POLL_STARTED_KEY, time.time())
        logger.info("bounce mailbox: the previous poll is still running; skipped")
        return False
    if time.time() - started < STALE_LOCK_SECONDS:
        logger.info("bounce mailbox: the previous poll is still running; skipped")
        return False
    logger.warning(
        "bounce mailbox: lock left by a poll started %.0f s ago; taken over", time.time() - started
    )
    POLL_LOCK.clear()
    try:
        return POLL_LOCK.acquire()
    except TaskLockedException:
        return False


READ_LOCK = lock_task("bounces-read-waiting")
# What a running receiver's readers have not taken after this long, they are not going to.
LEFT_WAITING_AFTER = timedelta(minutes=2)
# Rounds of one reading (up to 1,000 messages each) per run: the run ends, and leaves the task
# runner's workers to sending; the next minute's run goes on.
READ_ROUNDS = 20


@db_periodic_task(crontab(minute="*"))
def read_waiting_messages() -> None:
    """What a bounce receiver kept and did not read (stopped before its readers got to it):
    read within a few minutes, even if it never starts again. One indexed query when none
    waits; never two runs at once."""
    try:
        with READ_LOCK:
            before = timezone.now() - LEFT_WAITING_AFTER
            total = 0
            for _ in range(READ_ROUNDS):
                read = services.read_waiting(received_before=before)
                total += read
                if not read:
                    break
    except TaskLockedException:
        return
    if total:
        logger.warning("read %d inbound messages a bounce receiver had left waiting", total)
