"""Reading settings from environment variables.

Every setting has a safe default; a value that cannot be understood stops start-up with a message
naming the variable, instead of failing later in a request.
"""

import ipaddress
import os
import re
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected true/false (1/0, yes/no, on/off).")


def env_int(name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value}: must be at least {minimum}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value}: must be at most {maximum}.")
    return value


def env_float(name: str, default: float, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a number such as 2.5.") from None
    if not value >= minimum:  # also rejects NaN
        raise ImproperlyConfigured(f"{name}={value}: must be at least {minimum}.")
    return value


def env_networks(name: str, default: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Comma-separated addresses or networks (10.0.0.0/8, ::1)."""
    networks = []
    for part in (p.strip() for p in env_str(name, default).split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {part!r} is not an IP address or network (e.g. 10.0.0.0/8)."
            ) from None
    return networks


def env_url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        # The message reaches logs: never the password a relay or mailbox URL carries.
        shown = re.sub(r"(//[^/@]*?:)[^/]*@", r"\1***@", value)
        raise ImproperlyConfigured(
            f"{name}={shown!r}: expected a URL starting with one of {', '.join(schemes)}."
        )
    return value


def env_secret(name: str) -> str:
    """The variable NAME, else the contents of the file named by NAME_FILE (a secret kept out
    of the environment, e.g. by systemd's LoadCredential), else ""."""
    value = env_str(name)
    if value:
        return value
    path = env_str(f"{name}_FILE")
    if not path:
        return ""
    try:
        value = Path(path).read_text().strip()
    except OSError as error:
        raise ImproperlyConfigured(f"{name}_FILE={path!r}: {error}") from None
    if not value:
        raise ImproperlyConfigured(f"{name}_FILE={path!r} is empty.")
    return value


def secret_key(data_dir: Path) -> str:
    """SECRET_KEY, else the file named by SECRET_KEY_FILE, else one generated into the data dir.

    The generated key is kept so that signed links in mail already sent stay valid across restarts.
    """
    key = env_secret("SECRET_KEY")
    if key:
        return key
    generated = data_dir / "secret_key"
    if not generated.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        # Written whole under a private name, then linked into place: a link fails if the file
        # exists, so of several processes starting at once (web, tasks, workers) one wins and
        # the others read its key — never a file that is still empty.
        fd, draft = tempfile.mkstemp(dir=data_dir, prefix=".secret_key-")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(50))
            os.link(draft, generated)
        except FileExistsError:
            pass  # another process linked its key first: use theirs
        finally:
            os.unlink(draft)
    return generated.read_text().strip()
