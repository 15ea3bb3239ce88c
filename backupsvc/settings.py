"""Settings for backupsvc, read from the environment (django-environ).

Embedded defaults (SQLite, local files, a file-based Celery broker, mail written to
``var/mail/``) make ``make run`` work on a bare machine. ``BACKUPSVC_ENV=production``
switches to strict mode: secrets must be given (directly or as ``NAME_FILE``), DEBUG is off
and the HTTPS-only settings are on.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from backupsvc.lib import secrets as dev_secrets
from backupsvc.lib.queue import AlignedEvery

BASE_DIR = Path(__file__).resolve().parent.parent

# FileAwareEnv: every variable may also come from NAME_FILE (Docker/Kubernetes secrets).
env = environ.FileAwareEnv()

ENVIRONMENT = env.str("BACKUPSVC_ENV", default="development")
PRODUCTION = ENVIRONMENT == "production"
VAR_DIR = Path(env.str("BACKUPSVC_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=not PRODUCTION)
# Outside production, whitenoise serves straight from the app folders (no collectstatic needed).
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG


def _required_in_production(name: str) -> str | None:
    value = env.str(name, default="")
    if value:
        return value
    if PRODUCTION:
        raise ImproperlyConfigured(f"{name} (or {name}_FILE) must be set in production.")
    return None


SECRET_KEY = _required_in_production("SECRET_KEY") or dev_secrets.dev_secret_key(VAR_DIR)
_backup_keys = _required_in_production("BACKUP_KEYS")
# A comma-separated key ring: the first key wraps new passwords, every key can unwrap (rotation).
BACKUP_KEYS: list[str] = (
    [k.strip() for k in _backup_keys.split(",") if k.strip()] if _backup_keys else dev_secrets.dev_backup_keys(VAR_DIR)
)
RESTORE_CODE_KEY = _required_in_production("RESTORE_CODE_KEY") or dev_secrets.dev_restore_code_key(VAR_DIR)

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_filters",
    "django_htmx",
    "axes",
    "backupsvc",  # the health check's management command
    "accounts",
    "organizations",
    "backups",
    "restores",
]

MIDDLEWARE = [
    "backupsvc.lib.http.HeadWithoutBodyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "backupsvc.lib.bodies.RequestBodyLimitMiddleware",  # before anything can read a body
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "organizations.middleware.CurrentOrganizationMiddleware",
    "restores.maintenance.MaintenanceMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "backupsvc.urls"
WSGI_APPLICATION = "backupsvc.wsgi.application"
ASGI_APPLICATION = "backupsvc.asgi.application"

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
                "organizations.context_processors.current_organization",
                "accounts.context_processors.notifications",
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL says otherwise.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'backupsvc.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let web, worker and beat share one SQLite file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"

# Login throttling (django-axes): lock a username+IP pair after repeated failures.
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"  # never served directly: tenant files leave only through views.

# Storage: local under var/ unless an S3 bucket is configured (django-storages, boto3).
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 300,  # presigned downloads live at most 5 minutes
            "file_overwrite": False,
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="path"),
            "signature_version": "s3v4",
            # S3File downloads a whole object into a spooled file on first read; past 8 MiB it
            # spools to disk instead of memory (archives themselves are read by ranged GETs,
            # backups/storage_io.py).
            "max_memory_size": 8 * 1024 * 1024,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Email: SMTP when EMAIL_URL is set; otherwise files under var/mail/, one line per mail in the log.
EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(env.email_url_config(EMAIL_URL))
else:
    EMAIL_BACKEND = "backupsvc.lib.mail.FileAndConsoleEmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
# Operators: the storage audit's findings are mailed to them (else to the active staff users).
ADMINS = [(email, email) for email in env.list("OPERATOR_EMAILS", default=[])]
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="backupsvc <backups@backupsvc.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Celery: a broker that needs no server (files under var/) unless CELERY_BROKER_URL is set.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    _control_dir = VAR_DIR / "celery" / "control"
    for _d in (_queue_dir, _processed_dir, _control_dir):
        _d.mkdir(parents=True, exist_ok=True)
    # kombu's filesystem transport, made to stop within seconds and not to ask for a host name.
    CELERY_BROKER_TRANSPORT = "backupsvc.lib.filebroker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "control_folder": str(_control_dir),  # kombu's default is ./control
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"backups.tasks.*": {"queue": "backups"}, "restores.tasks.*": {"queue": "backups"}}
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=6 * 3600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=6 * 3600 - 300)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Worker and beat log through LOGGING below (backupsvc.celery connects setup_logging), so their
# lines carry the backup/restore id; Celery must not replace the root logger's handlers.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = TIME_ZONE
# On a warm shutdown (SIGTERM to the worker's main process) a running backup or restore gets this
# long to finish; then it is failed with a reason ("The worker was stopped while this backup
# ran") rather than killed. Keep it below the supervisor's own limit (docker-compose.yml gives
# the worker 90 s). A process-group SIGTERM (honcho, make run) fails it at once.
WORKER_STOP_GRACE_SECONDS = env.float("WORKER_STOP_GRACE_SECONDS", default=60.0 if PRODUCTION else 0.0)

# Backups
BACKUP_QUEUE_INTERVAL = env.int("BACKUP_QUEUE_INTERVAL", default=15 * 60)  # seconds
BACKUP_DISPATCH_IMMEDIATELY = env.bool("BACKUP_DISPATCH_IMMEDIATELY", default=not PRODUCTION)
BACKUP_DOWNLOAD_LIFETIME = timedelta(days=env.int("BACKUP_DOWNLOAD_DAYS", default=14))
BACKUP_HEARTBEAT_STALE_AFTER = timedelta(seconds=env.int("BACKUP_HEARTBEAT_STALE_SECONDS", default=600))
BACKUP_MAX_EXPANDED_SIZE = env.int("BACKUP_MAX_EXPANDED_SIZE", default=50 * 1024**3)
BACKUP_MAX_RATIO = env.int("BACKUP_MAX_RATIO", default=200)
BACKUP_UPLOAD_MAX_SIZE = env.int("BACKUP_UPLOAD_MAX_SIZE", default=10 * 1024**3)
# Every other request body (forms, logos, documents uploaded in the Django admin): larger ones are
# refused (413) before they are read. Each request in flight may hold this much in a temporary file.
REQUEST_BODY_MAX_SIZE = env.int("REQUEST_BODY_MAX_SIZE", default=50 * 1024**2)
SUBSCRIPTION_URL = env.str("SUBSCRIPTION_URL", default="https://backupsvc.example/pricing")
SUBSCRIPTION_CONTACT_EMAIL = env.str("SUBSCRIPTION_CONTACT_EMAIL", default="sales@backupsvc.example")

# Restores
RESTORE_CODE_LIFETIME = timedelta(minutes=env.int("RESTORE_CODE_MINUTES", default=10))
RESTORE_CODE_MAX_ATTEMPTS = env.int("RESTORE_CODE_MAX_ATTEMPTS", default=5)
RESTORE_CODES_PER_HOUR = env.int("RESTORE_CODES_PER_HOUR", default=3)
RESTORE_DISPATCH_IMMEDIATELY = env.bool("RESTORE_DISPATCH_IMMEDIATELY", default=True)

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Security headers; the HTTPS-only ones switch on in production.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Content-Security-Policy (Django 5.2 has no built-in CSP; sent by our middleware-free header
# helper in backupsvc.lib.security). Every script and style is served from 'self'.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'self'; object-src 'none'"
)
# Load balancers probe /health/ over plain http inside the network: never redirected to https.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
HEALTH_CHECK_TIMEOUT = env.float("HEALTH_CHECK_TIMEOUT", default=3.0)  # seconds per check
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
MIDDLEWARE.insert(2, "backupsvc.lib.security.ContentSecurityPolicyMiddleware")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Lines written while a backup or restore runs carry its id: "[restore=45 backup=123] ".
    "filters": {"job_ids": {"()": "backupsvc.lib.logcontext.LogContextFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(log_context)s%(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["job_ids"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# Beat: the backup queue, schedules, expiry and the stale sweep. The queue runs at multiples of
# BACKUP_QUEUE_INTERVAL since the epoch (:00, :15, :30, :45 by default), so the list can say when
# a pending backup starts (backupsvc.lib.queue).
CELERY_BEAT_SCHEDULE = {
    "backups-process-queue": {"task": "backups.tasks.process_queue", "schedule": AlignedEvery(BACKUP_QUEUE_INTERVAL)},
    "backups-run-schedules": {"task": "backups.tasks.run_schedules", "schedule": 60.0},
    "backups-expire-due": {"task": "backups.tasks.expire_due", "schedule": 15 * 60.0},
    "backups-sweep-stale": {"task": "backups.tasks.sweep_stale", "schedule": 5 * 60.0},
    # Weekly: decrypt, check every hash and rehearse the restore of each organization's latest backup.
    "backups-verify-latest": {"task": "restores.tasks.verify_latest", "schedule": 7 * 24 * 3600.0},
    # Weekly: every completed backup's file exists with its size, every stored file has a backup.
    "backups-audit-storage": {"task": "backups.tasks.audit_storage", "schedule": 7 * 24 * 3600.0},
    "restores-process-queue": {"task": "restores.tasks.process_queue", "schedule": 60.0},
    "restores-sweep-stale": {"task": "restores.tasks.sweep_stale", "schedule": 5 * 60.0},
    "restores-cleanup-uploads": {"task": "restores.tasks.cleanup_uploads", "schedule": 3600.0},
}
