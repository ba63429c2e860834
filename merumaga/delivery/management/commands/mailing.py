import time

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from merumaga.delivery import domains, queue
from merumaga.mailings import services
from merumaga.mailings.models import Mailing

ACTIONS = {
    "start": services.start,
    "pause": services.pause,
    "resume": services.resume,
    "cancel": services.cancel,
}
FINISHED = (Mailing.Status.SENT, Mailing.Status.CANCELLED)


class Command(BaseCommand):
    help = "Control a mailing and watch it go out: start|pause|resume|cancel|status ID."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=[*ACTIONS, "status"])
        parser.add_argument("mailing_id", type=int)
        parser.add_argument(
            "--follow", action="store_true", help="with status: a live progress bar until done"
        )

    def handle(self, *args, action, mailing_id, follow, **options):
        try:
            mailing = Mailing.objects.get(pk=mailing_id)
        except Mailing.DoesNotExist:
            raise CommandError(f"no mailing {mailing_id}") from None
        if action in ACTIONS:
            try:
                mailing = ACTIONS[action](mailing)
            except services.MailingError as error:
                raise CommandError(str(error)) from None
            self.stdout.write(f"mailing {mailing.pk}: {mailing.status}")
            return
        if follow:
            self.follow(mailing)
        else:
            self.stdout.write(status_line(mailing))

    def follow(self, mailing: Mailing) -> None:
        console = Console(stderr=True)
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            "{task.fields[rate]}/s",
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            task = bar.add_task(f"mailing {mailing.pk}", total=None, rate="0")
            last_done, last_time = None, time.monotonic()
            while True:
                mailing.refresh_from_db(fields=["status"])
                counts = queue.counts(mailing.pk)
                done = counts["total"] - sum(counts[s] for s in queue.CLAIMABLE)
                now = time.monotonic()
                rate = 0 if last_done is None else (done - last_done) / max(now - last_time, 1e-6)
                last_done, last_time = done, now
                bar.update(
                    task,
                    completed=done,
                    total=counts["total"] or None,
                    rate=f"{rate:,.0f}",
                    description=f"mailing {mailing.pk} {mailing.status}",
                )
                if mailing.status in FINISHED:
                    break
                time.sleep(1)
        self.stdout.write(status_line(mailing))


def status_line(mailing: Mailing) -> str:
    """The counts, then a line per held domain and per paced domain."""
    counts = queue.counts(mailing.pk)
    keys = ("total", "queued", "sending", "sent", "deferred", "failed", "skipped", "cancelled")
    lines = [f"status={mailing.status} " + " ".join(f"{key}={counts[key]}" for key in keys)]
    waiting = domains.waiting_for_holds(mailing.pk)
    for domain, hold in sorted(domains.active_holds().items()):
        lines.append(
            f"held domain={domain} waiting={waiting.get(domain, 0)} "
            f"since={hold.started_at.isoformat(timespec='seconds')} "
            f"probe_at={hold.probe_at.isoformat(timespec='seconds')} "
            f"reason={hold.reason!r}"
        )
    for pace in domains.current_paces():
        rate = "unlimited" if pace.rate is None else f"{pace.rate:.1f}/s"
        ceiling = "none" if pace.ceiling is None else f"{pace.ceiling:.1f}/s"
        lines.append(
            f"pace domain={pace.domain} rate={rate} ceiling={ceiling} "
            f"throttles={pace.throttles} {'slowed' if pace.slowed else 'full'}"
        )
    return "\n".join(lines)
