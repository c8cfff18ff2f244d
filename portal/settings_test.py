"""Test settings: the base settings with what a test run needs changed."""

from portal.settings import *  # noqa: F403
from portal.settings import Q_CLUSTER

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
