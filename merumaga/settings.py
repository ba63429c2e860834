"""Django settings for merumaga. Every value comes from the environment; see README.md."""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from merumaga.env import (
    env_bool,
    env_float,
    env_int,
    env_networks,
    env_secret,
    env_str,
    env_url,
    secret_key,
)

BASE_DIR = Path(__file__).resolve().parent

DATA_DIR = Path(env_str("MERUMAGA_DATA_DIR", "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = secret_key(DATA_DIR)
DEBUG = env_bool("MERUMAGA_DEBUG", False)

PORT = env_int("PORT", 8000, minimum=1, maximum=65535)
SITE_URL = env_url("SITE_URL", f"http://localhost:{PORT}", ("http", "https")).rstrip("/")
_site = urlsplit(SITE_URL)
ALLOWED_HOSTS = [_site.hostname, "localhost", "127.0.0.1", "[::1]"] + [
    host.strip() for host in env_str("ALLOWED_HOSTS").split(",") if host.strip()
]
CSRF_TRUSTED_ORIGINS = [f"{_site.scheme}://{_site.netloc}"]
if _site.scheme == "https":
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    # The admin's theme, before the admin whose templates it replaces; "Basic": our site stays.
    "unfold.apps.BasicAppConfig",
    "merumaga.admin_site.MerumagaAdminConfig",  # django.contrib.admin, sections as editors work
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    "huey.contrib.djhuey",
    "merumaga",
    "merumaga.institute",
    "merumaga.subscribers",
    "merumaga.publishing",
    "merumaga.mailings",
    "merumaga.delivery",
    "merumaga.bounces",
    "merumaga.outcomes",
    "merumaga.team",
    "merumaga.hooks",
    "merumaga.api",
    "merumaga.operations",
    "ninja",  # the API's interactive documentation, served from our static files
]


# The admin's theme (django-unfold): the institute's name in the header, the sidebar grouped as
# editors work (merumaga.admin_site), a calm blue instead of the theme's purple. Light, dark or
# the system's choice is each editor's own switch.
UNFOLD = {
    "SITE_TITLE": "merumaga.admin_site.site_header",
    "SITE_HEADER": "merumaga.admin_site.site_header",
    "SITE_SUBHEADER": _("メールマガジン管理"),
    "SITE_SYMBOL": "mail",
    "SHOW_VIEW_ON_SITE": True,
    "SIDEBAR": {"show_search": True, "navigation": "merumaga.admin_site.sidebar"},
    "ACCOUNT": {
        "navigation": [{"title": _("2段階認証の設定"), "link": "/admin/2fa/setup/"}],
    },
    "STYLES": ["merumaga.admin_site.stylesheet"],
    "COLORS": {
        "primary": {
            "50": "oklch(97% .014 254.604)",
            "100": "oklch(93.2% .032 255.585)",
            "200": "oklch(88.2% .059 254.128)",
            "300": "oklch(80.9% .105 251.813)",
            "400": "oklch(70.7% .165 254.624)",
            "500": "oklch(62.3% .214 259.815)",
            "600": "oklch(54.6% .245 262.881)",
            "700": "oklch(48.8% .243 264.376)",
            "800": "oklch(42.4% .199 265.638)",
            "900": "oklch(37.9% .146 265.522)",
            "950": "oklch(28.2% .091 267.935)",
        },
    },
}

# Staff sign in through the admin only; its login page, opened directly, lands on its first page.
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "admin:index"

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "merumaga.logs.RequestIdMiddleware",
    "merumaga.operations.middleware.RequestMetrics",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "merumaga.middleware.RejectNulMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "merumaga.team.middleware.AuditActorMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "merumaga.team.middleware.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "merumaga.middleware.ContentSecurityPolicy",
    # Last: it reads the outcome of the login views (README: Accounts).
    "axes.middleware.AxesMiddleware",
]

