"""Two-factor sign-in for staff: login with and without a device, wrong and reused codes,
lockout, the enrolment gate and the superusers' reset, all through the real admin pages."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import TwoFactorEvent
from portal.security import twofactor

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
LOGIN = reverse("admin:login")
INDEX = reverse("admin:index")
ENROL = reverse("admin:two_factor")
ORDERS = reverse("admin:orders_order_changelist")
START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def required(settings):
    settings.STAFF_2FA_REQUIRED = True


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def code_for(device: TOTPDevice, at: datetime | None = None) -> str:
    """The code the user's app shows now (or at `at`), computed from the device's own key."""
    if at is not None:
        with time_machine.travel(at, tick=False):
            return code_for(device)
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    return f"{code:06d}"


def enrolled(user) -> tuple[TOTPDevice, list[str]]:
    device = TOTPDevice.objects.create(user=user, name=twofactor.APP_DEVICE, confirmed=True)
    codes = twofactor._new_recovery_codes(user)
    return device, codes


def login(client, code: str = "", *, username: str = "sally", password: str = PASSWORD):
    data = {"username": username, "password": password, "next": INDEX}
    if code:
        data["otp_token"] = code
    return client.post(LOGIN, data)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def errors(response) -> str:
    return " ".join(response.context["form"].non_field_errors()) if response.context else ""


# Login ---------------------------------------------------------------------------------------


def test_login_with_device_and_current_code_opens_the_admin(client, sales_user, clock):
    device, _ = enrolled(sales_user)

    response = login(client, code_for(device))

    assert response.status_code == 302 and response.url == INDEX
    assert client.get(ORDERS).status_code == 200
    assert client.session["otp_device_id"] == device.persistent_id


def test_login_with_device_but_no_code_is_refused(client, sales_user, clock):
    enrolled(sales_user)

    response = login(client)

    assert response.status_code == 200
    assert "Enter the code from your authenticator app" in errors(response)
    assert not signed_in(client)
    assert not TwoFactorEvent.objects.exists()


def test_login_with_a_wrong_code_is_refused_and_recorded(client, sales_user, clock):
    device, _ = enrolled(sales_user)
    wrong = f"{(int(code_for(device)) + 1) % 1_000_000:06d}"

    response = login(client, wrong)

    assert response.status_code == 200
    assert "Wrong code" in errors(response)
    assert not signed_in(client)
    event = TwoFactorEvent.objects.get()
    assert (event.kind, event.user, event.ip_address) == ("code-failed", sales_user, "127.0.0.1")


def test_code_from_another_time_step_is_refused(client, sales_user, clock):
    device, _ = enrolled(sales_user)

    response = login(client, code_for(device, START - timedelta(minutes=5)))

    assert "Wrong code" in errors(response)
    assert not signed_in(client)


def test_same_code_is_not_accepted_twice(client, sales_user, clock):
    device, _ = enrolled(sales_user)
    code = code_for(device)
    assert login(client, code).status_code == 302
    client.logout()

    response = login(client, code)

    assert "Wrong code" in errors(response)
    assert not signed_in(client)


def test_wrong_password_with_right_code_is_refused(client, sales_user, clock):
    device, _ = enrolled(sales_user)

    response = login(client, code_for(device), password="wrong password")

    assert response.status_code == 200
    assert not signed_in(client)


def test_login_without_a_device_is_sent_to_enrolment_before_anything_else(client, sales_user):
    response = login(client)

    assert response.status_code == 302
    assert signed_in(client)
    for url in (INDEX, ORDERS, reverse("dashboard")):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(ENROL + "?next=")
    page = client.get(ENROL)
    assert page.status_code == 200
    assert "<svg" in page.content.decode()
    assert re.search(r'id="manual-key">([A-Z2-7]{4} ?)+<', page.content.decode())


def test_login_unchanged_when_not_required_and_no_device(client, sales_user, settings):
    settings.STAFF_2FA_REQUIRED = False

    response = login(client)

    assert response.status_code == 302
    assert client.get(ORDERS).status_code == 200


def test_device_still_asked_for_when_not_required(client, sales_user, settings, clock):
    settings.STAFF_2FA_REQUIRED = False
    device, _ = enrolled(sales_user)

    assert "Enter the code" in errors(login(client))
    assert login(client, code_for(device)).status_code == 302


def test_session_without_code_is_sent_to_login_when_user_has_a_device(client, sales_user):
    # A session from before 2FA was required, or a forced login, never opens admin pages.
    enrolled(sales_user)
    client.force_login(sales_user)

    response = client.get(ORDERS)

    assert response.status_code == 302
    assert response.url.startswith(LOGIN)


# Recovery codes ------------------------------------------------------------------------------


def test_recovery_code_works_once(client, sales_user, clock):
    _, codes = enrolled(sales_user)

    first = login(client, codes[0].upper())

    assert first.status_code == 302
    assert client.get(ORDERS).status_code == 200
    client.logout()
    second = login(client, codes[0])
    assert "A recovery code works once" in errors(second)
    assert not signed_in(client)
    assert StaticDevice.objects.get(user=sales_user).token_set.count() == len(codes) - 1
    kinds = list(TwoFactorEvent.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["recovery-used", "code-failed"]


# Throttling and lockout ----------------------------------------------------------------------


def test_wrong_codes_are_throttled_by_the_device(client, sales_user, clock):
    device, _ = enrolled(sales_user)
    login(client, "000000" if code_for(device) != "000000" else "111111")

    # Within the back-off, even the right code is refused.
    response = login(client, code_for(device))

    assert "Too many wrong codes" in errors(response)
    assert not signed_in(client)
    clock.shift(timedelta(seconds=31))
    assert login(client, code_for(device)).status_code == 302


def test_lockout_after_repeated_wrong_codes(client, sales_user, settings, clock):
    device, _ = enrolled(sales_user)
    assert settings.AXES_FAILURE_LIMIT == 5
    statuses = []
    for _ in range(5):
        # Past the device's back-off each time: the lockout below is the login lockout's.
        clock.shift(timedelta(minutes=2))
        wrong = f"{(int(code_for(device)) + 7) % 1_000_000:06d}"
        statuses.append(login(client, wrong).status_code)

    clock.shift(timedelta(minutes=2))
    response = login(client, code_for(device))

    assert statuses[:4] == [200] * 4 and statuses[4] in (200, 429)
    assert response.status_code == 429
    assert not signed_in(client)
    assert TwoFactorEvent.objects.filter(kind="code-failed").count() == 5


def test_four_wrong_codes_still_let_the_right_code_in(client, sales_user, clock):
    device, _ = enrolled(sales_user)
    for _ in range(4):
        clock.shift(timedelta(minutes=2))
        login(client, f"{(int(code_for(device)) + 7) % 1_000_000:06d}")

    clock.shift(timedelta(minutes=2))
    response = login(client, code_for(device))

    assert response.status_code == 302
    assert signed_in(client)


# Enrolment -----------------------------------------------------------------------------------


def _enrolment_device(client) -> TOTPDevice:
    page = client.get(ENROL).content.decode()
    pk = re.search(r'name="device" value="(\d+)"', page).group(1)
    return TOTPDevice.objects.get(pk=pk)


def test_enrolment_with_the_apps_code_turns_2fa_on(client, sales_user, clock):
    client.force_login(sales_user)
    device = _enrolment_device(client)
    assert not device.confirmed

    response = client.post(ENROL, {"device": device.pk, "code": code_for(device), "next": ORDERS})

    assert response.status_code == 200
    codes = re.findall(r"<li>([a-z2-7]{8})</li>", response.content.decode())
    assert len(codes) == 10
    device.refresh_from_db()
    assert device.confirmed
    assert set(StaticDevice.objects.get(user=sales_user).token_set.values_list("token", flat=True))
    assert client.get(ORDERS).status_code == 200
    assert TwoFactorEvent.objects.get().kind == "enrolled"
    # The next sign-in asks for the code.
    client.logout()
    clock.shift(timedelta(seconds=30))
    assert "Enter the code" in errors(login(client))
    assert login(client, code_for(device)).status_code == 302


def test_enrolment_with_a_wrong_code_is_refused_and_recorded(client, sales_user, clock):
    client.force_login(sales_user)
    device = _enrolment_device(client)
    wrong = f"{(int(code_for(device)) + 1) % 1_000_000:06d}"

    response = client.post(ENROL, {"device": device.pk, "code": wrong})

    assert "Wrong code" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert client.get(ORDERS).status_code == 302
    event = TwoFactorEvent.objects.get()
    assert (event.kind, event.detail) == ("code-failed", "enrolment")


def test_enrolment_refuses_another_users_device(client, sales_user, manager_user, clock):
    client.force_login(manager_user)
    theirs = _enrolment_device(client)
    client.force_login(sales_user)

    response = client.post(ENROL, {"device": theirs.pk, "code": code_for(theirs)})

    assert "scan the new QR code" in response.content.decode()
    theirs.refresh_from_db()
    assert not theirs.confirmed
    assert not twofactor.has_device(sales_user)


def test_enrolment_shows_the_same_key_in_two_tabs(client, sales_user):
    client.force_login(sales_user)

    assert _enrolment_device(client) == _enrolment_device(client)


def test_new_recovery_codes_need_a_verified_session(client, sales_user, clock):
    device, codes = enrolled(sales_user)
    client.force_login(sales_user)

    client.post(ENROL)

    tokens = StaticDevice.objects.get(user=sales_user).token_set.values_list("token", flat=True)
    assert set(tokens) == set(codes)
    assert login(client, code_for(device)).status_code == 302
    response = client.post(ENROL)
    new = re.findall(r"<li>([a-z2-7]{8})</li>", response.content.decode())
    assert len(new) == 10 and not set(new) & set(codes)
    assert TwoFactorEvent.objects.filter(kind="recovery-renewed").count() == 1


# Reset by a superuser ------------------------------------------------------------------------


def _reset(client, *users):
    return client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "reset_two_factor_selected", ACTION_CHECKBOX_NAME: [u.pk for u in users]},
    )


def test_superuser_resets_a_users_devices(client, sales_user, superuser, clock):
    enrolled(superuser)
    root_device = TOTPDevice.objects.get(user=superuser)
    enrolled(sales_user)
    assert login(client, code_for(root_device), username="root").status_code == 302

    response = _reset(client, sales_user)

    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=sales_user).exists()
    assert not StaticDevice.objects.filter(user=sales_user).exists()
    event = TwoFactorEvent.objects.get(kind="reset")
    assert (event.user, event.by) == (sales_user, superuser)
    # Sales signs in with the password alone and is sent to enrol again.
    other = client.__class__()
    assert login(other).status_code == 302
    assert other.get(ORDERS).url.startswith(ENROL)


def test_only_superusers_may_reset(client, sales_user, manager_user, settings):
    settings.STAFF_2FA_REQUIRED = False
    enrolled(manager_user)
    # Even with every permission on users, the action is not theirs.
    sales_user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_user", "change_user"])
    )
    client.force_login(sales_user)

    _reset(client, manager_user)

    assert TOTPDevice.objects.filter(user=manager_user).exists()
    assert not TwoFactorEvent.objects.exists()


def test_two_factor_log_is_for_superusers_only(client, sales_user, superuser, settings):
    settings.STAFF_2FA_REQUIRED = False
    twofactor.record(TwoFactorEvent.Kind.RESET, user=sales_user, by=superuser)
    url = reverse("admin:portal_twofactorevent_changelist")

    client.force_login(sales_user)
    assert client.get(url).status_code == 403
    client.force_login(superuser)
    assert client.get(url).status_code == 200


def test_admin_site_itself_refuses_a_session_without_code(rf, sales_user):
    # Even without the middleware in front, no admin page opens on a password alone.
    from django.contrib import admin
    from django.contrib.sessions.backends.db import SessionStore
    from django_otp.middleware import OTPMiddleware

    request = rf.get(ORDERS)
    request.user = sales_user
    request.session = SessionStore()
    OTPMiddleware(lambda r: None)(request)

    assert not admin.site.has_permission(request)


def test_enrolment_page_lets_the_user_log_out(client, sales_user):
    client.force_login(sales_user)
    assert 'name="logout"' in client.get(ENROL).content.decode()

    response = client.post(ENROL, {"logout": "1"})

    assert response.url == LOGIN
    assert not signed_in(client)


def test_codes_are_not_kept_in_the_lockout_records(client, sales_user, clock):
    from axes.models import AccessAttempt

    device, _ = enrolled(sales_user)
    wrong = f"{(int(code_for(device)) + 3) % 1_000_000:06d}"

    login(client, wrong)

    attempt = AccessAttempt.objects.get()
    assert attempt.failures_since_start == 1
    assert wrong not in attempt.post_data and PASSWORD not in attempt.post_data


# Other sessions of the same user -------------------------------------------------------------


def _key_shown(client) -> bytes:
    """The key an enrolment page shows under its QR code, as the person reads it."""
    from base64 import b32decode

    return b32decode(client.get(ENROL).context["manual_key"].replace(" ", ""))


def _code_from_key(key: bytes) -> str:
    return f"{totp(key, step=30, t0=0, digits=6):06d}"


def test_a_second_session_cannot_use_the_pending_key_of_the_first(sales_user, clock):
    first, second = Client(), Client()
    assert login(first).status_code == 302
    assert login(second).status_code == 302
    seen_by_second = _key_shown(second)
    device = _enrolment_device(first)

    response = first.post(ENROL, {"device": device.pk, "code": code_for(device)})

    assert "recovery codes" in response.content.decode().lower()
    assert first.get(ORDERS).status_code == 200
    # The second session was ended, and the key it saw signs nobody in.
    assert not signed_in(second)
    assert second.get(ORDERS).url.startswith(LOGIN)
    clock.shift(timedelta(seconds=30))
    response = login(second, _code_from_key(seen_by_second))
    assert "Wrong code" in errors(response)
    assert not signed_in(second)
    clock.shift(timedelta(seconds=30))
    assert login(second, code_for(device)).status_code == 302


def test_each_session_gets_its_own_pending_key(sales_user):
    first, second = Client(), Client()
    first.force_login(sales_user)
    second.force_login(sales_user)

    assert _key_shown(first) != _key_shown(second)
    assert _key_shown(first) == _key_shown(first)


def test_a_session_cannot_enrol_with_the_pending_key_of_another(sales_user, clock):
    first, second = Client(), Client()
    first.force_login(sales_user)
    second.force_login(sales_user)
    theirs = _enrolment_device(first)
    _enrolment_device(second)

    response = second.post(ENROL, {"device": theirs.pk, "code": code_for(theirs)})

    assert "scan the new QR code" in response.content.decode()
    assert not twofactor.has_device(sales_user)


def test_reset_ends_every_session_of_the_user(sales_user, superuser, clock):
    device, _ = enrolled(sales_user)
    enrolled(superuser)
    admin_client, before = Client(), Client()
    assert login(before, code_for(device)).status_code == 302
    password_only = Client()
    password_only.force_login(sales_user)
    assert before.get(ORDERS).status_code == 200
    assert login(admin_client, code_for(TOTPDevice.objects.get(user=superuser)), username="root")

    _reset(admin_client, sales_user)

    # Neither session opened before the reset may enrol a new authenticator.
    for session in (before, password_only):
        assert not signed_in(session)
        assert session.get(ENROL).url.startswith(LOGIN)
    assert not TOTPDevice.objects.filter(user=sales_user).exists()
    # The superuser who reset stays signed in; the user signs in again with the password.
    assert admin_client.get(ORDERS).status_code == 200
    assert login(before).status_code == 302
    assert before.get(ORDERS).url.startswith(ENROL)
