"""Staff as the portal addresses them: the name it shows for a person, and the address where
an account manager's email reaches them.

Each rule comes in the forms its callers need: on a user object, on the values of a row read
in bulk, and as a filter on the users a lookup leads to.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q


def display_name(user: AbstractBaseUser | None) -> str:
    """The person's full name, or their username when they have none; empty for nobody."""
    if user is None:
        return ""
    first = getattr(user, "first_name", "")
    last = getattr(user, "last_name", "")
    return display_name_of(first, last, user.get_username())


def display_name_of(first_name: str | None, last_name: str | None, username: str | None) -> str:
    """`display_name` of a person read as values."""
    return f"{first_name or ''} {last_name or ''}".strip() or username or ""


def inbox(user: AbstractBaseUser | None) -> str:
    """Where email for this account manager goes: their address while their account is
    active; empty when nobody would read it (no manager, no address, a deactivated account),
    and their customers' emails go to managers only."""
    if user is None:
        return ""
    return inbox_of(getattr(user, "email", ""), user.is_active)


def inbox_of(email: str | None, is_active: bool | None) -> str:
    """`inbox` of an account manager read as values (all None when there is none)."""
    return email if is_active and email else ""


def without_inbox_q(user_lookup: str) -> Q:
    """Rows whose user at `user_lookup` (e.g. "customer__account_manager") has no `inbox`."""
    return (
        Q(**{f"{user_lookup}__isnull": True})
        | Q(**{f"{user_lookup}__is_active": False})
        | Q(**{f"{user_lookup}__email": ""})
    )
