"""Settings, all from the environment (and `.env` when present). See `.env.example`."""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from portal.security.proxies import client_address_settings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)


def _required(name: str, value: str) -> str:
    if not value and not DEBUG:
        raise ImproperlyConfigured(
            f"Set {name} in the environment (required when DJANGO_DEBUG is off)."
        )
    return value


SECRET_KEY = _required("DJANGO_SECRET_KEY", env.str("DJANGO_SECRET_KEY", default="")) or (
    "insecure-local-only-key-do-not-use-in-production"
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_TZ = True
LANGUAGE_CODE = "en-gb"
USE_I18N = True
FORMAT_MODULE_PATH = ["portal.formats"]

INSTALLED_APPS = [
    # The admin, on a site that knows about two-factor sign-in (portal/admin/site.py).
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_q",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "portal",
    "customers",
    "orders",
]

MIDDLEWARE = [
    # First, so every response carries X-Request-ID and every log line the request's id.
    "portal.ops.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads the request into a query (sessions, authentication, django-axes).
    "portal.ops.middleware.CraftedInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "portal.security.twofactor.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "portal.admin.context_processors.oneoffice",
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL says otherwise.
DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"
    ),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, cluster workers) write at once: WAL lets readers run beside a
    # writer, IMMEDIATE takes the write lock at BEGIN so two writers queue instead of
    # deadlocking, and the timeout is how long one waits for the other.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Email: console locally, SMTP (or anything django-environ understands) via EMAIL_URL.
vars().update(env.email_url_config(env.str("EMAIL_URL", default="") or "consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="OneOffice portal <portal@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
MANAGERS_EMAIL = env.str("MANAGERS_EMAIL", default="managers@localhost")
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# OneOffice. No ONEOFFICE_URL means the built-in sandbox that `make run` starts.
ONEOFFICE_SANDBOX_PORT = env.int("ONEOFFICE_SANDBOX_PORT", default=8765)
ONEOFFICE_URL = _required("ONEOFFICE_URL", env.str("ONEOFFICE_URL", default=""))
ONEOFFICE_SANDBOX = not ONEOFFICE_URL
if ONEOFFICE_SANDBOX:
    ONEOFFICE_URL = f"http://127.0.0.1:{ONEOFFICE_SANDBOX_PORT}/"
ONEOFFICE_API_KEY = _required("ONEOFFICE_API_KEY", env.str("ONEOFFICE_API_KEY", default="")) or (
    "sandbox-key"
)
ONEOFFICE_TIMEOUT = env.float("ONEOFFICE_TIMEOUT", default=30.0)
ONEOFFICE_CONNECT_TIMEOUT = env.float("ONEOFFICE_CONNECT_TIMEOUT", default=5.0)
ONEOFFICE_RENEWAL_WINDOW_DAYS = env.int("ONEOFFICE_RENEWAL_WINDOW_DAYS", default=15)
ONEOFFICE_RETRY_MAX_ATTEMPTS = env.int("ONEOFFICE_RETRY_MAX_ATTEMPTS", default=5)
ONEOFFICE_RETRY_BACKOFF_SECONDS = env.int("ONEOFFICE_RETRY_BACKOFF_SECONDS", default=60)
# OneOffice's calendar: its "today" dates terms and counts days left. Empty: TIME_ZONE.
ONEOFFICE_TIME_ZONE = env.str("ONEOFFICE_TIME_ZONE", default="")
# How often the sweep retries calls left unsettled by a process that stopped mid-call.
ONEOFFICE_SWEEP_MINUTES = env.int("ONEOFFICE_SWEEP_MINUTES", default=10)
# The one currency of the price list and of every order value (ISO 4217 code).
PORTAL_CURRENCY = env.str("PORTAL_CURRENCY", default="EUR").upper()
RENEWAL_REMINDER_TIME = env.str("RENEWAL_REMINDER_TIME", default="07:00")
# Calls in flight to OneOffice at once, across every web and cluster process sharing the
# database; a call waits this long for a place before it is left pending as not sent.
ONEOFFICE_MAX_IN_FLIGHT = env.int("ONEOFFICE_MAX_IN_FLIGHT", default=8)
ONEOFFICE_IN_FLIGHT_WAIT_SECONDS = env.float("ONEOFFICE_IN_FLIGHT_WAIT_SECONDS", default=20.0)
# A call the portal stopped waiting for (its timeout, a dropped connection) keeps its place this
# much longer: OneOffice may still be working on it, and the cap is for OneOffice.
ONEOFFICE_IN_FLIGHT_AFTER_TIMEOUT_SECONDS = env.float(
    "ONEOFFICE_IN_FLIGHT_AFTER_TIMEOUT_SECONDS", default=30.0
)
# A bulk action on more objects than this runs as a batch in the cluster.
BATCH_SYNC_MAX = env.int("BATCH_SYNC_MAX", default=5)
# How long a batch pauses when OneOffice says "not now" without a Retry-After.
BATCH_NOT_NOW_PAUSE_SECONDS = env.int("BATCH_NOT_NOW_PAUSE_SECONDS", default=30)
# Renew auto-renew subscriptions this many days before their term ends (at most the renewal
# window). Off unless switched on, except with the built-in sandbox.
AUTO_RENEW_ENABLED = env.bool("AUTO_RENEW_ENABLED", default=ONEOFFICE_SANDBOX)
AUTO_RENEW_DAYS_BEFORE_END = env.int("AUTO_RENEW_DAYS_BEFORE_END", default=3)

# django-q2: the ORM broker locally, Redis when REDIS_URL is set.
REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": "portal",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": int(ONEOFFICE_TIMEOUT + ONEOFFICE_CONNECT_TIMEOUT) + 60,
    "retry": int(ONEOFFICE_TIMEOUT + ONEOFFICE_CONNECT_TIMEOUT) + 120,
    "max_attempts": 1,
    "catch_up": False,
    "ack_failures": True,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# Admin login throttling.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "portal.admin.errors.locked_out"
vars().update(client_address_settings(env.int("DJANGO_PROXY_COUNT", default=0)))

# HTTPS hardening, on whenever DEBUG is off.
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    if env.bool("DJANGO_BEHIND_TLS_PROXY", default=True):
        # Only safe behind a proxy that sets X-Forwarded-Proto itself (and drops the client's).
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Operations: two-factor sign-in, health, metrics, logs --------------------------------------


def _bool_or_default(name: str, default: bool) -> bool:
    # Empty (as .env.example leaves it) means the default, not off.
    return env.bool(name) if env.str(name, default="") else default


# Staff must sign in with a code from an authenticator app; a staff user without one is sent
# to enrol before anything else. On by default whenever DEBUG is off.
STAFF_2FA_REQUIRED = _bool_or_default("STAFF_2FA_REQUIRED", not DEBUG)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="") or "OneOffice portal"
# Device keys never appear in the admin.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
TWO_FACTOR_RECOVERY_CODES = 10
# Wrong codes count towards the same lockout as wrong passwords (AXES_FAILURE_LIMIT); every
# failure is kept, so /metrics can count them. django-axes keeps the form data of failures:
# the code is masked there like the password (the first two are its defaults).
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "otp_token"]

