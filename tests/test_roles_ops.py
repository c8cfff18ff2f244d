"""Who may reach the operations endpoints: health for anyone and without secrets, metrics
for the configured addresses or token only (never a session), enrolment for staff, the
two-factor log and the device reset for superusers, and CSRF on every form that changes."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import TwoFactorEvent
from portal.security import twofactor
from portal.security.roles import SALES
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "non-staff", "staff without groups", "sales", "manager", "superuser"]
USERS = reverse("admin:auth_user_changelist")
LOG = reverse("admin:portal_twofactorevent_changelist")
ENROL = reverse("admin:two_factor")


@pytest.fixture
def as_role(client, sales_user, manager_user, superuser):
    def login(role: str) -> Client:
        user = {
            "anonymous": None,
            "non-staff": UserFactory(username="outsider", is_staff=False),
            "staff without groups": UserFactory(username="nobody"),
            "sales": sales_user,
            "manager": manager_user,
            "superuser": superuser,
        }[role]
        if user is not None:
            if role == "non-staff":
                user.groups.add(Group.objects.get(name=SALES))
            client.force_login(user)
        return client

    return login


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", ["healthz", "readyz"])
def test_health_endpoints_answer_everyone_without_secrets(as_role, settings, role, name):
    # A broker that fails, with a password in its URL: the answer names neither.
    settings.REDIS_URL = "redis://:redis-password-9c1e@127.0.0.1:9/0"
    client = as_role(role)

    response = client.get(reverse(name))

    assert response.status_code in (200, 503)
    text = response.content.decode()
    assert '"status": ' in text
    for secret in (settings.SECRET_KEY, settings.ONEOFFICE_API_KEY, "redis-password", ":9"):
        assert secret not in text
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("role", ROLES)
def test_metrics_refuse_every_session_without_address_or_token(as_role, settings, role):
    settings.METRICS_ALLOWED_IPS = ["192.0.2.0/24"]
    settings.METRICS_TOKEN = "metrics-token-1d2e"
    client = as_role(role)

    assert client.get(reverse("metrics")).status_code == 403
    ok = client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer metrics-token-1d2e")
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("anonymous", 302),
        ("non-staff", 302),
        ("staff without groups", 200),
        ("sales", 200),
        ("manager", 200),
        ("superuser", 200),
    ],
)
def test_enrolment_page_is_for_staff(as_role, role, status):
    client = as_role(role)

    response = client.get(ENROL)

    assert response.status_code == status
    if status == 302:
        assert response.url.startswith(reverse("admin:login"))
        assert not TOTPDevice.objects.exists()


@pytest.mark.parametrize("role", ROLES)
def test_two_factor_log_and_reset_are_for_superusers(as_role, sales_user, role):
    twofactor.record(TwoFactorEvent.Kind.ENROLLED, user=sales_user)
    TOTPDevice.objects.create(user=sales_user, name="Authenticator app", confirmed=True)
    client = as_role(role)

    log = client.get(LOG)
    client.post(
        USERS, {"action": "reset_two_factor_selected", ACTION_CHECKBOX_NAME: [sales_user.pk]}
    )

    if role == "superuser":
        assert log.status_code == 200
        assert not TOTPDevice.objects.filter(user=sales_user).exists()
    else:
        assert log.status_code in (302, 403)
        assert TOTPDevice.objects.filter(user=sales_user).exists()


def test_enrolment_refuses_without_csrf_token(sales_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(sales_user)
    device = TOTPDevice.objects.create(user=sales_user, name="Authenticator app", confirmed=False)

    response = client.post(ENROL, {"device": device.pk, "code": "123456"})

    assert response.status_code == 403
    assert not TwoFactorEvent.objects.exists()


def test_reset_refuses_without_csrf_token(superuser, sales_user):
    TOTPDevice.objects.create(user=sales_user, name="Authenticator app", confirmed=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)

    response = client.post(
        USERS, {"action": "reset_two_factor_selected", ACTION_CHECKBOX_NAME: [sales_user.pk]}
    )

    assert response.status_code == 403
    assert TOTPDevice.objects.filter(user=sales_user).exists()
