import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from merumaga.demo import (
    DemoNotSent,
    load_demo_content,
    load_demo_history,
    load_demo_readers,
)
from merumaga.publishing.models import Article
from merumaga.subscribers.models import Subscriber
from merumaga.team.roles import ROLES, sync_roles


class Command(BaseCommand):
    help = "Set up what is missing: database tables, static files, an admin account, demo data."

    def add_arguments(self, parser):
        parser.add_argument("--no-demo", action="store_true", help="do not load demo data")

    def handle(self, *args, no_demo=False, **options):
        call_command("migrate", interactive=False, verbosity=0)
        if settings.CACHES["default"]["BACKEND"].endswith("DatabaseCache"):
            call_command("createcachetable", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.stdout.write("database and static files: ready")
        sync_roles()  # a role changed by an upgrade reaches this installation
        self.stdout.write("roles: " + ", ".join(ROLES))

        User = get_user_model()
        if not User.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "", password)
            # Shown once only: it is not stored anywhere in clear.
            self.stdout.write(
                self.style.WARNING(
                    f"admin account created: user 'admin', password '{password}' "
                    "(shown only now; change it with `merumaga changepassword admin`)"
                )
            )
        if not no_demo and not Subscriber.objects.exists():
            count = load_demo_readers()
            self.stdout.write(f"demo data loaded: {count} readers")
        if not no_demo and not Article.objects.exists():
            counts = load_demo_content()
            self.stdout.write(
                "demo content loaded: "
                + ", ".join(f"{number} {kind}" for kind, number in counts.items())
            )
            try:
                history = load_demo_history()
            except DemoNotSent as error:
                self.stdout.write(self.style.WARNING(f"demo mailings not sent at set-up: {error}"))
                history = {}
            if history:
                self.stdout.write(
                    "demo mailings sent to the mail catcher: "
                    + ", ".join(f"{number} {kind}" for kind, number in history.items())
                )
