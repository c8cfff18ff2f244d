"""Test settings: the base settings with what a test run needs changed."""

import os

# Local defaults (sandbox, generated key) as in `make run`; production settings are tested by
# starting manage.py with DJANGO_DEBUG off (tests/test_secrets.py).
os.environ.setdefault("DJANGO_DEBUG", "on")

from portal.settings import *  # noqa: E402, F403
from portal.settings import DATABASES, Q_CLUSTER, VAR_DIR  # noqa: E402

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so threads in race tests share it; one per run, so runs can overlap.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}

# Tasks run inline; tests that need a real cluster start one themselves.
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
ONEOFFICE_TIMEOUT = 5.0
ONEOFFICE_CONNECT_TIMEOUT = 2.0
ONEOFFICE_RETRY_BACKOFF_SECONDS = 60
WHITENOISE_AUTOREFRESH = True  # no collectstatic in tests: find files on request
# Two-factor sign-in is tested where it is switched on; elsewhere a login is a password.
STAFF_2FA_REQUIRED = False
