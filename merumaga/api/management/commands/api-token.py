from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from merumaga.api import services
from merumaga.api.models import ApiToken


class Command(BaseCommand):
    help = "Create, list or revoke API tokens (README: REST API)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="print a new token (shown only this once)")
        create.add_argument("--user", required=True, help="the account the token acts for")
        create.add_argument(
            "--scopes", required=True, help=f"comma-separated: {', '.join(services.SCOPES)}"
        )
        create.add_argument("--expires-days", type=int, default=None)
        create.add_argument("--name", default="", help="what the token is for")
        listing = actions.add_parser("list", help="tokens, newest first (never the tokens)")
        listing.add_argument("--user", default=None)
        revoke = actions.add_parser("revoke", help="stop a token at once")
        revoke.add_argument("prefix", help="the token's first characters, as listed")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"_{action}")(**options)

    def _create(self, *, user: str, scopes: str, expires_days, name: str, **options) -> None:
        account = get_user_model().objects.filter(username=user).first()
        if account is None:
            raise CommandError(f"no account named {user!r}")
        wanted = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        try:
            token, raw = services.create_token(
                account, wanted, expires_days=expires_days, name=name
            )
        except services.TokenError as error:
            raise CommandError(str(error)) from None
        expires = timezone.localtime(token.expires_at).strftime("%Y-%m-%d %H:%M")
        self.stderr.write(
            f"token for {user} ({', '.join(token.scopes)}), valid until {expires}; "
            "it is shown only now:"
        )
        self.stdout.write(raw)

    def _list(self, *, user: str | None, **options) -> None:
        tokens = ApiToken.objects.select_related("user")
        if user:
            tokens = tokens.filter(user__username=user)
        now = timezone.now()
        for token in tokens:
            state = (
                "revoked" if token.revoked_at else "expired" if now >= token.expires_at else "ok"
            )
            expires = timezone.localtime(token.expires_at).strftime("%Y-%m-%d")
            self.stdout.write(
                f"{token.prefix}  {token.user.get_username():<16} {state:<8} until {expires}  "
                f"{','.join(token.scopes)}  {token.name}"
            )

    def _revoke(self, *, prefix: str, **options) -> None:
        found = list(ApiToken.objects.filter(prefix__startswith=prefix[:12])[:2])
        if len(found) != 1:
            raise CommandError(f"{len(found) or 'no'} tokens begin with {prefix!r}")
        services.revoke(found[0])
        self.stdout.write(f"{found[0].prefix}: revoked")
