from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "OneOffice reseller portal"
admin.site.site_title = "OneOffice portal"
admin.site.index_title = "Customers, orders and renewals"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
]
