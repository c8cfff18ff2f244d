"""Our customer and order ids: the ids OneOffice keys everything on, and our idempotency keys."""

import secrets

from django.core.validators import RegexValidator

MAX_LENGTH = 64
# No 0/O or 1/I, so an id read out over the phone is not misheard.
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

validate_remote_id = RegexValidator(
    r"\A[A-Za-z0-9_-]{1,64}\Z",
    "Use 1 to 64 letters (A-Z, a-z), digits, '-' or '_'; no spaces, quotes or accents.",
    code="invalid_remote_id",
)


def new_id(prefix: str) -> str:
    """A fresh id such as `C-7QK4M2XZ9P`."""
    return prefix + "-" + "".join(secrets.choice(_ALPHABET) for _ in range(10))
