"""Term arithmetic, as OneOffice does it: calendar months and years, clamped to month end."""

import calendar
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

MONTHLY = "monthly"
YEARLY = "yearly"


def add_months(day: date, months: int) -> date:
    """`day` moved by whole calendar months; Jan 31 + 1 month is Feb 28 (29 in leap years)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def term_end(start: date, duration: str) -> date:
    """The end of a term starting on `start`; it is also the next term's start."""
    if duration == MONTHLY:
        return add_months(start, 1)
    if duration == YEARLY:
        return add_months(start, 12)
    raise ValueError(f"unknown duration {duration!r}")


def renewal_start(current_term_end: date, today: date) -> date:
    """A renewal continues the current term, or starts today when that term has expired."""
    return max(current_term_end, today)


def days_left(current_term_end: date, today: date) -> int:
    """Whole days from `today` to the end of the term (negative once it has lapsed)."""
    return (current_term_end - today).days


def vendor_date(moment: datetime | None = None) -> date:
    """The date OneOffice's calendar shows at `moment` (now by default): its "today" decides
    when a term starts and how many days are left, so terms are dated in ONEOFFICE_TIME_ZONE."""
    zone = ZoneInfo(settings.ONEOFFICE_TIME_ZONE or settings.TIME_ZONE)
    return timezone.localtime(moment or timezone.now(), zone).date()


def renewal_window(*, today: date | None = None, days: int | None = None) -> tuple[date, date]:
    """(today, the last term end inside the renewal window), on OneOffice's calendar.

    The one definition of "due": a subscription whose term ends on or before the last day is
    one OneOffice renews now (ONEOFFICE_RENEWAL_WINDOW_DAYS; `days` for a shorter window, such
    as auto-renewal's). Lists, filters, confirmations, the reminder and auto-renewal jobs and
    the service's own check before sending all ask this.
    """
    today = vendor_date() if today is None else today
    days = settings.ONEOFFICE_RENEWAL_WINDOW_DAYS if days is None else days
    return today, today + timedelta(days=days)


def renewal_opens(term_end: date) -> date:
    """The first day, on OneOffice's calendar, on which a term ending `term_end` is due: the
    day `renewal_window` first reaches it."""
    today, last = renewal_window(today=term_end)
    return term_end - (last - today)
