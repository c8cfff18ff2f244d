"""The daily reminder schedule: registered once, at the configured local time, never at once."""

import io
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.scheduler import scheduler
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from orders.models import ReminderRun
from portal.management.commands.setup_schedules import RENEWAL_REMINDERS, next_occurrence
from tests.factories import CustomerFactory, OrderFactory, UserFactory

AUCKLAND = ZoneInfo("Pacific/Auckland")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


@pytest.fixture(autouse=True)
def auckland(settings, monkeypatch):
    settings.TIME_ZONE = "Pacific/Auckland"
    settings.RENEWAL_REMINDER_TIME = "07:00"
    # django-q2 copies TIME_ZONE into its own settings once, at import.
    monkeypatch.setattr(Conf, "TIME_ZONE", settings.TIME_ZONE)


def setup_schedules(at: datetime) -> Schedule:
    with time_machine.travel(at, tick=False):
        call_command("setup_schedules", stdout=io.StringIO())
    return Schedule.objects.get(name=RENEWAL_REMINDERS)


def run_scheduler(at: datetime) -> None:
    with time_machine.travel(at, tick=False):
        scheduler(broker=get_broker())


@pytest.mark.django_db
def test_setup_schedules_registers_a_daily_job_at_the_next_local_reminder_time():
    schedule = setup_schedules(datetime(2027, 3, 10, 9, 0, tzinfo=AUCKLAND))

    assert schedule.func == "orders.tasks.renewal_reminders_task"
    assert schedule.schedule_type == Schedule.DAILY
    assert schedule.repeats == -1
    assert schedule.next_run == datetime(2027, 3, 11, 7, 0, tzinfo=AUCKLAND)


@pytest.mark.django_db
def test_setup_schedules_before_the_reminder_time_runs_today_not_now():
    now = datetime(2027, 3, 10, 6, 59, tzinfo=AUCKLAND)

    schedule = setup_schedules(now)

    assert schedule.next_run == datetime(2027, 3, 10, 7, 0, tzinfo=AUCKLAND)
    assert schedule.next_run > now


@pytest.mark.django_db
def test_setup_schedules_at_the_reminder_time_waits_for_tomorrow():
    schedule = setup_schedules(datetime(2027, 3, 10, 7, 0, tzinfo=AUCKLAND))

    assert schedule.next_run == datetime(2027, 3, 11, 7, 0, tzinfo=AUCKLAND)


@pytest.mark.django_db
def test_setup_schedules_twice_leaves_one_schedule():
    first = setup_schedules(datetime(2027, 3, 10, 9, 0, tzinfo=AUCKLAND))
    second = setup_schedules(datetime(2027, 3, 10, 12, 0, tzinfo=AUCKLAND))

    assert Schedule.objects.filter(name=RENEWAL_REMINDERS).count() == 1
    assert second.pk == first.pk
    assert second.next_run == first.next_run


@pytest.mark.django_db
def test_setup_schedules_moves_the_schedule_when_the_time_changes(settings):
    setup_schedules(datetime(2027, 3, 10, 9, 0, tzinfo=AUCKLAND))
    settings.RENEWAL_REMINDER_TIME = "18:30"

    schedule = setup_schedules(datetime(2027, 3, 10, 9, 5, tzinfo=AUCKLAND))

    assert Schedule.objects.filter(name=RENEWAL_REMINDERS).count() == 1
    assert schedule.next_run == datetime(2027, 3, 10, 18, 30, tzinfo=AUCKLAND)


@pytest.mark.django_db
def test_setup_schedules_refuses_a_malformed_time(settings):
    settings.RENEWAL_REMINDER_TIME = "7am"

    with pytest.raises(ImproperlyConfigured, match="HH:MM"):
        setup_schedules(datetime(2027, 3, 10, 9, 0, tzinfo=AUCKLAND))

    assert not Schedule.objects.exists()


@pytest.mark.django_db
def test_scheduled_job_does_not_fire_on_creation_then_runs_at_its_time():
    manager = UserFactory(username="amy")
    order = OrderFactory(
        active=True,
        customer=CustomerFactory(account_manager=manager),
        current_term_end=date(2027, 3, 15),
    )
    created = datetime(2027, 3, 10, 9, 0, tzinfo=AUCKLAND)
    setup_schedules(created)

    run_scheduler(created + timedelta(seconds=1))

    assert not ReminderRun.objects.exists()

    run_scheduler(datetime(2027, 3, 11, 7, 0, 5, tzinfo=AUCKLAND))

    assert ReminderRun.objects.count() == 1
    assert any(order.number in m.body for m in mail.outbox if manager.email in m.to)
    schedule = Schedule.objects.get(name=RENEWAL_REMINDERS)
    assert schedule.next_run == datetime(2027, 3, 12, 7, 0, tzinfo=AUCKLAND)