# Content-Security-Policy (django-csp) on every page. The public site: no script of its own,
# styles from site.css, images also from elsewhere (an article's pictures), never framed.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "https:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-src": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}
# /admin/ (merumaga.middleware.ContentSecurityPolicy): the theme's Alpine.js needs 'unsafe-eval'
# and inline styles; our inline scripts carry the nonce; previews are framed from the admin.
ADMIN_CSP = {
    "script-src": [SELF, NONCE, "'unsafe-eval'"],
    "style-src": [SELF, "'unsafe-inline'"],
    "img-src": [SELF, "data:", "https:"],  # an article's pictures in its preview
    "frame-src": [SELF],
    "frame-ancestors": [SELF],
}

# Passkeys (django-otp-webauthn) as a second factor after the password, never instead of it.
# The relying party is the site: a passkey made for SITE_URL's host works only there.
OTP_WEBAUTHN_RP_ID = _site.hostname
OTP_WEBAUTHN_RP_NAME = "merumaga"
OTP_WEBAUTHN_ALLOWED_ORIGINS = [f"{_site.scheme}://{_site.netloc}"]
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False

# `merumaga doctor`: the host name where the bounce receiver listens (the MX of
# MERUMAGA_BOUNCE_DOMAIN must point there), and the addresses receivers see mail come from when
# they are not the relays' own.
MX_HOST = env_str("MERUMAGA_MX_HOST")
SENDING_IPS = [ip.strip() for ip in env_str("MERUMAGA_SENDING_IPS").split(",") if ip.strip()]

# /metrics (Prometheus): a bearer token, or else the addresses allowed to scrape (this machine).
METRICS_TOKEN = env_str("MERUMAGA_METRICS_TOKEN")
METRICS_ALLOW = env_networks("MERUMAGA_METRICS_ALLOW", "127.0.0.1/32,::1/128")
# How long the figures read from the database for /metrics are reused by the next scrapes.
METRICS_CACHE_SECONDS = env_float("MERUMAGA_METRICS_CACHE_SECONDS", 10.0)

# Digest drafts by a large language model: any OpenAI-compatible chat-completions endpoint
# (the base URL ends before /chat/completions, e.g. https://api.openai.com/v1). Unset: drafts
# are made offline. Each request waits LLM_TIMEOUT seconds and is tried LLM_RETRIES more times.
LLM_BASE_URL = env_url("MERUMAGA_LLM_BASE_URL", "", ("http", "https")).rstrip("/")
LLM_MODEL = env_str("MERUMAGA_LLM_MODEL")
LLM_API_KEY = env_secret("MERUMAGA_LLM_API_KEY")
LLM_TIMEOUT = env_float("MERUMAGA_LLM_TIMEOUT", 60.0, minimum=1.0)
LLM_RETRIES = env_int("MERUMAGA_LLM_RETRIES", 2, minimum=0, maximum=5)
if LLM_BASE_URL and not LLM_MODEL:
    raise ImproperlyConfigured("MERUMAGA_LLM_BASE_URL is set: name the model, MERUMAGA_LLM_MODEL.")

# The REST API (/api/v1/): requests per token per minute (over it: 429 with Retry-After), and
# the life of a new token when `merumaga api-token create` is given no --expires-days.
API_RATE_LIMIT = env_int("MERUMAGA_API_RATE_LIMIT", 600, minimum=1)
API_TOKEN_DAYS = env_int("MERUMAGA_API_TOKEN_DAYS", 90, minimum=1, maximum=730)

# The two-person rule: a mailing to more readers than this must be approved by a second account
# (one holding 「配信を承認する」) before it starts or is scheduled. 0: no approval needed.
MAILING_APPROVAL_ABOVE = env_int("MERUMAGA_APPROVAL_ABOVE", 0, minimum=0)

# Outgoing webhooks go only to public addresses (no loopback, private or link-local: a
# registered URL must not reach into our own network). True allows them, for a receiver on the
# same network.
WEBHOOKS_ALLOW_PRIVATE = env_bool("MERUMAGA_WEBHOOKS_ALLOW_PRIVATE", False)

