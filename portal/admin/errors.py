"""Error pages inside the admin's frame: header, sidebar and a way back, not a bare status."""

from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.timesince import timeuntil


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403: what the user may not do, with the admin's navigation to go elsewhere."""
    context = {"title": "You may not open this page", "exception": str(exception or "")}
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        context = {**admin.site.each_context(request), **context}
    response = TemplateResponse(request, "403.html", context, status=403)
    return response.render()


def locked_out(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' lockout: say for how long, on the admin's login frame."""
    now = timezone.now()
    cool_off = get_cool_off(request)
    context = {
        **admin.site.each_context(request),
        "title": "Too many failed logins",
        "cool_off": timeuntil(now + cool_off, now) if cool_off else "",
        "failure_limit": settings.AXES_FAILURE_LIMIT,
    }
    return TemplateResponse(request, "portal/lockout.html", context, status=429).render()
