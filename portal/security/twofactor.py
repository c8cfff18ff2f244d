"""Two-factor sign-in for staff: a code from an authenticator app (TOTP), or a recovery code.

Devices are django-otp's: one TOTP device ("Authenticator app") and one static device whose
tokens are the recovery codes, each accepted once. Every enrolment, reset, recovery-code use
and wrong code is written to `TwoFactorEvent`; wrong codes are throttled per device by
django-otp and also count towards the login lockout of django-axes, like wrong passwords.

With STAFF_2FA_REQUIRED on, `TwoFactorMiddleware` sends a signed-in staff user who has not
given a code to the login page, or to enrolment when they have no device yet.

Enrolment and a reset end every other session of the user: a session opened with the password
alone, or before a reset, cannot then enrol or use a key it saw. A key being set up belongs to
the session that asked for it (each session gets its own).
"""

from __future__ import annotations

import re
from base64 import b32encode
from importlib import import_module
from urllib.parse import urlencode

import segno
from axes.helpers import get_client_ip_address
from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import SESSION_KEY
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import redirect_to_login
from django.contrib.sessions.models import Session
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import TwoFactorEvent

APP_DEVICE = "Authenticator app"
RECOVERY_DEVICE = "Recovery codes"
_TOTP_CODE = re.compile(r"[0-9]{6}")
_DEVICE_ID = re.compile(r"[0-9]{1,18}")
# The session's own authenticator key being set up: the pk of an unconfirmed TOTPDevice.
_PENDING_KEY = "two_factor_pending_device"

Kind = TwoFactorEvent.Kind


class CodeRefused(Exception):
    """The code was not accepted; the message is written for the person signing in."""


# Service -------------------------------------------------------------------------------------


def has_device(user: AbstractBaseUser) -> bool:
    """Whether the user has finished enrolling an authenticator app."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def is_verified(user: AbstractBaseUser) -> bool:
    """Whether this session's user gave a code (django-otp's middleware sets `is_verified`)."""
    check = getattr(user, "is_verified", None)
    return bool(check and check())


def record(
    kind: str,
    *,
    user: AbstractBaseUser,
    request: HttpRequest | None = None,
    by: AbstractBaseUser | None = None,
    detail: str = "",
) -> TwoFactorEvent:
    """Write one event of the two-factor log."""
    return TwoFactorEvent.objects.create(
        kind=kind,
        user=user,
        username=user.get_username(),
        by=by,
        ip_address=get_client_ip_address(request) if request is not None else None,
        detail=detail[:200],
    )


def verify_code(*, user: AbstractBaseUser, code: str, request: HttpRequest) -> Device:
    """Check a sign-in code: six digits against the user's authenticator app, anything else
    against their recovery codes (each accepted once).

    Returns the device that accepted it. A wrong code, or any code while the device is
    throttled after earlier wrong ones, is recorded and counted as a failed login by
    django-axes, then raises `CodeRefused`.
    """
    code = "".join(code.split()).lower()
    recovery = not _TOTP_CODE.fullmatch(code)
    model = StaticDevice if recovery else TOTPDevice
    message = "Wrong code. Enter the current code from your authenticator app."
    if recovery:
        message = "Wrong code. A recovery code works once; enter one you have not used."
    with transaction.atomic():
        # Locked, so two requests cannot both use one recovery code or one time step.
        device = model.objects.select_for_update().filter(user=user, confirmed=True).first()
        accepted = False
        if device is not None:
            allowed, _ = device.verify_is_allowed()
            if not allowed:
                message = "Too many wrong codes: wait a minute, then enter the current code."
            else:
                # django-otp commits the throttling counters itself, inside this transaction.
                accepted = device.verify_token(code)
    if not accepted:
        record(Kind.CODE_FAILED, user=user, request=request, detail="sign-in")
        # The same lockout as wrong passwords: django-axes counts this as a failed login.
        user_login_failed.send(
            sender=__name__, credentials={"username": user.get_username()}, request=request
        )
        raise CodeRefused(message)
    if recovery:
        left = device.token_set.count()
        record(Kind.RECOVERY_USED, user=user, request=request, detail=f"{left} left")
    return device


def enrol(
    *, user: AbstractBaseUser, device: TOTPDevice, code: str, request: HttpRequest
) -> list[str]:
    """Confirm the user's new authenticator app with a code it shows, and give them recovery
    codes. Returns the codes, shown once. Refused when the code is wrong (recorded) or when
    another enrolment of the same user finished first."""
    code = "".join(code.split())
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user)
        if has_device(user):
            raise CodeRefused("Two-factor sign-in is already set up for your account.")
        accepted = device.verify_is_allowed()[0] and device.verify_token(code)
        if accepted:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user=user, confirmed=False).delete()
            codes = _new_recovery_codes(user)
            record(Kind.ENROLLED, user=user, request=request)
    if not accepted:
        record(Kind.CODE_FAILED, user=user, request=request, detail="enrolment")
        raise CodeRefused(
            "Wrong code. Check the time on your phone and enter the code the app shows now."
        )
    end_sessions(user, keep=request.session.session_key)
    return codes


def renew_recovery_codes(*, user: AbstractBaseUser, request: HttpRequest) -> list[str]:
    """Replace the user's recovery codes with new ones, returned to be shown once."""
    with transaction.atomic():
        codes = _new_recovery_codes(user)
        record(Kind.RECOVERY_RENEWED, user=user, request=request)
    return codes