# Two-factor authentication for staff (django-otp: an authenticator app and recovery codes).
# "none": whoever sets it up uses it; "sensitive": required of accounts that can send to the
# readers or see their data (and superusers); "all": required of every staff account.
TWO_FACTOR_REQUIRED = env_str("MERUMAGA_2FA_REQUIRED", "none")
if TWO_FACTOR_REQUIRED not in ("none", "sensitive", "all"):
    raise ImproperlyConfigured("MERUMAGA_2FA_REQUIRED must be none, sensitive or all")
OTP_TOTP_ISSUER = env_str("MERUMAGA_2FA_ISSUER", "merumaga")

# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one user name
# from one address, that pair is refused for LOGIN_LOCKOUT_MINUTES, with a page that says so.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("MERUMAGA_LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=100)
AXES_COOLOFF_TIME = timedelta(
    minutes=env_int("MERUMAGA_LOGIN_LOCKOUT_MINUTES", 15, minimum=1, maximum=24 * 60)
)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "merumaga.views.locked_out"
# The lock ends by itself; an operator lifts it sooner with `merumaga axes_reset_username NAME`.
# (Its admin pages are left out: they come in English only.)
AXES_ENABLE_ADMIN = False

ROOT_URLCONF = "merumaga.urls"
WSGI_APPLICATION = "merumaga.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "merumaga.institute.context_processors.institute",
                "merumaga.delivery.context_processors.held_domains",
            ],
        },
    },
]

# Database: SQLite in the data dir unless DATABASE_URL names another (postgres://…).
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    if urlsplit(DATABASE_URL).scheme not in ("postgres", "postgresql", "sqlite"):
        raise ImproperlyConfigured(
            f"DATABASE_URL={DATABASE_URL!r}: expected postgres://… or sqlite:///…"
        )
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "merumaga.sqlite3"),
            # Tests use a file too, not the default shared-cache in-memory database: there,
            # concurrent writers fail at once with "database table is locked" (no busy wait),
            # so the tests of concurrent answers could not run as production does. One file per
            # test process, so that two test runs at once do not delete each other's database.
            "TEST": {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")},
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers go on while one writer writes; IMMEDIATE takes the write lock at
        # BEGIN, so concurrent writers (web, tasks, delivery workers) wait for it (busy timeout)
        # instead of failing mid-transaction.
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Huey: on SQLite in the data dir by default, on Redis when REDIS_URL is set.
REDIS_URL = env_url("REDIS_URL", "", ("redis", "rediss", "unix"))
HUEY_WORKERS = env_int("HUEY_WORKERS", 2, minimum=1, maximum=64)
# An idle consumer polls less and less often, up to max_delay (Huey's default: 10 s): a sign-up
# in a quiet moment waited up to 7 s for its confirmation (bench/confirmation_latency.py). Half
# a second keeps it under one; the cost is two cheap queries a second per worker.
HUEY_CONSUMER = {"workers": HUEY_WORKERS, "worker_type": "thread", "max_delay": 0.5}
if REDIS_URL:
    HUEY = {
        "huey_class": "huey.PriorityRedisHuey",
        "name": "merumaga",
        "url": REDIS_URL,
        "immediate": False,
        "consumer": HUEY_CONSUMER,
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "merumaga",
        }
    }
else:
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": "merumaga",
        "filename": str(DATA_DIR / "huey.sqlite3"),
        # Huey's Django integration defaults `immediate` to DEBUG: tasks would run inline.
        "immediate": False,
        "consumer": HUEY_CONSUMER,
    }
    # Shared by every process (web workers, consumer), unlike the per-process local-memory cache;
    # the table is made by `merumaga setup` (createcachetable) and by the test runner.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "merumaga_cache",
        }
    }