@pytest.mark.django_db
def test_scheduled_job_after_missed_days_runs_once_and_moves_to_the_next_day():
    setup_schedules(datetime(2027, 3, 10, 9, 0, tzinfo=AUCKLAND))

    run_scheduler(datetime(2027, 3, 14, 12, 0, tzinfo=AUCKLAND))
    run_scheduler(datetime(2027, 3, 14, 12, 0, 1, tzinfo=AUCKLAND))

    assert ReminderRun.objects.count() == 1
    schedule = Schedule.objects.get(name=RENEWAL_REMINDERS)
    assert schedule.next_run == datetime(2027, 3, 15, 7, 0, tzinfo=AUCKLAND)


@pytest.mark.django_db
def test_scheduled_job_keeps_its_local_time_across_a_dst_change(settings, monkeypatch):
    settings.TIME_ZONE = "America/Los_Angeles"
    monkeypatch.setattr(Conf, "TIME_ZONE", settings.TIME_ZONE)
    utc = ZoneInfo("UTC")
    # Clocks go forward at 02:00 on 14 Mar 2027 in Los Angeles: UTC-8 before, UTC-7 after.
    schedule = setup_schedules(datetime(2027, 3, 12, 8, 0, tzinfo=LOS_ANGELES))
    assert schedule.next_run == datetime(2027, 3, 13, 15, 0, tzinfo=utc)

    run_scheduler(datetime(2027, 3, 13, 7, 0, 5, tzinfo=LOS_ANGELES))

    schedule.refresh_from_db()
    assert schedule.next_run == datetime(2027, 3, 14, 14, 0, tzinfo=utc)
    assert ReminderRun.objects.count() == 1


ZONES = ["Pacific/Auckland", "America/Los_Angeles", "Europe/London", "UTC"]
YEARS = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2033, 1, 1, tzinfo=UTC))


def _offset_changes(zone: str) -> list[datetime]:
    """The instants (UTC) in YEARS at which `zone`'s clocks change, found week, day, then
    quarter hour at a time."""
    tz, changes = ZoneInfo(zone), []

    def offset(at: datetime) -> timedelta | None:
        return at.astimezone(tz).utcoffset()

    def first_change(start: datetime, step: timedelta) -> datetime:
        while offset(start + step) == offset(start):
            start += step
        return start

    week = YEARS[0]
    while week < YEARS[1]:
        if offset(week) != offset(week + timedelta(7)):
            day = first_change(week, timedelta(1))
            changes.append(first_change(day, timedelta(minutes=15)) + timedelta(minutes=15))
        week += timedelta(7)
    return changes


CHANGES = {zone: _offset_changes(zone) for zone in ZONES}


@st.composite
def occurrence_cases(draw) -> tuple[str, datetime, int, int]:
    """(zone, now, hour, minute): any moment and time of day; as often, a wall time around a
    clock change (the hour it skips or repeats), asked up to a day before it; or `now` exactly at
    the asked time."""
    kind = draw(st.sampled_from(["any", "clock change", "clock change", "exactly then"]))
    zones = [zone for zone in ZONES if CHANGES[zone]] if kind == "clock change" else ZONES
    zone = draw(st.sampled_from(zones))
    tz = ZoneInfo(zone)
    now = draw(
        st.datetimes(YEARS[0].replace(tzinfo=None), datetime(2032, 12, 31), timezones=st.just(UTC))
    )
    wall = now.astimezone(tz) + timedelta(minutes=draw(st.integers(0, 24 * 60 - 1)))
    if kind == "clock change":
        change = draw(st.sampled_from(CHANGES[zone]))
        before = (change - timedelta(minutes=1)).astimezone(tz)
        # The hour before the change, which a fall back repeats; the hour after the clocks'
        # last minute before it, which a spring forward skips.
        wall = before + timedelta(minutes=draw(st.integers(-59, 60)))
        now = change + timedelta(minutes=draw(st.integers(-25 * 60, 2 * 60)))
    elif kind == "exactly then":
        now = now.replace(second=0, microsecond=0)
        wall = now.astimezone(tz)
    return zone, now, wall.hour, wall.minute


@hypothesis_settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=occurrence_cases())
# 02:30 does not exist on 14 Mar 2027 in Los Angeles; 01:30 happens twice on 7 Nov 2027.
@example(case=("America/Los_Angeles", datetime(2027, 3, 14, 4, 0, tzinfo=UTC), 2, 30))
@example(case=("America/Los_Angeles", datetime(2027, 11, 7, 7, 0, tzinfo=UTC), 1, 30))
def test_next_occurrence_is_the_first_later_instant_at_that_local_time(settings, case):
    zone, now, hour, minute = case
    settings.TIME_ZONE = zone

    result = next_occurrence(time(hour, minute), now=now)

    local = result.astimezone(ZoneInfo(zone))
    day_before = datetime.combine(local.date() - timedelta(1), time(hour, minute), ZoneInfo(zone))
    assert day_before <= now < result
    assert result - now <= timedelta(hours=25)
    # A wall time a DST change skips runs shifted forward by the change, never earlier.
    shift = timedelta(hours=local.hour - hour, minutes=local.minute - minute)
    assert timedelta(0) <= shift <= timedelta(hours=1)