def reset_devices(
    *, user: AbstractBaseUser, by: AbstractBaseUser, request: HttpRequest | None = None
) -> int:
    """Delete all of the user's devices (their app and recovery codes), recorded with who did
    it. With STAFF_2FA_REQUIRED on, the user must enrol again at their next sign-in. Returns
    how many devices were deleted."""
    with transaction.atomic():
        deleted = 0
        for model in (TOTPDevice, StaticDevice):
            deleted += model.objects.filter(user=user).delete()[1].get(model._meta.label, 0)
        record(Kind.RESET, user=user, request=request, by=by, detail=f"{deleted} device(s)")
    # Whoever resets their own devices keeps the session they did it from.
    own = request is not None and request.user.pk == user.pk
    end_sessions(user, keep=request.session.session_key if own else None)
    return deleted


def end_sessions(user: AbstractBaseUser, *, keep: str | None = None) -> int:
    """Sign the user out of every session but `keep`. Returns how many were ended.

    Reads the sessions in the database, so it needs one of the database session engines
    (`db`, Django's default, or `cached_db`). A request of an ended session that is still
    running cannot save that session again: Django answers it with "session interrupted".
    """
    engine = import_module(settings.SESSION_ENGINE)
    ended = 0
    sessions = Session.objects.filter(expire_date__gt=timezone.now()).exclude(session_key=keep)
    for key, data in sessions.values_list("session_key", "session_data").iterator():
        store = engine.SessionStore(session_key=key)
        if store.decode(data).get(SESSION_KEY) == str(user.pk):
            store.delete()
            ended += 1
    return ended


def _new_recovery_codes(user: AbstractBaseUser) -> list[str]:
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name=RECOVERY_DEVICE, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(settings.TWO_FACTOR_RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


# The admin login form ---------------------------------------------------------------------


class TwoFactorLoginForm(AdminAuthenticationForm):
    """The admin login: username, password and, for users with a device, their code."""

    otp_token = forms.CharField(
        label="Authentication code",
        required=False,
        max_length=32,
        help_text="Once two-factor sign-in is set up: the code your authenticator app shows, "
        "or one of your recovery codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code"}),
    )

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        if user is not None and has_device(user):
            code = cleaned.get("otp_token", "")
            if not code:
                raise forms.ValidationError(
                    "Enter the code from your authenticator app, or a recovery code.",
                    code="code_required",
                )
            try:
                device = verify_code(user=user, code=code, request=self.request)
            except CodeRefused as exc:
                raise forms.ValidationError(str(exc), code="code_refused") from None
            # django-otp's login signal handler stores it in the session: the user is verified.
            user.otp_device = device
        return cleaned


