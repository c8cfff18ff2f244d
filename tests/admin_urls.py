"""Admin URLs the tests post to and open."""

from django.urls import reverse


def button_url(obj, name: str) -> str:
    """The change-page button URL of provisioning action `name` on `obj`."""
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_provision", args=[obj.pk, name])


def change_url(obj) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
