"""PayDesk settings: one module, driven by environment variables with local defaults."""

import base64
import hashlib
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


DEBUG = env_bool("DEBUG", True)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

PAYDESK_PUBLIC_URL = os.environ.get("PAYDESK_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
SANDBOX_GATEWAY_SECRET = os.environ.get("SANDBOX_GATEWAY_SECRET", "")
if not SANDBOX_GATEWAY_SECRET:
    if not DEBUG:
        raise ImproperlyConfigured("SANDBOX_GATEWAY_SECRET must be set when DEBUG is off.")
    SANDBOX_GATEWAY_SECRET = "sandbox-dev-secret"  # noqa: S105
# Seconds after which a sandbox callback signature counts as a replay.
SANDBOX_CALLBACK_TOLERANCE = 300
# Seconds the sandbox waits before delivering an outcome (0 = at once).
SANDBOX_CALLBACK_DELAY = float(os.environ.get("SANDBOX_CALLBACK_DELAY", "0.5"))
# Seconds between an outcome and its follow-up (3155's success, 0077's reversal).
SANDBOX_FOLLOWUP_DELAY = float(os.environ.get("SANDBOX_FOLLOWUP_DELAY", "2"))

PAYDESK_WEBHOOK_ALLOW_PRIVATE = env_bool("PAYDESK_WEBHOOK_ALLOW_PRIVATE", DEBUG)
# Seconds one webhook request may take in all: connect, send, status line, headers, body start.
PAYDESK_WEBHOOK_TIMEOUT = float(os.environ.get("PAYDESK_WEBHOOK_TIMEOUT", "15"))
# Workers that may send one merchant's webhooks at once, cluster-wide (README "Notifications and
# webhooks"): keep it below Q_WORKERS, so a merchant whose endpoint hangs leaves workers for the rest.
PAYDESK_WEBHOOK_SLOTS_PER_MERCHANT = env_int("PAYDESK_WEBHOOK_SLOTS_PER_MERCHANT", 1)

# Fernet key(s) for secrets at rest, comma-separated: the first encrypts, all decrypt.
FIELD_ENCRYPTION_KEY = os.environ.get("FIELD_ENCRYPTION_KEY", "")
if not FIELD_ENCRYPTION_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY must be set when DEBUG is off.")
    FIELD_ENCRYPTION_KEY = base64.urlsafe_b64encode(
        hashlib.sha256(b"paydesk-field-encryption:" + SECRET_KEY.encode()).digest()
    ).decode()

# Which gateway serves each payment method; the sandbox serves all by default.
PAYDESK_GATEWAY_ROUTES = {
    "card": os.environ.get("PAYDESK_GATEWAY_CARD", "sandbox"),
    "alipay": os.environ.get("PAYDESK_GATEWAY_ALIPAY", "sandbox"),
    "wechat_pay": os.environ.get("PAYDESK_GATEWAY_WECHAT_PAY", "sandbox"),
    "paypal": os.environ.get("PAYDESK_GATEWAY_PAYPAL", "sandbox"),
    "bank_transfer": os.environ.get("PAYDESK_GATEWAY_BANK_TRANSFER", "sandbox"),
}
PAYDESK_GATEWAYS = {
    "sandbox": "payments.gateways.sandbox.SandboxGateway",
    "alipay": "payments.gateways.alipay.AlipayGateway",
    "wechat_pay": "payments.gateways.wechat_pay.WeChatPayGateway",
    "paypal": "payments.gateways.paypal.PayPalGateway",
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
    gateway: {
        env: os.environ.get(f"PAYDESK_{gateway.upper()}_{env.upper()}_URL", url) for env, url in urls.items()
    }
    for gateway, urls in _GATEWAY_URL_DEFAULTS.items()
}
# Seconds to connect to / wait for a provider's answer.
PAYDESK_GATEWAY_TIMEOUT = (5.0, float(os.environ.get("PAYDESK_GATEWAY_TIMEOUT", "20")))
# Reconciliation per gateway: a payment processing or awaiting the customer for `query_after`
# seconds is queried at the gateway (again every `query_after`); a QR code / approval link
# lives `action_expires` seconds, after which (plus PAYDESK_RECONCILE_GRACE) it is cancelled.
PAYDESK_RECONCILE = {
    "alipay": {"query_after": 120, "action_expires": 900},
    "wechat_pay": {"query_after": 120, "action_expires": 900},
    "paypal": {"query_after": 300, "action_expires": 3 * 3600},
}
PAYDESK_RECONCILE_GRACE = 120
# Where PayPal sends the buyer after approving or cancelling an order.
PAYDESK_PAYPAL_RETURN_URL = os.environ.get("PAYDESK_PAYPAL_RETURN_URL", PAYDESK_PUBLIC_URL + "/")
# Work that has not progressed for this many seconds is re-enqueued by the sweeper.
PAYDESK_SWEEP_AFTER = env_int("PAYDESK_SWEEP_AFTER", 60)
# Attempts before a unit of work is dead-lettered.
PAYDESK_MAX_ATTEMPTS = env_int("PAYDESK_MAX_ATTEMPTS", 8)
# Gateway callbacks (README "Gateways"): requests per client address at /callbacks/ before
# 429 ("" = no limit), and days rejected and duplicate callbacks are kept before they are purged.
PAYDESK_CALLBACK_RATE = os.environ.get("PAYDESK_CALLBACK_RATE", "6000/min")
PAYDESK_CALLBACK_RETENTION_DAYS = env_int("PAYDESK_CALLBACK_RETENTION_DAYS", 30)
# Behind a reverse proxy: the header it sets with the client's address (e.g. X-Forwarded-For,
# X-Real-IP) and how many proxies of yours append to it. Unset: REMOTE_ADDR; no other header is trusted.
PAYDESK_CLIENT_IP_HEADER = os.environ.get("PAYDESK_CLIENT_IP_HEADER", "")
PAYDESK_TRUSTED_PROXIES = env_int("PAYDESK_TRUSTED_PROXIES", 1)
# Batches (README "Batches"): upload limits, chunking, leases.
PAYDESK_BATCH_MAX_BYTES = env_int("PAYDESK_BATCH_MAX_BYTES", 100 * 1024 * 1024)
PAYDESK_BATCH_JSON_MAX_BYTES = env_int("PAYDESK_BATCH_JSON_MAX_BYTES", 10 * 1024 * 1024)
PAYDESK_BATCH_MAX_ROWS = env_int("PAYDESK_BATCH_MAX_ROWS", 1_000_000)
PAYDESK_BATCH_DUPLICATE_DAYS = env_int("PAYDESK_BATCH_DUPLICATE_DAYS", 30)
PAYDESK_BATCH_CHUNK_SIZE = env_int("PAYDESK_BATCH_CHUNK_SIZE", 1000)
# Seconds a chunk claim holds before the sweeper gives the chunk to another worker
# (above Q_CLUSTER's timeout, so a live task is never taken over).
PAYDESK_BATCH_CHUNK_LEASE = env_int("PAYDESK_BATCH_CHUNK_LEASE", 150)
# A validation beats every few seconds (PostgreSQL); silent this long, it is run again.
PAYDESK_BATCH_VALIDATION_LEASE = env_int("PAYDESK_BATCH_VALIDATION_LEASE", 120)
# Timeout of the validation task alone (a million rows take longer than Q_CLUSTER's timeout).
PAYDESK_BATCH_TASK_TIMEOUT = env_int("PAYDESK_BATCH_TASK_TIMEOUT", 1800)
# Names this node in chunk claims ("<node>:<pid>"), to see which worker did what.
PAYDESK_NODE_NAME = os.environ.get("PAYDESK_NODE", "") or os.uname().nodename

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_q",
    "merchants",
    "payments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "merchants.middleware.CurrentMerchantMiddleware",
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

DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
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
    "name": os.environ.get("Q_CLUSTER_NAME", "paydesk"),
    "workers": env_int("Q_WORKERS", 2),
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
LOGIN_REDIRECT_URL = "dashboard:payment_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
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
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["merchants.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["merchants.auth.HasApiKeyScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Documents problem+json errors, the Idempotency-Key header and Bearer auth (payments/api/schema.py).
    "DEFAULT_SCHEMA_CLASS": "payments.api.schema.PayDeskAutoSchema",
    "EXCEPTION_HANDLER": "payments.api.problems.problem_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["merchants.auth.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": os.environ.get("PAYDESK_API_RATE", "6000/min")},
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
}

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "PayDesk <noreply@paydesk.local>")
# EMAIL_URL overrides EMAIL_BACKEND: smtp://user:password@host:587?tls=1, smtps://...:465,
# console://, locmem://, file:///var/mail/paydesk, dummy://.
EMAIL_URL = os.environ.get("EMAIL_URL", "")
if EMAIL_URL:
    from urllib.parse import parse_qs, unquote, urlsplit

    _email = urlsplit(EMAIL_URL)
    _email_backends = {"smtp": "smtp", "smtps": "smtp", "console": "console", "locmem": "locmem"}
    _email_backends.update({"file": "filebased", "dummy": "dummy"})
    if _email.scheme not in _email_backends:
        raise ImproperlyConfigured(f"EMAIL_URL scheme must be one of {sorted(_email_backends)}.")
    EMAIL_BACKEND = f"django.core.mail.backends.{_email_backends[_email.scheme]}.EmailBackend"
    _email_query = {k: v[-1].lower() for k, v in parse_qs(_email.query).items()}
    if _email.scheme in ("smtp", "smtps"):
        EMAIL_HOST = _email.hostname or "localhost"
        EMAIL_PORT = _email.port or (465 if _email.scheme == "smtps" else 25)
        EMAIL_HOST_USER = unquote(_email.username or "")
        EMAIL_HOST_PASSWORD = unquote(_email.password or "")
        EMAIL_USE_SSL = _email.scheme == "smtps" or _email_query.get("ssl") in ("1", "true")
        EMAIL_USE_TLS = not EMAIL_USE_SSL and _email_query.get("tls") in ("1", "true")
    elif _email.scheme == "file":
        EMAIL_FILE_PATH = _email.path
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 15)

# SMS backend (payments/channels/sms.py): ConsoleBackend, LocmemBackend or TwilioBackend.
SMS_BACKEND = os.environ.get("SMS_BACKEND", "payments.channels.sms.ConsoleBackend")
SMS_FROM = os.environ.get("SMS_FROM", "PayDesk")
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
TWILIO_API_BASE = os.environ.get("TWILIO_API_BASE", "https://api.twilio.com")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
