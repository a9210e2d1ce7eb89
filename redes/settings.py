"""One settings module, read from the environment, with defaults that run out of the box on SQLite.

Environment variables (all optional):

- ``DATABASE_URL``: e.g. ``postgres://user@127.0.0.1:5432/redes``; default: SQLite file in the data folder.
- ``REDES_DATA_DIR``: where the SQLite file, the generated secret key and uploads live
  (default ``$XDG_DATA_HOME/redes`` or ``~/.local/share/redes``).
- ``SECRET_KEY`` or ``SECRET_KEY_FILE``: otherwise a key is generated once and kept in the data folder.
- ``DEBUG`` (``0``/``1``), ``ALLOWED_HOSTS`` (comma separated), ``CSRF_TRUSTED_ORIGINS`` (comma separated).
- ``DATABASE_CONN_MAX_AGE``: seconds a server thread keeps its database connection (default 60 on PostgreSQL,
  0 on SQLite).
- ``REDES_TILE_URL``: base-map tile template for Leaflet (pages still work without it).
- ``REDES_LOGIN_FAILURE_LIMIT``, ``REDES_LOGIN_COOLOFF_MINUTES``: login throttling.
- ``REDES_FIELD_KEYS`` or ``REDES_FIELD_KEYS_FILE``: Fernet keys (comma separated, newest first) that encrypt
  sensitive data at rest; otherwise one key is generated once and kept in the data folder. Rotation: put a new
  key first, run ``redes registry rotate-keys``, then drop the old one (``docs/operations.md``).
- ``REDES_IMPORT_PARALLEL`` (``0``/``1``, default ``1``): duplicate search of large imports in a second process.
- ``REDES_TASKS_BACKEND``: ``database`` (default: a worker started by ``redes serve``/``redes worker``) or
  ``immediate`` (run background jobs inline, as the tests do).
- ``REDES_REDIS_URL``: e.g. ``redis://127.0.0.1:6379/0``; when set, the messaging rate limits (token buckets)
  are shared through Redis by every worker process; otherwise they are kept in the database.
- ``REDES_MESSAGING`` (``0``/``1``, default ``1``): whether ``redes serve``/``demo`` start the messaging
  dispatcher thread (inbound processing, outbox sending, cascade reminders); ``redes messaging run`` runs it
  as its own process. ``REDES_MESSAGING_INTERVAL``: seconds between the dispatcher's rounds (default 0.5).
- ``REDES_OUTBOX_LEASE`` (default 60 s): how long a worker's claim on an outbox row lasts;
  ``REDES_OUTBOX_DOUBT`` (default 120 s): how long a message whose send was cut short (a worker died mid-call)
  waits for the provider's status callback before it is sent again; ``REDES_OUTBOX_ROUND`` (default 5 s): the
  length of one sending round.
- ``REDES_PUBLIC_URL``: the address providers call back (webhooks, status callbacks), e.g.
  ``https://redes.example.gob.mx``.
"""

import os
import secrets
from pathlib import Path

import dj_database_url

from redes.paths import data_dir

BASE_DIR = Path(__file__).resolve().parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DATA_DIR = data_dir()


def _secret_key() -> str:
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = Path(os.environ.get("SECRET_KEY_FILE") or DATA_DIR / "secret_key")
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


SECRET_KEY = _secret_key()


def _field_keys() -> list[str]:
    """Keys for sensitive fields (newest first). Generated once into the data folder when none is configured."""
    if os.environ.get("REDES_FIELD_KEYS"):
        return [k.strip() for k in os.environ["REDES_FIELD_KEYS"].split(",") if k.strip()]
    key_file = Path(os.environ.get("REDES_FIELD_KEYS_FILE") or DATA_DIR / "field_keys")
    if not key_file.exists():
        import base64

        key_file.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() + "\n")
        key_file.chmod(0o600)
    return [k.strip() for k in key_file.read_text().replace(",", "\n").split() if k.strip()]


REDES_FIELD_KEYS = _field_keys()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "django_tasks",
    "django_tasks_db",
    "ninja",  # only for its static files: the API docs page works offline
    "redes.territories",
    "redes.accounts",
    "redes.liaisons",
    "redes.audit",
    "redes.registry",
    "redes.needs",
    "redes.aid",
    "redes.messaging",
    "redes.web",
    "redes.demo",
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
    "redes.audit.middleware.ChannelMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "redes.urls"
WSGI_APPLICATION = "redes.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "redes.web.context_processors.redes",
            ],
        },
    },
]

_DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'redes.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        _DATABASE_URL,
        # PostgreSQL: each server thread keeps its connection (a new one per request costs more than most
        # requests, e.g. a webhook); SQLite opens a file, which is cheap.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0 if _DATABASE_URL.startswith("sqlite") else 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("REDES_TEST_SQLITE_NAME", "")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Failed-login throttling (django-axes): lock a username+IP pair after N failures for a cool-off period.
AXES_FAILURE_LIMIT = env_int("REDES_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("REDES_LOGIN_COOLOFF_MINUTES", 15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "es-mx"
# Each language is named in itself, as language pickers do.
LANGUAGES = [("es-mx", "Español (México)"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "America/Mexico_City")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or DATA_DIR / "static")
# Vendored front-end libraries (htmx, Leaflet) live in redes/static/vendor/.
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve static files straight from the package in the embedded set-up (no collectstatic step needed).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = DATA_DIR / "media"

# Upload limits: territory files can be large, but not unbounded.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("REDES_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
REDES_MAX_IMPORT_BYTES = env_int("REDES_MAX_IMPORT_BYTES", 200 * 1024 * 1024)

# Background work (Django's Tasks API, django-tasks backport): a database queue by default, inline in tests.
_TASK_BACKENDS = {
    "database": "django_tasks_db.DatabaseBackend",
    "immediate": "django_tasks.backends.immediate.ImmediateBackend",
}
TASKS = {
    "default": {"BACKEND": _TASK_BACKENDS[os.environ.get("REDES_TASKS_BACKEND", "database")], "QUEUES": []}
}
REDES_IMPORT_DIR = DATA_DIR / "imports"
# Large imports search duplicates in a forked process while the main one writes; REDES_IMPORT_PARALLEL=0 turns
# that off (the search then runs after the write).
REDES_IMPORT_PARALLEL = env_bool("REDES_IMPORT_PARALLEL", True)

REDES_REDIS_URL = os.environ.get("REDES_REDIS_URL", "")
REDES_MESSAGING = env_bool("REDES_MESSAGING", True)
REDES_PUBLIC_URL = os.environ.get("REDES_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
REDES_TILE_URL = os.environ.get("REDES_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
REDES_TILE_ATTRIBUTION = os.environ.get("REDES_TILE_ATTRIBUTION", "&copy; OpenStreetMap contributors")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
