"""What typed input must look like before it reaches the database, OneOffice or an email."""

from __future__ import annotations

import re
import unicodedata

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

# The widest integer column (a 64-bit id) and what database drivers can bind.
LARGEST_INTEGER = 2**63 - 1

# Zero-width (non-)joiners shape Persian, Indic scripts and emoji: they stay allowed.
_JOINERS = {"\u200c", "\u200d"}
_ASCII_INTEGER = re.compile(r"\A-?[0-9]+\Z")


def integer_fits(value: str) -> bool:
    """False for a number no integer column holds; True for anything else, which the field's
    own validation then judges (`abc` is reported as "enter a whole number", not here)."""
    try:
        return abs(int(value)) <= LARGEST_INTEGER
    except (TypeError, ValueError):
        return True


def _unseen(char: str) -> bool:
    """Control characters, line and paragraph breaks, and invisible formatting such as the
    right-to-left override (U+202E), which shows `txt.exe` as `exe.txt`."""
    category = unicodedata.category(char)
    return category in {"Cc", "Cs", "Zl", "Zp"} or (category == "Cf" and char not in _JOINERS)


def validate_plain_text(value: str) -> None:
    """A name as people see it: one line of visible characters, nothing hidden.

    Names go to OneOffice and into email subjects and bodies, where a newline starts a new
    header or line and a direction override reverses what follows."""
    found = sorted({f"U+{ord(char):04X}" for char in value if _unseen(char)})
    if found:
        raise ValidationError(
            "Use one line of visible characters: no line breaks, tabs, control or "
            "text-direction characters (found %(found)s).",
            code="unseen_characters",
            params={"found": ", ".join(found[:5])},
        )
    if value and all(char.isspace() or unicodedata.category(char)[0] == "M" for char in value):
        raise ValidationError("Enter at least one visible character.", code="invisible")


def one_line(text: str) -> str:
    """`text` on one line, with anything unseen shown as a space: for email subjects and lines
    built from rows stored before names were checked."""
    return " ".join("".join(" " if _unseen(char) else char for char in text).split())


def _ascii_integer(value):
    # int() also reads `1_000`, `+5`, ` 7 ` and digits of other scripts (`١٠`); a count typed
    # by a person is digits 0-9 only.
    if isinstance(value, str) and not _ASCII_INTEGER.match(value.strip()):
        raise ValidationError("Enter a whole number using the digits 0-9.", code="invalid")


class AsciiIntegerFormField(forms.IntegerField):
    def to_python(self, value):
        if isinstance(value, str) and value.strip():
            _ascii_integer(value)
        return super().to_python(value)


class AsciiPositiveIntegerField(models.PositiveIntegerField):
    """A count typed by a person: digits 0-9 only, in the form and in the model."""

    def to_python(self, value):
        if isinstance(value, str) and value.strip():
            _ascii_integer(value)
        return super().to_python(value)

    def formfield(self, form_class=None, choices_form_class=None, **kwargs):
        return super().formfield(
            form_class=form_class or AsciiIntegerFormField,
            choices_form_class=choices_form_class,
            **kwargs,
        )
