"""PayDesk settings: one module, driven by environment variables with local defaults."""

import base64
import hashlib
import os
import re
import zoneinfo
from datetime import timedelta
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_is_set, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

# Off unless set: `make run`, `make test` (pytest's `env`) and CI turn it on. With DEBUG off
# PayDesk refuses to start on any development default (docs/configuration.md).
DEBUG = env_bool("DEBUG", False)

# Development defaults, used only while DEBUG is on and refused with DEBUG off even when set explicitly.
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105
DEV_SANDBOX_GATEWAY_SECRET = "sandbox-dev-secret"  # noqa: S105


def dev_field_encryption_key(secret_key: str) -> str:
    """The Fernet key derived from SECRET_KEY that stands in for FIELD_ENCRYPTION_KEY while DEBUG."""
    return base64.urlsafe_b64encode(
        hashlib.sha256(b"paydesk-field-encryption:" + secret_key.encode()).digest()
    ).decode()


def production_value(name: str, value: str, dev_value: str) -> str:
    """Return `value`, or the development default while DEBUG; refuse a missing or dev value otherwise."""
    if DEBUG:
        return value or dev_value
    if not value:
        raise ImproperlyConfigured(
            f"{name} must be set when DEBUG is off (set DEBUG=1 for local development)."
        )
    if value == dev_value:
        raise ImproperlyConfigured(
            f"{name} is the public development default; set a secret value of your own."
        )
    return value


SECRET_KEY = production_value("SECRET_KEY", env_str("SECRET_KEY"), DEV_SECRET_KEY)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Where gateways send callbacks; a system check refuses a malformed one (payments/checks.py).
PAYDESK_PUBLIC_URL = env_str("PAYDESK_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
SANDBOX_GATEWAY_SECRET = production_value(
    "SANDBOX_GATEWAY_SECRET", env_str("SANDBOX_GATEWAY_SECRET"), DEV_SANDBOX_GATEWAY_SECRET
)
# Seconds after which a sandbox callback signature counts as a replay.
SANDBOX_CALLBACK_TOLERANCE = 300
# Seconds the sandbox waits before delivering an outcome (0 = at once).
SANDBOX_CALLBACK_DELAY = env_float("SANDBOX_CALLBACK_DELAY", 0.5, minimum=0)
# Seconds between an outcome and its follow-up (3155's success, 0077's reversal).
SANDBOX_FOLLOWUP_DELAY = env_float("SANDBOX_FOLLOWUP_DELAY", 2, minimum=0)
# The sandbox as a process of its own (manage.py sandbox_gateway), reached over HTTP; empty: in process.
PAYDESK_SANDBOX_URL = env_str("PAYDESK_SANDBOX_URL", "").strip()

# Webhooks to loopback/private addresses: on by default only while DEBUG; with DEBUG off it
# must be chosen explicitly (0 in production, 1 when the receivers are on a private network).
if not DEBUG and not env_is_set("PAYDESK_WEBHOOK_ALLOW_PRIVATE"):
    raise ImproperlyConfigured(
        "PAYDESK_WEBHOOK_ALLOW_PRIVATE must be set to 0 or 1 when DEBUG is off: may webhook endpoints "
        "point at loopback and private addresses?"
    )
PAYDESK_WEBHOOK_ALLOW_PRIVATE = env_bool("PAYDESK_WEBHOOK_ALLOW_PRIVATE", DEBUG)
# Seconds one webhook request may take in all: connect, send, status line, headers, body start.
PAYDESK_WEBHOOK_TIMEOUT = float(os.environ.get("PAYDESK_WEBHOOK_TIMEOUT", "15"))
# Workers that may send one merchant's webhooks at once, cluster-wide (README "Notifications and
# webhooks"): keep it below Q_WORKERS, so a merchant whose endpoint hangs leaves workers for the rest.
PAYDESK_WEBHOOK_SLOTS_PER_MERCHANT = env_int("PAYDESK_WEBHOOK_SLOTS_PER_MERCHANT", 1)

# Fernet key(s) for secrets at rest, comma-separated: the first encrypts, all decrypt.
FIELD_ENCRYPTION_KEY = production_value(
    "FIELD_ENCRYPTION_KEY", env_str("FIELD_ENCRYPTION_KEY"), dev_field_encryption_key(SECRET_KEY)
)
for _key in FIELD_ENCRYPTION_KEY.split(","):
    try:
        Fernet(_key.strip())
    except ValueError:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes), comma-separated; "
            "generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'"
        ) from None
    if not DEBUG and _key.strip() == dev_field_encryption_key(DEV_SECRET_KEY):
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY is the public development default; generate your own."
        )

