from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django_otp import devices_for_user


class Command(BaseCommand):
    help = (
        "Remove a staff account's authenticator and recovery codes (a lost phone): they set it "
        "up again at their next sign-in when two-factor authentication is required."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no account named {username!r}")
        removed = 0
        for device in devices_for_user(user, confirmed=None):
            device.delete()
            removed += 1
        self.stdout.write(f"{username}: {removed} two-factor devices removed")
