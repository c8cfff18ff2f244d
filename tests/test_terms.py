"""Term arithmetic as OneOffice does it: calendar months and years, clamped to month end."""

import calendar
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.renewals import terms

# Any day, and as often the last four days of a month (century years included) and leap
# days: the days a month or a year on gets clamped from.
MONTH_ENDS = st.builds(
    lambda year, month, back: terms.add_months(date(year, month, 1), 1) - timedelta(days=back),
    st.one_of(st.integers(1990, 2299), st.sampled_from([2000, 2100, 2200])),
    st.integers(1, 12),
    st.integers(1, 4),
)
LEAP_DAYS = st.integers(1990, 2299).filter(calendar.isleap).map(lambda year: date(year, 2, 29))
DATES = st.one_of(
    st.dates(min_value=date(1990, 1, 1), max_value=date(2300, 12, 31)), MONTH_ENDS, LEAP_DAYS
)


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _last_day(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2027, 6, 1), 1, date(2027, 7, 1)),  # the vendor's own example
        (date(2027, 7, 1), 1, date(2027, 8, 1)),
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2100, 1, 31), 1, date(2100, 2, 28)),  # divisible by 100: not a leap year
        (date(2000, 1, 31), 1, date(2000, 2, 29)),  # divisible by 400: a leap year
        (date(2027, 3, 31), 1, date(2027, 4, 30)),
        (date(2027, 8, 31), 1, date(2027, 9, 30)),
        (date(2027, 1, 30), 1, date(2027, 2, 28)),
        (date(2027, 1, 28), 1, date(2027, 2, 28)),
        (date(2027, 11, 30), 3, date(2028, 2, 29)),
        (date(2027, 12, 15), 1, date(2028, 1, 15)),
        (date(2027, 12, 31), 1, date(2028, 1, 31)),
        (date(2027, 11, 30), 2, date(2028, 1, 30)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2028, 2, 29), 48, date(2032, 2, 29)),
        (date(2027, 5, 31), 0, date(2027, 5, 31)),
        (date(2027, 3, 31), -1, date(2027, 2, 28)),
        (date(2028, 1, 15), -1, date(2027, 12, 15)),
    ],
)
def test_add_months_moves_by_calendar_months_and_clamps_to_month_end(start, months, expected):
    assert terms.add_months(start, months) == expected


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        (date(2027, 6, 1), "monthly", date(2027, 7, 1)),
        (date(2027, 1, 31), "monthly", date(2027, 2, 28)),
        (date(2028, 1, 31), "monthly", date(2028, 2, 29)),
        (date(2027, 12, 31), "monthly", date(2028, 1, 31)),
        (date(2027, 6, 1), "yearly", date(2028, 6, 1)),
        (date(2028, 2, 29), "yearly", date(2029, 2, 28)),
        (date(2027, 2, 28), "yearly", date(2028, 2, 28)),
        (date(2027, 12, 31), "yearly", date(2028, 12, 31)),
    ],
)
def test_term_end_is_one_calendar_month_or_year_later(start, duration, expected):
    assert terms.term_end(start, duration) == expected


def test_term_end_of_consecutive_monthly_terms_continues_from_the_clamped_end():
    # Each renewal starts where the previous term ended, so a clamp carries forward.
    first = terms.term_end(date(2027, 1, 31), "monthly")
    second = terms.term_end(first, "monthly")
    assert (first, second) == (date(2027, 2, 28), date(2027, 3, 28))


def test_term_end_refuses_an_unknown_duration():
    with pytest.raises(ValueError, match="weekly"):
        terms.term_end(date(2027, 1, 1), "weekly")


@pytest.mark.parametrize(
    ("current_end", "today", "expected"),
    [
        (date(2027, 3, 1), date(2027, 2, 14), date(2027, 3, 1)),  # not expired: continues
        (date(2027, 3, 1), date(2027, 3, 1), date(2027, 3, 1)),  # ends today: continues
        (date(2027, 3, 1), date(2027, 3, 2), date(2027, 3, 2)),  # expired: starts today
        (date(2027, 3, 1), date(2027, 7, 20), date(2027, 7, 20)),
    ],
)
def test_renewal_start_continues_the_term_or_starts_today_once_expired(
    current_end, today, expected
):
    assert terms.renewal_start(current_end, today) == expected


@pytest.mark.parametrize(
    ("current_end", "today", "expected"),
    [
        (date(2027, 3, 1), date(2027, 2, 14), 15),
        (date(2027, 3, 1), date(2027, 2, 13), 16),
        (date(2028, 3, 1), date(2028, 2, 14), 16),  # Feb 29 in between
        (date(2027, 3, 1), date(2027, 3, 1), 0),
        (date(2027, 3, 1), date(2027, 3, 4), -3),
        (date(2028, 1, 5), date(2027, 12, 31), 5),
    ],
)
def test_days_left_counts_whole_days_negative_once_lapsed(current_end, today, expected):
    assert terms.days_left(current_end, today) == expected


@given(start=DATES)
def test_monthly_term_end_is_one_month_on_with_the_day_kept_or_clamped(start):
    end = terms.term_end(start, "monthly")
    assert 28 <= (end - start).days <= 31
    assert _month_index(end) == _month_index(start) + 1
    assert end.day == min(start.day, _last_day(end))


@given(start=DATES)
def test_yearly_term_end_is_one_year_on_with_the_day_kept_or_clamped(start):
    end = terms.term_end(start, "yearly")
    assert 365 <= (end - start).days <= 366
    assert (end.year, end.month) == (start.year + 1, start.month)
    assert end.day == min(start.day, _last_day(end))


@given(start=DATES, months=st.integers(min_value=-120, max_value=120))
def test_add_months_lands_in_the_right_month_on_a_valid_day(start, months):
    moved = terms.add_months(start, months)
    assert _month_index(moved) == _month_index(start) + months
    assert moved.day == min(start.day, _last_day(moved))
    assert (moved > start) == (months > 0)


@given(start=DATES, months=st.integers(min_value=-120, max_value=120))
def test_add_months_is_undone_by_moving_back_when_no_clamp_happened(start, months):
    moved = terms.add_months(start, months)
    if moved.day == start.day:
        assert terms.add_months(moved, -months) == start


@given(start=DATES, duration=st.sampled_from(["monthly", "yearly"]))
def test_term_end_is_always_after_its_start(start, duration):
    assert terms.term_end(start, duration) > start


@given(current_end=DATES, today=DATES)
def test_renewal_start_is_never_in_the_past_nor_before_the_current_end(current_end, today):
    start = terms.renewal_start(current_end, today)
    assert start >= today
    assert start >= current_end
    assert start in (today, current_end)
    assert (start == today) == (terms.days_left(current_end, today) <= 0)


@given(start=DATES)
def test_days_left_of_a_fresh_monthly_term_is_its_month_unless_clamped(start):
    end = terms.term_end(start, "monthly")
    left = terms.days_left(end, start)
    if end.day == start.day:
        assert left == _last_day(start)
    else:  # clamped to the end of a shorter month
        assert left < _last_day(start)
        assert end.day == _last_day(end)
    assert terms.days_left(end, end) == 0
    assert terms.days_left(start, end) == -left
