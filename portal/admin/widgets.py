"""Admin widgets that hold up under crafted form data."""

from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError
from django.db import models

from portal.core.inputs import integer_fits


class SafeAutocompleteSelect(AutocompleteSelect):
    """Django's autocomplete select, minus the crash on a submitted value that is not an id.

    The widget looks up the submitted values to show them as selected; a value such as `abc` or
    a 20-digit number for an integer id made that query fail. Such values are left out: the form
    field reports them as an invalid choice all the same.
    """

    def optgroups(self, name, value, attr=None):
        remote = self.field.remote_field
        to_field = remote.model._meta.get_field(
            getattr(remote, "field_name", None) or remote.model._meta.pk.name
        )
        ids = []
        for item in value:
            try:
                to_field.to_python(item)
            except ValidationError:
                continue
            if isinstance(to_field, models.IntegerField) and not integer_fits(item):
                continue
            ids.append(item)
        return super().optgroups(name, ids, attr)


class SafeAutocompleteMixin:
    """For a ModelAdmin with `autocomplete_fields`: use the widget above for them."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = SafeAutocompleteSelect(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
