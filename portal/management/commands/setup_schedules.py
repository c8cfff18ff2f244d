from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand
from django.utils import timezone
from django_q.models import Schedule

RENEWAL_REMINDERS = "renewal reminders"
RETRY_STRANDED = "retry stranded provisioning calls"
AUTO_RENEWAL = "auto-renewal"
RESUME_BATCHES = "resume stalled batches"


def parse_local_time(value: str) -> time:
    """RENEWAL_REMINDER_TIME, "HH:MM" in DJANGO_TIME_ZONE."""
    try:
        hours, minutes = (int(part) for part in value.split(":"))
        return time(hours, minutes)
    except ValueError:
        raise ImproperlyConfigured(
            f"RENEWAL_REMINDER_TIME must be HH:MM (24-hour), not {value!r}."
        ) from None


def next_occurrence(at: time, *, now: datetime | None = None) -> datetime:
    """The first instant strictly after `now` whose local time (DJANGO_TIME_ZONE) is `at`.

    A local time skipped by a DST change runs at the same wall time shifted forward.
    """
    zone, utc = ZoneInfo(settings.TIME_ZONE), ZoneInfo("UTC")
    # Compared as instants: aware datetimes of one zone compare by wall time, which gets the
    # hour a fall back repeats wrong.
    now = (now or timezone.now()).astimezone(utc)
    day: date = now.astimezone(zone).date()
    while True:
        # The earlier of a repeated wall time first. Through UTC, a wall time that does not
        # exist that day resolves to the same wall time shifted forward.
        for fold in (0, 1):
            local = datetime.combine(day, at, tzinfo=zone).replace(fold=fold)
            candidate = local.astimezone(utc)
            if candidate > now:
                return candidate.astimezone(zone)
        day += timedelta(days=1)


class Command(BaseCommand):
    help = (
        "Register the daily renewal reminder job with django-q2 at RENEWAL_REMINDER_TIME "
        "(DJANGO_TIME_ZONE), and the sweep that retries provisioning calls stranded by a dead "
        "process. Safe to run again: it updates the schedules, and moves the job when the time "
        "setting changed. Neither runs on creation, only at its next occurrence."
    )

    def handle(self, *args, **options):
        at = parse_local_time(settings.RENEWAL_REMINDER_TIME)
        # Always the next occurrence, never now: a schedule due in the past would fire as soon
        # as the cluster starts. Missed days need no replay; the next run reminds what is due.
        next_run = next_occurrence(at)
        self._register(
            RENEWAL_REMINDERS,
            "orders.tasks.renewal_reminders_task",
            f"daily at {at:%H:%M} {settings.TIME_ZONE}, "
            f"next run {timezone.localtime(next_run):%Y-%m-%d %H:%M %Z}.",
            next_run=next_run,
        )
        minutes = settings.ONEOFFICE_SWEEP_MINUTES
        self._register(
            RETRY_STRANDED,
            "portal.tasks.retry_stranded_task",
            f"every {minutes} minutes.",
            minutes=minutes,
        )
        self._register(
            AUTO_RENEWAL,
            "orders.tasks.auto_renew_task",
            "daily with the reminders.",
            next_run=next_run,
        )
        self._register(
            RESUME_BATCHES,
            "portal.tasks.batch_resume_stalled_task",
            "every minute.",
            minutes=1,
        )

    def _register(
        self, name: str, func: str, when: str, *, next_run: datetime | None = None, minutes: int = 0
    ) -> None:
        """Create or update one schedule, daily from `next_run` or every `minutes`, and say so."""
        if minutes:
            timing = {
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "next_run": timezone.now() + timedelta(minutes=minutes),
            }
        else:
            timing = {"schedule_type": Schedule.DAILY, "next_run": next_run}
        _, created = Schedule.objects.update_or_create(
            name=name, defaults={"func": func, "repeats": -1, **timing}
        )
        verb = "Registered" if created else "Updated"
        self.stdout.write(f"{verb} '{name}': {when}")
