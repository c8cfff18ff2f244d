"""Login throttling behind a proxy: lockouts are keyed on the address the proxy saw, so a
forged X-Forwarded-For can neither lock out someone else nor get its sender out of a lockout."""

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.urls import reverse

from portal.security.proxies import client_address_settings

PROXY = "10.0.0.2"
ATTACKER = "203.0.113.66"
VICTIM = "198.51.100.7"
RIGHT = "correct horse battery staple"


@pytest.fixture
def proxies(settings):
    def behind(count: int) -> None:
        for name, value in client_address_settings(count).items():
            setattr(settings, name, value)

    return behind


def _login(client, password: str, **meta):
    return client.post(
        reverse("admin:login"),
        {"username": "sally", "password": password, "next": reverse("admin:index")},
        **meta,
    )


@pytest.mark.django_db
def test_behind_one_proxy_a_forged_forwarded_for_locks_out_only_its_sender(
    client, sales_user, proxies
):
    proxies(1)
    # The attacker claims the victim's address; the proxy appends the attacker's own.
    for _ in range(5):
        _login(
            client,
            "wrong",
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR=f"{VICTIM}, {ATTACKER}",
        )

    victim = _login(client, RIGHT, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=VICTIM)
    client.logout()
    attacker = _login(
        client, RIGHT, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"192.0.2.1, {ATTACKER}"
    )

    assert victim.status_code == 302
    assert attacker.status_code == 429


@pytest.mark.django_db
def test_behind_two_proxies_the_client_is_the_second_address_from_the_right(
    client, sales_user, proxies
):
    proxies(2)
    for _ in range(5):
        _login(
            client,
            "wrong",
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR=f"{VICTIM}, {ATTACKER}, 10.0.0.1",
        )

    victim = _login(client, RIGHT, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{VICTIM}, 10.0.0.1")
    client.logout()
    attacker = _login(
        client, RIGHT, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{ATTACKER}, 10.0.0.1"
    )

    assert victim.status_code == 302
    assert attacker.status_code == 429


@pytest.mark.django_db
def test_without_a_proxy_the_forwarded_for_header_is_ignored(client, sales_user, proxies):
    proxies(0)
    # A new made-up address each time does not get the sender out of its lockout...
    for i in range(5):
        _login(client, "wrong", REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    attacker = _login(client, RIGHT, REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR="192.0.2.99")
    # ...and claiming the attacker's address does not lock out anyone else.
    victim = _login(client, RIGHT, REMOTE_ADDR=VICTIM, HTTP_X_FORWARDED_FOR=ATTACKER)

    assert attacker.status_code == 429
    assert victim.status_code == 302


@pytest.mark.parametrize(
    ("count", "expected"),
    [(None, "None ('REMOTE_ADDR',)"), ("2", "1 ('HTTP_X_FORWARDED_FOR', 'REMOTE_ADDR')")],
)
def test_proxy_count_comes_from_the_environment(count, expected):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    shown = "from django.conf import settings as s; " + (
        "print(s.AXES_IPWARE_PROXY_COUNT, s.AXES_IPWARE_META_PRECEDENCE_ORDER)"
    )

    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", shown],
        cwd=settings.BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "portal.settings", "DJANGO_DEBUG": "on"}
        | ({"DJANGO_PROXY_COUNT": count} if count else {}),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.stdout.strip().splitlines()[-1] == expected, result.stderr