# Key of the keyed hash (HMAC-SHA256) that lets beneficiary accounts be searched exactly while
# they are encrypted. Unlike FIELD_ENCRYPTION_KEY it is not rotated by prepending a key: when it
# changes, `manage.py rotate_field_key` recomputes every stored hash. Unset: derived from SECRET_KEY.
FIELD_HASH_KEY = (
    env_str("FIELD_HASH_KEY") or hashlib.sha256(b"paydesk-field-hash:" + SECRET_KEY.encode()).hexdigest()
)

# Fraud controls (docs/privacy.md#fraud-controls): a reference rate older than this many days is
# stale and the caps that need it hold the payment; beneficiary names scoring at least this
# (0-100, rapidfuzz) against a sanctioned name are held.
PAYDESK_RATE_MAX_AGE_DAYS = env_int("PAYDESK_RATE_MAX_AGE_DAYS", 4, minimum=1)
PAYDESK_SANCTIONS_THRESHOLD = env_int("PAYDESK_SANCTIONS_THRESHOLD", 90, minimum=50)
# Where a django-q2 schedule fetches the ECB's daily rates (empty: no fetching; import_rates FILE).
PAYDESK_RATES_URL = env_str("PAYDESK_RATES_URL", "")

# Which gateway serves each payment method; the sandbox serves all by default.
# PAYDESK_GATEWAY_<METHOD>; a system check refuses a route to an unknown or unconfigured gateway.
PAYDESK_GATEWAY_ROUTES = {
    method: env_str(f"PAYDESK_GATEWAY_{method.upper()}", "sandbox").strip()
    for method in ("card", "alipay", "wechat_pay", "paypal", "bank_transfer")
}
# Which rail pays out each method's batch rows (docs/payouts.md); empty = none: such rows are refused.
# bank_transfer -> bank_file, alipay -> alipay_transfer, wechat_pay -> wechat_transfer, paypal -> paypal.
PAYDESK_PAYOUT_ROUTES = {
    method: os.environ.get(f"PAYDESK_PAYOUT_{method.upper()}", "sandbox")
    for method in ("card", "alipay", "wechat_pay", "paypal", "bank_transfer")
}
PAYDESK_GATEWAYS = {
    "sandbox": "payments.gateways.sandbox.SandboxGateway",
    "alipay": "payments.gateways.alipay.AlipayGateway",
    "wechat_pay": "payments.gateways.wechat_pay.WeChatPayGateway",
    "paypal": "payments.gateways.paypal.PayPalGateway",
    "bank_file": "payments.gateways.bank_file.BankFileGateway",
    "alipay_transfer": "payments.gateways.alipay_transfer.AlipayTransferGateway",
    "wechat_transfer": "payments.gateways.wechat_transfer.WeChatTransferGateway",
}
# Provider endpoints per gateway account environment; PAYDESK_<GATEWAY>_<ENV>_URL overrides one.
# WeChat Pay API v3 has no separate sandbox host: test merchants use the live host.
_GATEWAY_URL_DEFAULTS = {
    "alipay": {
        "live": "https://openapi.alipay.com/gateway.do",
        "sandbox": "https://openapi-sandbox.dl.alipaydev.com/gateway.do",
    },
    "wechat_pay": {"live": "https://api.mch.weixin.qq.com", "sandbox": "https://api.mch.weixin.qq.com"},
    "paypal": {"live": "https://api-m.paypal.com", "sandbox": "https://api-m.sandbox.paypal.com"},
}
PAYDESK_GATEWAY_URLS = {
    gateway: {env: env_str(f"PAYDESK_{gateway.upper()}_{env.upper()}_URL", url) for env, url in urls.items()}
    for gateway, urls in _GATEWAY_URL_DEFAULTS.items()
}
# Seconds to connect to / wait for a provider's answer.
PAYDESK_GATEWAY_TIMEOUT = (5.0, env_float("PAYDESK_GATEWAY_TIMEOUT", 20, minimum=0.1))
# Reconciliation per gateway: a payment processing or awaiting the customer for `query_after`
# seconds is queried at the gateway (again every `query_after`); a QR code / approval link
# lives `action_expires` seconds, after which (plus PAYDESK_RECONCILE_GRACE) it is cancelled.
PAYDESK_RECONCILE = {
    "alipay": {"query_after": 120, "action_expires": 900},
    "wechat_pay": {"query_after": 120, "action_expires": 900},
    "paypal": {"query_after": 300, "action_expires": 3 * 3600},
    "alipay_transfer": {"query_after": 120, "action_expires": 24 * 3600},
    # A transfer waiting for the user to confirm receipt is closed by WeChat Pay after 24 hours.
    "wechat_transfer": {"query_after": 120, "action_expires": 25 * 3600},
}
PAYDESK_RECONCILE_GRACE = 120
# Payments are queried once C(r), the fitted chance that their callback has arrived r seconds after
# submission (manage.py fit_timing_models), passes this quantile, bounded below and above (seconds);
# a gateway without a fitted C(r) keeps its `query_after`.
PAYDESK_RECONCILE_QUANTILE = env_float("PAYDESK_RECONCILE_QUANTILE", 0.95, minimum=0.5)
PAYDESK_RECONCILE_QUERY_MIN = env_float("PAYDESK_RECONCILE_QUERY_MIN", 30, minimum=0)
PAYDESK_RECONCILE_QUERY_MAX = env_float("PAYDESK_RECONCILE_QUERY_MAX", 3600, minimum=1)
# History the timing models C(r) and N(r) are fitted from (days).
PAYDESK_TIMING_WINDOW_DAYS = env_int("PAYDESK_TIMING_WINDOW_DAYS", 14, minimum=1)
# Warn a merchant whose failing webhook endpoint's next attempt succeeds with less than this chance.
PAYDESK_WEBHOOK_WARN_BELOW = env_float("PAYDESK_WEBHOOK_WARN_BELOW", 0.5, minimum=0)
# Where PayPal sends the buyer after approving or cancelling an order.
PAYDESK_PAYPAL_RETURN_URL = env_str("PAYDESK_PAYPAL_RETURN_URL", PAYDESK_PUBLIC_URL + "/")
# Work that has not progressed for this many seconds is re-enqueued by the sweeper.
PAYDESK_SWEEP_AFTER = env_int("PAYDESK_SWEEP_AFTER", 60, minimum=1)
# Attempts before a unit of work is dead-lettered.
PAYDESK_MAX_ATTEMPTS = env_int("PAYDESK_MAX_ATTEMPTS", 8, minimum=1)
# Gateway callbacks (docs/gateways.md): requests per client address at /callbacks/ before
# 429 ("" = no limit), and days rejected and duplicate callbacks are kept before they are purged.
PAYDESK_CALLBACK_RATE = env_str("PAYDESK_CALLBACK_RATE", "6000/min")
if PAYDESK_CALLBACK_RATE and not re.fullmatch(
    r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", PAYDESK_CALLBACK_RATE
):
    raise ImproperlyConfigured(
        f"PAYDESK_CALLBACK_RATE must be requests per period such as 6000/min, not {PAYDESK_CALLBACK_RATE!r}."
    )
