from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from portal.dashboard import dashboard_view

admin.site.site_header = "OneOffice reseller portal"
admin.site.site_title = "OneOffice portal"
admin.site.index_title = "Customers, orders and renewals"

handler403 = "portal.errors.permission_denied"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # Before the admin's own URLs, whose catch-all would take it otherwise.
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="dashboard"),
    path("admin/", admin.site.urls),
]
