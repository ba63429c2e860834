from datetime import timedelta

from django.core.management.base import BaseCommand

from merumaga.delivery.worker import Options, Worker, run_until_idle, serve


class Command(BaseCommand):
    help = (
        "Deliver mailings: claim batches of readers, render, send over the SMTP pool, record. "
        "Run as many as you like, on as many machines; stop with SIGTERM (in-flight mail is "
        "finished and recorded)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=500, help="readers claimed at a time")
        parser.add_argument("--loops", type=int, default=2, help="batches in flight at once")
        parser.add_argument(
            "--lease-seconds", type=int, default=300, help="how long a claim holds its rows"
        )
        parser.add_argument("--once", action="store_true", help="stop when nothing is left")

    def handle(self, *args, batch, loops, lease_seconds, once, **options):
        settings = {
            "batch_size": batch,
            "loops": loops,
            "lease": timedelta(seconds=lease_seconds),
        }
        if once:
            worker = run_until_idle(**settings)
            self.stdout.write(f"sent={worker.sent}")
            return
        worker = Worker(options=Options(**settings))
        self.stdout.write(f"worker {worker.name}: waiting for mailings (Ctrl-C to stop)")
        serve(worker)
