"""The `merumaga` command: every Django management command, plus the project's own."""

import os
import sys

# Commands a person runs to change something: on the audit log as "cli:<their login>". (Set-up,
# the servers and the workers act for nobody in particular and are not logged.)
ACTING_COMMANDS = {
    "mailing",
    "compose-weekly",
    "import-subscribers",
    "export-subscribers",
    "bounces",
    "shell",
    "changepassword",
    "createsuperuser",
    "axes_reset_username",
    "2fa-reset",
    "api-token",
}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "merumaga.settings")
    from django.core.management import execute_from_command_line

    from merumaga.audit import acting_as

    arguments = ["merumaga", *sys.argv[1:]]
    if len(arguments) > 1 and arguments[1] in ACTING_COMMANDS:
        with acting_as(None, "cli"):
            execute_from_command_line(arguments)
    else:
        execute_from_command_line(arguments)


if __name__ == "__main__":
    main()
