"""Where outgoing mail goes: the SMTP relays, and how fast each recipient domain may receive.

Both are read from the environment when the settings are imported, so that a typo stops start-up
with a message naming the variable, instead of deferring every message of a mailing later.

    SMTP_RELAYS="smtp+starttls://user:pass@relay1.example.jp:587?weight=3&connections=8
                 smtps://relay2.example.jp?per_second=50&per_minute=2000
                 smtps://relay3.example.jp?lane=transactional"
    MERUMAGA_DOMAIN_LIMITS="docomo.ne.jp=20/s,gmail.com=300/s,example.org=600/m"
"""

import math
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Security = Literal["none", "starttls", "tls"]
# Which mail a relay carries: mailings (the delivery worker), mail sent one at a time as something
# happens (confirmations, RSVP answers, test sends, operator alerts), or both. A relay of its own
# for the one-at-a-time lane keeps a confirmation from queueing behind a running mailing.
Lane = Literal["bulk", "transactional", "both"]
LANES: tuple[Lane, ...] = ("bulk", "transactional", "both")

# scheme → (security, default port), as for SMTP_URL in settings.py.
SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("none", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}
DEFAULT_CONNECTIONS = 8
MAX_CONNECTIONS = 200

# Japanese carriers throttle (and then block) senders that push too fast; they publish no figure,
# so stay modest. au.com and ezweb.ne.jp are both KDDI, i.softbank.jp and softbank.ne.jp both
# SoftBank: each domain has a bucket of its own, so the carrier sees up to twice this rate.
DEFAULT_DOMAIN_LIMITS = (
    "docomo.ne.jp=20/s,ezweb.ne.jp=20/s,au.com=20/s,softbank.ne.jp=20/s,i.softbank.jp=20/s"
)
_RATE_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Relay:
    name: str  # for logs and counters: host:port, or the URL's ?name=
    host: str
    port: int
    security: Security
    username: str  # "" when the relay takes no AUTH
    password: str
    weight: int  # share of the traffic, relative to the other relays
    connections: int  # persistent connections kept open to it
    per_second: float | None  # the relay's own sending limits, if it has any
    per_minute: int | None
    lane: Lane = "both"

    def __repr__(self) -> str:
        # Never print the password (logs, tracebacks, test failures).
        return f"Relay({self.name!r}, {self.security}, weight={self.weight})"


def configured_relays(lane: Literal["bulk", "transactional"]) -> list[Relay]:
    """The relays from settings (SMTP_RELAYS, else SMTP_URL, else the built-in mail catcher) that
    carry the mail of `lane`."""
    return [relay for relay in all_relays() if relay.lane in (lane, "both")]


def all_relays() -> list[Relay]:
    return build_relays(settings.SMTP_RELAYS, settings.SMTP_URL, settings.MAILCATCHER_PORT)


def uses_catcher() -> bool:
    """Whether mail goes to the built-in mail catcher (no relay configured)."""
    return not (settings.SMTP_RELAYS.strip() or settings.SMTP_URL)


def build_relays(smtp_relays: str, smtp_url: str, catcher_port: int) -> list[Relay]:
    """The relays named by these settings' values; ImproperlyConfigured if one is wrong."""
    if smtp_relays.strip():
        relays = [
            parse_relay(url, "SMTP_RELAYS", index)
            for index, url in enumerate(re.split(r"[\s,]+", smtp_relays.strip()), start=1)
        ]
        _check_unique_names(relays)
        for lane in ("bulk", "transactional"):
            if not any(relay.lane in (lane, "both") for relay in relays):
                raise ImproperlyConfigured(
                    f"SMTP_RELAYS: no relay carries the {lane} lane; "
                    f"give one ?lane={lane} or leave lane unset (both)"
                )
        return relays
    if smtp_url:
        return [parse_relay(smtp_url, "SMTP_URL")]
    return [catcher_relay(catcher_port)]


def catcher_relay(port: int) -> Relay:
    return Relay(
        name="catcher",
        host="127.0.0.1",
        port=port,
        security="none",
        username="",
        password="",
        weight=1,
        connections=DEFAULT_CONNECTIONS,
        per_second=None,
        per_minute=None,
    )