# Outgoing mail: the relays named by SMTP_RELAYS (or the one of SMTP_URL), else the built-in mail
# catcher on loopback; checked below with the delivery engine's settings. Every mail that is not a
# mailing goes through Django's mail API to this backend, which sends it through the delivery
# engine's SMTP pool over the relays of the transactional lane (merumaga/outgoing.py).
MAILCATCHER_PORT = env_int("MAILCATCHER_PORT", 1025, minimum=1, maximum=65535)
SMTP_URL = env_url("SMTP_URL", "", ("smtp", "smtps", "smtp+starttls"))
EMAIL_BACKEND = "merumaga.delivery.transactional.RelayBackend"
MAILCATCHER_DIR = DATA_DIR / "mail"
# Clicks on tracked links are written in batches this often (seconds) by each web process; a
# process killed without warning loses at most this much of its clicks. 0: each click at once.
CLICK_FLUSH_SECONDS = env_float("MERUMAGA_CLICK_FLUSH_SECONDS", 1.0)

# The sender's identity (特定電子メール法). Site settings in the admin override these defaults.
ORGANISATION_NAME = env_str("MERUMAGA_ORGANISATION_NAME", "メルマガ研究所")
POSTAL_ADDRESS = env_str("MERUMAGA_POSTAL_ADDRESS", "〒100-0001 東京都千代田区千代田1-1 (デモ住所)")
CONTACT_EMAIL = env_str("MERUMAGA_CONTACT_EMAIL", "contact@example.jp")
CONTACT_URL = env_str("MERUMAGA_CONTACT_URL", f"{SITE_URL}/")
CONTACT_PHONE = env_str("MERUMAGA_CONTACT_PHONE", "")
DEFAULT_FROM_EMAIL = env_str("MERUMAGA_FROM_EMAIL", "news@example.jp")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Readers whose address is at one of these domains get ISO-2022-JP by default (carrier mail).
ISO2022JP_DOMAINS = [
    domain.strip().lower()
    for domain in env_str(
        "MERUMAGA_ISO2022JP_DOMAINS", "docomo.ne.jp,ezweb.ne.jp,au.com,softbank.ne.jp,i.softbank.jp"
    ).split(",")
    if domain.strip()
]

# Sign-up abuse limits: sign-ups accepted per hour from one IP, for one address, for one domain.
SIGNUP_LIMIT_PER_IP = env_int("MERUMAGA_SIGNUP_LIMIT_PER_IP", 20, minimum=1)
SIGNUP_LIMIT_PER_ADDRESS = env_int("MERUMAGA_SIGNUP_LIMIT_PER_ADDRESS", 5, minimum=1)
SIGNUP_LIMIT_PER_DOMAIN = env_int("MERUMAGA_SIGNUP_LIMIT_PER_DOMAIN", 200, minimum=1)
RSVP_LIMIT_PER_IP = env_int("MERUMAGA_RSVP_LIMIT_PER_IP", 30, minimum=1)
CONFIRMATION_MAX_AGE_DAYS = env_int("MERUMAGA_CONFIRMATION_MAX_AGE_DAYS", 7, minimum=1)

LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", "日本語"), ("en", "English")]
# The second holds Japanese for the admin theme's own words (it ships no Japanese).
LOCALE_PATHS = [BASE_DIR / "locale", BASE_DIR / "theme_locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns at start-up when it is missing
MEDIA_URL = "/media/"
MEDIA_ROOT = DATA_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve app static files even before `collectstatic` has run (tests, first start).
WHITENOISE_USE_FINDERS = True

DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

CSRF_FAILURE_VIEW = "merumaga.views.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "SAMEORIGIN"

# Logs: a line per event on stderr; MERUMAGA_LOG_FORMAT=json for one JSON object per line (with
# the request id, and no reader's address: merumaga.logs).
LOG_FORMAT = env_str("MERUMAGA_LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"MERUMAGA_LOG_FORMAT={LOG_FORMAT!r}: expected plain or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "merumaga.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "merumaga.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("MERUMAGA_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # A handler of its own, so that the consumer does not add a second one (double lines).
        "huey": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # flufl.bounce logs a line per detector per message, and a traceback for odd input that
        # bounces.classify already records (the message is kept as "quarantined", rule naming
        # the exception): both would flood the log.
        "flufl.bounce": {"level": "CRITICAL"},
    },
}

# Behind a reverse proxy (nginx, a load balancer), take the client IP from X-Forwarded-For.
BEHIND_PROXY = env_bool("MERUMAGA_BEHIND_PROXY", False)

# `merumaga run`: where the web server listens, and how many processes it runs.
BIND_ADDRESS = env_str("MERUMAGA_BIND", "127.0.0.1")
WEB_WORKERS = env_int("WEB_WORKERS", 2, minimum=1, maximum=64)

# Uploads: the largest compact-report PDF and cover image accepted, in megabytes.
REPORT_MAX_MB = env_int("MERUMAGA_REPORT_MAX_MB", 20, minimum=1, maximum=500)
COVER_MAX_MB = env_int("MERUMAGA_COVER_MAX_MB", 5, minimum=1, maximum=50)

# Mailings. Bounces come back to bounce+TOKEN@BOUNCE_DOMAIN (VERP); both default to the From domain.
BOUNCE_DOMAIN = env_str("MERUMAGA_BOUNCE_DOMAIN", DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1])
LIST_ID_DOMAIN = env_str("MERUMAGA_LIST_ID_DOMAIN", DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1])
ATTACH_PDF_MAX_MB = env_int("MERUMAGA_ATTACH_PDF_MAX_MB", 3, minimum=0, maximum=20)
# Gmail clips a mail whose HTML passes about 102 KB: the content check warns before that.
MAIL_HTML_MAX_KB = env_int("MERUMAGA_MAIL_HTML_MAX_KB", 100, minimum=10)

# Bounces and complaints (merumaga.bounces). A reader is suppressed after BOUNCE_HARD_LIMIT hard
# bounces, or when soft bounces (+0.5 each, at most once a day) reach BOUNCE_SCORE_LIMIT; a score
# left without a new bounce for BOUNCE_STALE_DAYS starts again from zero (as in Mailman).
BOUNCE_HARD_LIMIT = env_int("MERUMAGA_BOUNCE_HARD_LIMIT", 1, minimum=1)
BOUNCE_SCORE_LIMIT = env_float("MERUMAGA_BOUNCE_SCORE_LIMIT", 5.0, minimum=0.5)
BOUNCE_STALE_DAYS = env_int("MERUMAGA_BOUNCE_STALE_DAYS", 7, minimum=1)
# A mailbox reported suspended (disabled, inactive) is scored at first, and counts as gone once
# it has stayed so this long.
BOUNCE_SUSPENDED_GRACE_DAYS = env_int("MERUMAGA_BOUNCE_SUSPENDED_GRACE_DAYS", 14, minimum=0)
# Inbound messages are kept (for the admin and for reprocessing) up to this size each.
BOUNCE_KEEP_KB = env_int("MERUMAGA_BOUNCE_KEEP_KB", 1024, minimum=16)
BOUNCE_RECEIVER_BIND = env_str("MERUMAGA_BOUNCE_RECEIVER_BIND", "127.0.0.1:2526")
# Sessions the receiver serves at once; one more is answered 421 (the MTA retries later).
BOUNCE_RECEIVER_MAX_CONNECTIONS = env_int(
    "MERUMAGA_BOUNCE_RECEIVER_MAX_CONNECTIONS", 16, minimum=1, maximum=1000
)
# Processes that read and act on what the bounce receiver kept (classifying is CPU work).
BOUNCE_RECEIVER_READERS = env_int("MERUMAGA_BOUNCE_RECEIVER_READERS", 1, minimum=1, maximum=64)
# A mailbox the bounces land in, polled every BOUNCE_POLL_MINUTES: pop3s://user:pass@host[:port]
# or imaps://user:pass@host[:port]/FOLDER (pop3:// and imap:// only for tests on loopback).
BOUNCE_MAILBOX_URL = env_url("MERUMAGA_BOUNCE_MAILBOX_URL", "", ("pop3s", "imaps", "pop3", "imap"))
BOUNCE_POLL_MINUTES = env_int("MERUMAGA_BOUNCE_POLL_MINUTES", 5, minimum=1)
# The generic JSON webhook's shared secret (HMAC-SHA256 of the body); unset, the webhook is off.
BOUNCE_WEBHOOK_SECRET = env_str("MERUMAGA_BOUNCE_WEBHOOK_SECRET")
# Amazon SES notifications via SNS: the topic ARNs accepted (comma-separated); unset, it is off.
SES_TOPIC_ARNS = [
    arn.strip() for arn in env_str("MERUMAGA_SES_TOPIC_ARNS").split(",") if arn.strip()
]