# Enrolment and recovery codes ----------------------------------------------------------------


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code shown by the app",
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("admin:index")


def _manual_key(device: TOTPDevice) -> str:
    key = b32encode(device.bin_key).decode()
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


@never_cache
def two_factor_view(request: HttpRequest) -> HttpResponse:
    """/admin/2fa/: enrol an authenticator app, or see the state of one and renew codes."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if request.method == "POST" and "logout" in request.POST:
        # The admin's own logout opens only to users who may see the admin.
        auth_logout(request)
        return HttpResponseRedirect(reverse("admin:login"))
    context = {
        **admin.site.each_context(request),
        "title": "Two-factor sign-in",
        "next": _next_url(request),
    }
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        return _enrol_view(request, context)
    if request.method == "POST":
        if not is_verified(user):
            # A password alone must not be enough to mint codes that stand in for the app.
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        codes = renew_recovery_codes(user=user, request=request)
        return TemplateResponse(request, "twofactor/codes.html", {**context, "codes": codes})
    recovery = StaticDevice.objects.filter(user=user, confirmed=True).first()
    context |= {
        "device": device,
        "verified": is_verified(user),
        "codes_left": recovery.token_set.count() if recovery else 0,
    }
    return TemplateResponse(request, "twofactor/status.html", context)


def _enrol_view(request: HttpRequest, context: dict) -> HttpResponse:
    user = request.user
    form = CodeForm()
    device = None
    if request.method == "POST":
        form = CodeForm(request.POST)
        device_id = request.POST.get("device", "")
        # Only this session's own key: ASCII digits, as str.isdigit() also accepts "¹".
        if _DEVICE_ID.fullmatch(device_id) and device_id == str(request.session.get(_PENDING_KEY)):
            device = TOTPDevice.objects.filter(pk=device_id, user=user, confirmed=False).first()
        if device is None:
            form.add_error(None, "That set-up was replaced: scan the new QR code below.")
        elif form.is_valid():
            try:
                codes = enrol(
                    user=user, device=device, code=form.cleaned_data["code"], request=request
                )
            except CodeRefused as exc:
                form.add_error("code", str(exc))
            else:
                otp_login(request, device)
                request.session.pop(_PENDING_KEY, None)
                return TemplateResponse(
                    request, "twofactor/codes.html", {**context, "codes": codes, "enrolled": True}
                )
    if device is None:
        pending = request.session.get(_PENDING_KEY)
        device = TOTPDevice.objects.filter(pk=pending, user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=APP_DEVICE, confirmed=False)
        request.session[_PENDING_KEY] = device.pk
    context |= {
        "form": form,
        "device": device,
        "qr_svg": segno.make(device.config_url, error="m").svg_inline(scale=5, border=2),
        "manual_key": _manual_key(device),
        "required": settings.STAFF_2FA_REQUIRED,
    }
    return TemplateResponse(request, "twofactor/enrol.html", context)


# The gate ----------------------------------------------------------------------------------


class TwoFactorMiddleware:
    """With STAFF_2FA_REQUIRED on, a signed-in staff user who has not given a code may only
    sign in (with one) or out; one without a device may only enrol or sign out."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.STAFF_2FA_REQUIRED:
            response = self._gate(request)
            if response is not None:
                return response
        return self.get_response(request)

    def _gate(self, request: HttpRequest) -> HttpResponse | None:
        path = request.path_info
        static = "/" + settings.STATIC_URL.lstrip("/")
        if path.startswith(static) or path in _ungated_paths():
            return None
        user = request.user
        if not (user.is_authenticated and user.is_staff) or is_verified(user):
            return None
        login = reverse("admin:login")
        if path == reverse("admin:logout"):
            return None
        if has_device(user):
            return None if path == login else redirect_to_login(request.get_full_path(), login)
        enrol = reverse("admin:two_factor")
        if path == enrol:
            return None
        return HttpResponseRedirect(f"{enrol}?{urlencode({'next': request.get_full_path()})}")


def _ungated_paths() -> set[str]:
    return {reverse("healthz"), reverse("readyz"), reverse("metrics")}
