"""Text as search compares it: one folding for the stored search columns and for what people
type, so "cafe" finds "Café Olé" and "BJORK" finds "Björk & Søn" on SQLite and PostgreSQL
alike (both then compare plain lower-case text)."""

from __future__ import annotations

import unicodedata

from django.db.migrations.operations.base import Operation

# Letters that Unicode does not decompose into a base letter and an accent.
_LETTERS = str.maketrans(
    {"ø": "o", "ł": "l", "đ": "d", "ð": "d", "ħ": "h", "ı": "i", "þ": "th", "æ": "ae", "œ": "oe"}
)
# A word longer than this is cut: no name or email holds one, and LIKE patterns stay small.
MAX_WORD = 64
# Words of a search that count; more are ignored rather than each costing a scan.
MAX_WORDS = 6
# Between the fields of a stored search column: no search word contains it, so a word never
# matches across two fields.
SEPARATOR = "\n"


def fold(text: str) -> str:
    """`text` without accents, in lower case, compatibility forms (ﬁ, full-width letters)
    spelled out, and runs of white space as one space."""
    text = unicodedata.normalize("NFKD", text).casefold().translate(_LETTERS)
    text = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in text if not unicodedata.combining(c)).split())


def search_column(*values: str) -> str:
    """What a search column stores for these field values."""
    return SEPARATOR.join(fold(value or "") for value in values)


def search_words(term: str) -> list[str]:
    """The words of a typed search, folded, each once, in order."""
    words: list[str] = []
    for word in fold(term).split():
        word = word[:MAX_WORD]
        if word not in words:
            words.append(word)
    return words[:MAX_WORDS]


class TrigramIndex(Operation):
    """A migration operation: on PostgreSQL, a trigram index (pg_trgm) on `column` of
    `table`, which serves LIKE '%word%'; elsewhere nothing (SQLite scans, which its tables'
    size allows). The extension is created when missing (a trusted extension since
    PostgreSQL 13: the database's owner may create it)."""

    reduces_to_sql = False
    reversible = True

    def __init__(self, *, table: str, column: str, name: str):
        self.table, self.column, self.name = table, column, name

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        quote = schema_editor.quote_name
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(self.name)} ON {quote(self.table)} "
            f"USING gin ({quote(self.column)} gin_trgm_ops)"
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(self.name)}")

    def describe(self):
        return f"Trigram index {self.name} on {self.table}.{self.column} (PostgreSQL)"

    def deconstruct(self):
        kwargs = {"table": self.table, "column": self.column, "name": self.name}
        return f"{type(self).__module__}.{type(self).__qualname__}", [], kwargs
