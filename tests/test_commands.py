"""Management commands: the local superuser, and the sandbox command run as a process."""

import json
import os
import re
import signal
import subprocess
import sys
from io import StringIO

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSWORD = re.compile(r"with password: (\S+)")
COMMAND_KEY = "command-test-key-7f3a9c"
ADMIN = {"email": "admin@acme.example", "phone": "111111111", "displayName": "Isa Aswath"}


def _run(*args) -> str:
    out = StringIO()
    call_command("ensure_superuser", *args, stdout=out)
    return out.getvalue()


def test_ensure_superuser_creates_one_with_a_generated_password_shown_once():
    output = _run()

    [password] = PASSWORD.findall(output)
    user = User.objects.get()
    assert (user.username, user.is_superuser, user.is_staff) == ("admin", True, True)
    assert user.check_password(password)
    assert len(password) >= 16
    assert "shown only once" in output


def test_ensure_superuser_generates_a_different_password_each_time():
    first = PASSWORD.findall(_run())[0]
    User.objects.all().delete()

    second = PASSWORD.findall(_run())[0]

    assert first != second


def test_ensure_superuser_second_run_creates_nothing_and_prints_no_password():
    first = _run()
    password = PASSWORD.findall(first)[0]

    second = _run()

    assert User.objects.count() == 1
    assert "password:" not in second
    assert password not in second
    assert "exists already" in second
    assert User.objects.get().check_password(password)


def test_ensure_superuser_takes_username_and_email():
    _run("--username", "boss", "--email", "boss@reseller.example")

    user = User.objects.get()
    assert (user.username, user.email) == ("boss", "boss@reseller.example")


def test_ensure_superuser_leaves_an_existing_superuser_alone(superuser):
    output = _run()

    assert list(User.objects.values_list("username", flat=True)) == [superuser.username]
    assert not PASSWORD.search(output)


def test_ensure_superuser_ignores_staff_who_are_not_superusers(sales_user):
    output = _run()

    assert User.objects.filter(is_superuser=True).count() == 1
    assert PASSWORD.search(output)


def _sandbox_command(*args: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "ONEOFFICE_API_KEY": COMMAND_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "oneoffice_sandbox", "--port", "0", *args],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _rpc(url: str, method: str, params: dict, key: str = COMMAND_KEY) -> requests.Response:
    return requests.request(
        "GET", url, json={"method": method, "params": params}, headers={"x-api-key": key}, timeout=5
    )


def test_oneoffice_sandbox_command_serves_the_api_with_the_options_given(tmp_path):
    state = tmp_path / "sandbox.json"
    process = _sandbox_command("--state", str(state), "--response-style", "old")
    try:
        started = process.stdout.readline()
        url = re.search(r"listening on (\S+) \(state: (.+)\)", started)[1]
        created = _rpc(url, "createCustomer", {"id": "C-1", "name": "Acme", "admin": ADMIN})
        wrong_key = _rpc(url, "createCustomer", {"id": "C-2", "name": "B", "admin": ADMIN}, "x")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)

    assert f"(state: {state})" in started
    assert created.status_code == 200
    # --response-style old: integer ids, no onboarding url.
    assert isinstance(created.json()["id"], int) and "url" not in created.json()
    assert wrong_key.status_code in (401, 403)
    assert list(json.loads(state.read_text())["customers"]) == ["C-1"]
    assert process.returncode == 0, process.stderr.read()


def test_oneoffice_sandbox_command_defaults_and_refuses_an_unknown_style(tmp_path):
    state = tmp_path / "sandbox.json"
    process = _sandbox_command("--state", str(state))
    try:
        url = re.search(r"listening on (\S+)", process.stdout.readline())[1]
        created = _rpc(url, "createCustomer", {"id": "C-1", "name": "Acme", "admin": ADMIN})
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    refused = _sandbox_command("--response-style", "newest")
    refused.wait(timeout=20)

    assert url.startswith("http://127.0.0.1:")
    # The new style by default: string ids and an onboarding url.
    assert isinstance(created.json()["id"], str) and created.json()["url"]
    assert refused.returncode != 0
    assert "response-style" in refused.stderr.read()
