"""Admins of the records the system keeps: people may look, never edit."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record kept by the system: people may look, never edit."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
