from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from portal.admin.dashboard import dashboard_view
from portal.ops import health, metrics

handler403 = "portal.admin.errors.permission_denied"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("healthz", health.healthz_view, name="healthz"),
    path("readyz", health.readyz_view, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    # Before the admin's own URLs, whose catch-all would take it otherwise.
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="dashboard"),
    path("admin/", admin.site.urls),
]