def parse_relay(url: str, variable: str, index: int | None = None) -> Relay:
    """One relay URL: scheme://[user:password@]host[:port][?weight=&connections=&per_second=
    &per_minute=&name=&lane=]. Errors name the variable and the part at fault, never the
    password."""

    def fail(problem: str) -> ImproperlyConfigured:
        where = f"{variable} (relay {index})" if index else variable
        return ImproperlyConfigured(f"{where}={_redact(url)!r}: {problem}")

    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise fail(f"the scheme must be one of {', '.join(f'{s}://' for s in SCHEMES)}")
    if not parts.hostname:
        raise fail("no host name")
    if parts.path not in ("", "/") or parts.fragment:
        raise fail("a relay URL has no path or #fragment")
    try:
        port = parts.port
    except ValueError:
        raise fail("the port must be a number from 1 to 65535") from None
    security, default_port = SCHEMES[parts.scheme]
    options = _relay_options(parts.query, fail)
    return Relay(
        name=options.get("name") or f"{parts.hostname}:{port or default_port}",
        host=parts.hostname,
        port=port or default_port,
        security=security,
        # Percent-decoded, so that a password may hold "@", ":" or "," (written %40, %3A, %2C).
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        weight=_number(options, "weight", int, fail, default=1),
        connections=_number(options, "connections", int, fail, default=DEFAULT_CONNECTIONS),
        per_second=_number(options, "per_second", float, fail),
        per_minute=_number(options, "per_minute", int, fail),
        lane=_lane(options, fail),
    )


_OPTIONS = ("weight", "connections", "per_second", "per_minute", "name", "lane")


def _lane(options: dict[str, str], fail) -> Lane:
    lane = options.get("lane", "both")
    for known in LANES:
        if lane == known:
            return known
    raise fail(f"lane={lane!r} must be one of {', '.join(LANES)}")


def _relay_options(query: str, fail) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise fail("the query string must be name=value pairs joined by &") from None
    options: dict[str, str] = {}
    for key, value in pairs:
        if key not in _OPTIONS:
            raise fail(f"unknown option {key!r} (known: {', '.join(_OPTIONS)})")
        if key in options:
            raise fail(f"option {key!r} given twice")
        options[key] = value
    return options


def _number(options: dict[str, str], key: str, kind: type, fail, default=None):
    """The option as int or float, above 0; `default` when it is not given."""
    if key not in options:
        return default
    raw = options[key]
    try:
        value = kind(raw)
    except ValueError:
        kind_name = "a whole number" if kind is int else "a number"
        raise fail(f"{key}={raw!r} must be {kind_name}") from None
    # float() also takes "nan" and "inf": neither is a rate.
    if not math.isfinite(value) or value <= 0:
        raise fail(f"{key}={raw!r} must be {'at least 1' if kind is int else 'above 0'}")
    if key == "connections" and value > MAX_CONNECTIONS:
        raise fail(f"connections={raw!r} must be at most {MAX_CONNECTIONS}")
    return value


def _check_unique_names(relays: list[Relay]) -> None:
    # Counters and logs are keyed by name: two relays sharing one would be counted as one.
    seen = set()
    for relay in relays:
        if relay.name in seen:
            raise ImproperlyConfigured(
                f"SMTP_RELAYS: two relays are named {relay.name!r}; "
                "give one a name of its own with ?name=…"
            )
        seen.add(relay.name)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{hostport}").geturl()


# Per-recipient-domain limits.


def parse_domain_limits(text: str, variable: str = "MERUMAGA_DOMAIN_LIMITS") -> dict[str, float]:
    """ "docomo.ne.jp=20/s,example.org=600/m" → {domain: messages per second}.

    Units: /s, /m (or /min), /h. An empty value means no domain is limited.
    """
    limits: dict[str, float] = {}
    for item in re.split(r"[\s,]+", text.strip()):
        if not item:
            continue
        match = re.fullmatch(r"([^=\s]+)=(\d+(?:\.\d+)?)/(s|m|min|h)", item)
        if not match:
            raise ImproperlyConfigured(
                f"{variable}: {item!r} should look like docomo.ne.jp=20/s (units: /s, /m, /h)"
            )
        domain, count, unit = match.groups()
        domain = domain.lower().lstrip("@")
        if float(count) <= 0:
            raise ImproperlyConfigured(f"{variable}: {item!r}: the rate must be above 0")
        if domain in limits:
            raise ImproperlyConfigured(f"{variable}: {domain!r} is listed twice")
        limits[domain] = float(count) / _RATE_UNITS[unit]
    return limits


def domain_limit(domain: str) -> float | None:
    """Messages per second allowed to this recipient domain (exact match), None if unlimited."""
    return settings.DOMAIN_LIMITS.get(domain.strip().lower().rstrip("."))