# /healthz: the task cluster's heartbeat may be this old; the last reminder run this old.
HEALTH_CLUSTER_MAX_AGE_SECONDS = int(env.str("HEALTH_CLUSTER_MAX_AGE_SECONDS", default="") or 300)
HEALTH_REMINDER_MAX_AGE_HOURS = int(env.str("HEALTH_REMINDER_MAX_AGE_HOURS", default="") or 26)
# /metrics answers only these client addresses (networks allowed: 10.0.0.0/8) or a request
# bearing METRICS_TOKEN; with neither set it answers 404.
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Probes and scrapers talk to the web process over plain HTTP, from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

# Logs: "json" gives one JSON object per line (production default), "plain" one text line.
LOG_FORMAT = env.str("LOG_FORMAT", default="") or ("plain" if DEBUG else "json")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
# One line per request (method, path, status, duration, request id, user); on with JSON logs.
LOG_REQUESTS = _bool_or_default("LOG_REQUESTS", LOG_FORMAT == "json")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "portal.ops.logging.RedactSecretsFilter"},
        "no_4xx_traceback": {"()": "portal.ops.logging.NoClientErrorTracebackFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        "context": {"()": "portal.ops.logging.RequestContextFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "portal.ops.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact", "context", "no_4xx_traceback"],
        },
        "mail_admins": {
            "level": "ERROR",
            "filters": ["require_debug_false"],
            "class": "django.utils.log.AdminEmailHandler",
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # Django's own console handler would print every request warning a second time: "django"
    # keeps only the error email and propagates to the root handler.
    "loggers": {
        "axes": {"level": "WARNING"},
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
    },
}
