"""Management commands: the local superuser, and the sandbox command (not started here: it
blocks)."""

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command, load_command_class

from portal.management.commands.oneoffice_sandbox import Command as SandboxCommand

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSWORD = re.compile(r"with password: (\S+)")


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


def test_oneoffice_sandbox_command_loads_with_its_options(settings):
    command = load_command_class("portal", "oneoffice_sandbox")
    parser = command.create_parser("manage.py", "oneoffice_sandbox")

    defaults = parser.parse_args([])
    chosen = parser.parse_args(["--port", "9999", "--response-style", "old"])

    assert isinstance(command, SandboxCommand)
    assert defaults.port == settings.ONEOFFICE_SANDBOX_PORT
    assert defaults.response_style == "new"
    assert defaults.host == "127.0.0.1"
    assert (chosen.port, chosen.response_style) == (9999, "old")
    with pytest.raises(CommandError, match="response-style"):
        parser.parse_args(["--response-style", "newest"])