PAYDESK_CALLBACK_RETENTION_DAYS = env_int("PAYDESK_CALLBACK_RETENTION_DAYS", 30, minimum=1)
# Days an uploaded batch file is kept once its batch is final (its rows are in the database); the
# file holds beneficiaries' accounts in plaintext (docs/privacy.md). 0: deleted on the next hourly run.
PAYDESK_UPLOAD_RETENTION_DAYS = env_int("PAYDESK_UPLOAD_RETENTION_DAYS", 7, minimum=0)
# Behind a reverse proxy: the header it sets with the client's address (e.g. X-Forwarded-For,
# X-Real-IP) and how many proxies of yours append to it. Unset: REMOTE_ADDR; no other header is trusted.
PAYDESK_CLIENT_IP_HEADER = env_str("PAYDESK_CLIENT_IP_HEADER")
PAYDESK_TRUSTED_PROXIES = env_int("PAYDESK_TRUSTED_PROXIES", 1, minimum=1)
# Oversized requests (docs/api.md "Errors"): a URI (path and query string, as sent) longer than
# this is a 414, header fields larger than this in all or more of them than this a 431, both as
# problem details. config/gunicorn.py keeps gunicorn's own limits above these, so PayDesk answers.
PAYDESK_MAX_URI_BYTES = env_int("PAYDESK_MAX_URI_BYTES", 8000, minimum=256)
PAYDESK_MAX_HEADER_BYTES = env_int("PAYDESK_MAX_HEADER_BYTES", 16384, minimum=1024)
PAYDESK_MAX_HEADER_FIELDS = env_int("PAYDESK_MAX_HEADER_FIELDS", 100, minimum=10)
# Batches (README "Batches"): upload limits, chunking, leases.
PAYDESK_BATCH_MAX_BYTES = env_int("PAYDESK_BATCH_MAX_BYTES", 100 * 1024 * 1024, minimum=1)
PAYDESK_BATCH_JSON_MAX_BYTES = env_int("PAYDESK_BATCH_JSON_MAX_BYTES", 10 * 1024 * 1024, minimum=1)
PAYDESK_BATCH_MAX_ROWS = env_int("PAYDESK_BATCH_MAX_ROWS", 1_000_000, minimum=1)
PAYDESK_BATCH_DUPLICATE_DAYS = env_int("PAYDESK_BATCH_DUPLICATE_DAYS", 30, minimum=0)
PAYDESK_BATCH_CHUNK_SIZE = env_int("PAYDESK_BATCH_CHUNK_SIZE", 1000, minimum=1)
# Seconds a chunk claim holds before the sweeper gives the chunk to another worker
# (above Q_CLUSTER's timeout, so a live task is never taken over).
PAYDESK_BATCH_CHUNK_LEASE = env_int("PAYDESK_BATCH_CHUNK_LEASE", 150, minimum=1)
# A validation beats every few seconds (PostgreSQL); silent this long, it is run again.
PAYDESK_BATCH_VALIDATION_LEASE = env_int("PAYDESK_BATCH_VALIDATION_LEASE", 120, minimum=1)
# Timeout of the validation task alone (a million rows take longer than Q_CLUSTER's timeout).
PAYDESK_BATCH_TASK_TIMEOUT = env_int("PAYDESK_BATCH_TASK_TIMEOUT", 1800, minimum=1)
# Bank-file rail: the initiating party named in pain.001 files (default: the merchant's name).
PAYDESK_BANK_FILE_INITIATOR = env_str("PAYDESK_BANK_FILE_INITIATOR")
# Names this node in chunk claims ("<node>:<pid>"), to see which worker did what.
PAYDESK_NODE_NAME = env_str("PAYDESK_NODE") or os.uname().nodename

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_q",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "merchants",
    "payments",
]