# The delivery engine's relays (SMTP_RELAYS, else SMTP_URL, else the mail catcher) and the rate at
# which each recipient domain may receive; both checked here, so that a typo stops start-up.
from merumaga.relays import (  # noqa: E402
    DEFAULT_DOMAIN_LIMITS,
    build_relays,
    parse_domain_limits,
)

SMTP_RELAYS = env_str("SMTP_RELAYS")
build_relays(SMTP_RELAYS, SMTP_URL, MAILCATCHER_PORT)
DOMAIN_LIMITS = parse_domain_limits(env_str("MERUMAGA_DOMAIN_LIMITS", DEFAULT_DOMAIN_LIMITS))
# A receiving domain that throttles us (421, "too many") is sent at half the rate, then climbs
# back to its limit over this many seconds of quiet sending (delivery/pacing.py).
PACE_RECOVERY_SECONDS = env_float("MERUMAGA_PACE_RECOVERY_SECONDS", 60.0, minimum=1.0)
# A receiving domain is held (no mail sent to it) when, within DOMAIN_HOLD_WINDOW, it refused
# DOMAIN_HOLD_COUNT messages for a reason that is ours (a block, SPF, spam...), or at least
# DOMAIN_HOLD_MIN_REFUSALS that make DOMAIN_HOLD_PERCENT of what was sent to it. A probe goes
# after DOMAIN_HOLD_BACKOFF_MINUTES, doubling up to DOMAIN_HOLD_MAX_BACKOFF_MINUTES. The
# operator is mailed at OPERATOR_EMAIL (empty: not mailed; the log and the admin still say it).
DOMAIN_HOLD_COUNT = env_int("MERUMAGA_DOMAIN_HOLD_COUNT", 20, minimum=1)
DOMAIN_HOLD_WINDOW = timedelta(
    minutes=env_int("MERUMAGA_DOMAIN_HOLD_WINDOW_MINUTES", 10, minimum=1)
)
DOMAIN_HOLD_PERCENT = env_float("MERUMAGA_DOMAIN_HOLD_PERCENT", 5.0, minimum=0.1)
DOMAIN_HOLD_MIN_REFUSALS = env_int("MERUMAGA_DOMAIN_HOLD_MIN_REFUSALS", 5, minimum=1)
DOMAIN_HOLD_BACKOFF = timedelta(
    minutes=env_int("MERUMAGA_DOMAIN_HOLD_BACKOFF_MINUTES", 30, minimum=1)
)
DOMAIN_HOLD_MAX_BACKOFF = timedelta(
    minutes=env_int("MERUMAGA_DOMAIN_HOLD_MAX_BACKOFF_MINUTES", 24 * 60, minimum=1)
)
OPERATOR_EMAIL = env_str("MERUMAGA_OPERATOR_EMAIL", CONTACT_EMAIL)
# The name the pool gives in EHLO; empty: this machine's host name.
SMTP_HELO_NAME = env_str("MERUMAGA_SMTP_HELO_NAME")

# Optional DKIM signing by the delivery workers (all three, or none: sign at the relay).
DKIM_DOMAIN = env_str("MERUMAGA_DKIM_DOMAIN")
DKIM_SELECTOR = env_str("MERUMAGA_DKIM_SELECTOR")
DKIM_KEY_FILE = env_str("MERUMAGA_DKIM_KEY_FILE")
