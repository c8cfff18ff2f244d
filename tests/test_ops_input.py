"""Crafted input to the operations endpoints: never a 500, never an off-site redirect, never a
device confirmed or a user signed in by garbage; production turns 2FA and JSON logs on."""

from urllib.parse import urlparse

import pytest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.test_secrets import _manage

RANDOM = hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
anything = st.one_of(
    st.text(max_size=80),
    st.integers().map(str),
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "999999999999999999999",
            "//evil.example/",
            "https://evil.example/x",
            "/admin/",
            "javascript:alert(1)",
            "\\\\evil.example",
            "%00",
            "000000",
            "123 456",
        ]
    ),
)
ENROL = reverse("admin:two_factor")


def _has_nul(*values: str) -> bool:
    return any("\x00" in value for value in values)


@pytest.mark.django_db
@RANDOM
@given(device=anything, code=anything, next_url=anything)
def test_random_enrolment_input(client, sales_user, settings, device, code, next_url):
    settings.STAFF_2FA_REQUIRED = True
    client.force_login(sales_user)

    response = client.post(ENROL, {"device": device, "code": code, "next": next_url})

    if _has_nul(device, code, next_url):
        assert response.status_code == 400  # refused before any view, with a sentence
        return
    assert response.status_code == 200
    assert not TOTPDevice.objects.filter(confirmed=True).exists()
    assert urlparse(response.context["next"]).netloc == ""


@pytest.mark.django_db
@RANDOM
@given(username=anything, password=anything, code=anything)
def test_random_login_input(client, sales_user, settings, username, password, code):
    settings.STAFF_2FA_REQUIRED = True
    TOTPDevice.objects.get_or_create(user=sales_user, name="Authenticator app", confirmed=True)

    response = client.post(
        reverse("admin:login"), {"username": username, "password": password, "otp_token": code}
    )

    assert response.status_code in ((400,) if _has_nul(username, password, code) else (200, 429))
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
@RANDOM
@given(header=st.text(max_size=200), request_id=st.text(max_size=200))
def test_random_metrics_and_request_id_headers(client, settings, header, request_id):
    settings.METRICS_ALLOWED_IPS = []
    settings.METRICS_TOKEN = "metrics-token-77"

    try:
        response = client.get(
            reverse("metrics"), HTTP_AUTHORIZATION=header, HTTP_X_REQUEST_ID=request_id
        )
    except ValueError:
        # The test client itself refuses header values no server would pass on.
        return

    assert response.status_code == 403
    assert response["X-Request-ID"].isprintable() and len(response["X-Request-ID"]) <= 100


def test_production_turns_on_two_factor_and_json_logs():
    code = "from django.conf import settings as s; print(s.STAFF_2FA_REQUIRED, s.LOG_FORMAT)"

    result = _manage("shell", "--no-imports", "-c", code)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "json"]


def test_production_can_turn_two_factor_off_explicitly():
    code = "from django.conf import settings as s; print(s.STAFF_2FA_REQUIRED)"

    result = _manage("shell", "--no-imports", "-c", code, STAFF_2FA_REQUIRED="off")

    assert result.stdout.split() == ["False"]


def test_production_with_the_example_files_empty_values_keeps_the_defaults():
    code = "from django.conf import settings as s; print(s.STAFF_2FA_REQUIRED, s.LOG_FORMAT)"
    empty = {"STAFF_2FA_REQUIRED": "", "LOG_FORMAT": "", "LOG_REQUESTS": ""}

    result = _manage("shell", "--no-imports", "-c", code, **empty)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "json"]