MIDDLEWARE = [
    # First: an oversized request is refused before any other work (payments/api/request_limits.py).
    "payments.api.request_limits.RequestLimitsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # A NUL in the path, query, cookies or a form: 404/400 before anything queries PostgreSQL with it.
    "config.middleware.RejectNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "merchants.audit.AuditRequestMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "merchants.accounts.middleware.SessionLifetimeMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "merchants.middleware.CurrentMerchantMiddleware",
    # After authentication: a signed-in person's saved language wins over cookie and browser.
    "merchants.middleware.UserLanguageMiddleware",
    "merchants.accounts.middleware.TwoFactorRequiredMiddleware",
    # Last: turns a locked-out sign-in into the 429 page (docs/accounts.md).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"

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
                "merchants.context_processors.current_merchant",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
except (ValueError, KeyError) as exc:
    raise ImproperlyConfigured(
        f"DATABASE_URL is not a database URL such as postgres://user@host:5432/name ({exc})."
    ) from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the worker writes; IMMEDIATE makes a
    # write transaction take the lock up front instead of failing at commit.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # PAYDESK_DB_POOL=N: each process keeps a pool of up to N PostgreSQL connections (psycopg-pool,
    # Django 5.1+) instead of one per thread. Threaded workers want it: a request hands its
    # connection back while it waits for a gateway (payments/db.py: connection_released).
    PAYDESK_DB_POOL = env_int("PAYDESK_DB_POOL", 0, minimum=0)
    if PAYDESK_DB_POOL:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
        DATABASES["default"]["OPTIONS"] = {
            **DATABASES["default"].get("OPTIONS", {}),
            "pool": {"min_size": min(2, PAYDESK_DB_POOL), "max_size": PAYDESK_DB_POOL, "timeout": 10},
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "paydesk",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

Q_CLUSTER = {
    "name": env_str("Q_CLUSTER_NAME", "paydesk"),
    "workers": env_int("Q_WORKERS", 2, minimum=1),
    # timeout must stay below retry, or a slow task is handed out twice.
    "timeout": 120,
    "retry": 180,
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": 1000,
    "catch_up": False,
    "poll": 0.05,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"

# Accounts (docs/accounts.md). django-axes counts failed sign-ins (dashboard and admin alike) by
# username and, separately, by client address; at the limit the sign-in answers 429 until the
# cool-off ends or staff unlock it (admin "Access attempts", or `manage.py axes_reset_username`).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("PAYDESK_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("PAYDESK_LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "merchants.accounts.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "merchants.ratelimit.client_ip_or_none"
AXES_SENSITIVE_PARAMETERS = ["password", "otp_token", "token"]
# Sessions: signed out after PAYDESK_SESSION_IDLE_MINUTES without a request, and after
# PAYDESK_SESSION_MAX_HOURS whatever happens (the cookie's own age is the same bound).
PAYDESK_SESSION_IDLE_MINUTES = env_int("PAYDESK_SESSION_IDLE_MINUTES", 30, minimum=1)
PAYDESK_SESSION_MAX_HOURS = env_int("PAYDESK_SESSION_MAX_HOURS", 12, minimum=1)
SESSION_COOKIE_AGE = PAYDESK_SESSION_MAX_HOURS * 3600
# Two-factor (django-otp): how long a second factor counts as fresh for step-up actions.
PAYDESK_STEP_UP_SECONDS = env_int("PAYDESK_STEP_UP_SECONDS", 300, minimum=30)
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "PayDesk")
# Team invitations expire after this many hours; password reset links after PASSWORD_RESET_TIMEOUT.
PAYDESK_INVITATION_HOURS = env_int("PAYDESK_INVITATION_HOURS", 72, minimum=1)
PASSWORD_RESET_TIMEOUT = 3600

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (ValueError, zoneinfo.ZoneInfoNotFoundError):
    raise ImproperlyConfigured(
        f"TIME_ZONE must be an IANA time zone such as Europe/Paris, not {TIME_ZONE!r}."
    ) from None
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# TLS is usually terminated in front of PayDesk, so these are off unless set; the production
# environment of docs/operations.md sets them (and `manage.py check --deploy` is clean with it).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # a load balancer's health check may speak plain HTTP
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)


def proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """`X-Forwarded-Proto,https` (or `HTTP_X_FORWARDED_PROTO,https`) -> Django's (META key, value)."""
    value = env_str(name)
    if not value:
        return None
    header, _, expected = (part.strip() for part in value.partition(","))
    if not re.fullmatch(r"[A-Za-z0-9_-]+", header) or not expected:
        raise ImproperlyConfigured(f"{name} must be '<header>,<value>' such as 'X-Forwarded-Proto,https'.")
    key = header.upper().replace("-", "_")
    return (key if key.startswith("HTTP_") else "HTTP_" + key), expected


# Set it only behind a proxy that always sets (or strips) this header.
SECURE_PROXY_SSL_HEADER = proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
# Check ids to silence, comma-separated, e.g. paydesk.W001 to accept the sandbox with DEBUG off.
SILENCED_SYSTEM_CHECKS = env_list("SILENCED_SYSTEM_CHECKS")

PAYDESK_API_RATE = env_str("PAYDESK_API_RATE", "6000/min")
if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", PAYDESK_API_RATE):
    raise ImproperlyConfigured(
        f"PAYDESK_API_RATE must be requests per period such as 6000/min, not {PAYDESK_API_RATE!r}."
    )

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["payments.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["payments.api.auth.HasApiKeyScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "payments.api.parsers.StrictJSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Documents problem+json errors, the Idempotency-Key header and Bearer auth (payments/api/schema.py).
    "DEFAULT_SCHEMA_CLASS": "payments.api.schema.PayDeskAutoSchema",
    "EXCEPTION_HANDLER": "payments.api.problems.problem_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["payments.api.auth.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": PAYDESK_API_RATE},
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "PayDesk API",
    "DESCRIPTION": "Real-time and batch payments for merchants.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Enums whose field name is shared by several choice sets get names of their own
    # (otherwise drf-spectacular makes up ObjectF31Enum, Status7aeEnum).
    "ENUM_NAME_OVERRIDES": {
        "ListObjectEnum": ["list"],
        "PaymentStatusEnum": "payments.models.PaymentStatus",
        "RefundStatusEnum": "payments.models.RefundStatus",
        "WebhookEndpointStatusEnum": ["enabled", "disabled"],
    },
}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "PayDesk <noreply@paydesk.local>")
# EMAIL_URL overrides EMAIL_BACKEND: smtp://user:password@host:587?tls=1, smtps://...:465,
# console://, locmem://, file:///var/mail/paydesk, dummy://.
EMAIL_URL = env_str("EMAIL_URL")
if EMAIL_URL:
    from urllib.parse import parse_qs, unquote, urlsplit

    _email = urlsplit(EMAIL_URL)
    try:
        _email_port = _email.port
    except ValueError:
        raise ImproperlyConfigured("EMAIL_URL has a port that is not a number from 0 to 65535.") from None
    _email_backends = {"smtp": "smtp", "smtps": "smtp", "console": "console", "locmem": "locmem"}
    _email_backends.update({"file": "filebased", "dummy": "dummy"})
    if _email.scheme not in _email_backends:
        raise ImproperlyConfigured(f"EMAIL_URL scheme must be one of {sorted(_email_backends)}.")
    EMAIL_BACKEND = f"django.core.mail.backends.{_email_backends[_email.scheme]}.EmailBackend"
    _email_query = {k: v[-1].lower() for k, v in parse_qs(_email.query).items()}
    if _email.scheme in ("smtp", "smtps"):
        EMAIL_HOST = _email.hostname or "localhost"
        EMAIL_PORT = _email_port or (465 if _email.scheme == "smtps" else 25)
        EMAIL_HOST_USER = unquote(_email.username or "")
        EMAIL_HOST_PASSWORD = unquote(_email.password or "")
        EMAIL_USE_SSL = _email.scheme == "smtps" or _email_query.get("ssl") in ("1", "true")
        EMAIL_USE_TLS = not EMAIL_USE_SSL and _email_query.get("tls") in ("1", "true")
    elif _email.scheme == "file":
        EMAIL_FILE_PATH = _email.path
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 15, minimum=1)

# SMS backend (payments/channels/sms.py): ConsoleBackend, LocmemBackend or TwilioBackend.
SMS_BACKEND = env_str("SMS_BACKEND", "payments.channels.sms.ConsoleBackend")
SMS_FROM = env_str("SMS_FROM", "PayDesk")
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN")
TWILIO_API_BASE = env_str("TWILIO_API_BASE", "https://api.twilio.com")

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}."
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Account and card numbers are masked in every record that reaches a handler (config/logs.py).
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["accounts_masked"]}
    },
    # django-q2 logs every task it enqueues, runs and records at INFO; that chatter is shown at
    # DEBUG only, so that INFO shows PayDesk's own work (config/logs.py).
    "filters": {
        "task_chatter": {"()": "config.logs.TaskChatterToDebug"},
        "accounts_masked": {"()": "config.logs.AccountNumbersMasked"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Through the root handler only: Django's own console handler printed each line twice.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "django-q": {"filters": ["task_chatter"]},
        # django-axes announces its version at every start; its lock-outs are warnings and stay.
        "axes.apps": {"level": "WARNING"},
    },
}
