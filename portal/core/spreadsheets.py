"""CSV cells that a spreadsheet shows as text."""

# Spreadsheets run a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> object:
    """A value as a CSV cell: formula-like text gets a leading apostrophe. Numbers and dates
    are ours, not user input, and stay as they are; None is an empty cell."""
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_START) else value
    return value
