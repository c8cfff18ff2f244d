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
    zone = ZoneInfo(settings.TIME_ZONE)
    now = (now or timezone.now()).astimezone(zone)
    day: date = now.date()
    while True:
        candidate = datetime.combine(day, at, tzinfo=zone)
        # Round-tripping through UTC resolves a wall time that does not exist that day.
        candidate = candidate.astimezone(ZoneInfo("UTC")).astimezone(zone)
        if candidate > now:
            return candidate
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
        schedule, created = Schedule.objects.update_or_create(
            name=RENEWAL_REMINDERS,
            defaults={
                "func": "orders.tasks.renewal_reminders_task",
                "schedule_type": Schedule.DAILY,
                "repeats": -1,
                "next_run": next_run,
            },
        )
        verb = "Registered" if created else "Updated"
        self.stdout.write(
            f"{verb} '{schedule.name}': daily at {at:%H:%M} {settings.TIME_ZONE}, "
            f"next run {timezone.localtime(schedule.next_run):%Y-%m-%d %H:%M %Z}."
        )
        sweep, created = Schedule.objects.update_or_create(
            name=RETRY_STRANDED,
            defaults={
                "func": "portal.tasks.retry_stranded_task",
                "schedule_type": Schedule.MINUTES,
                "minutes": settings.ONEOFFICE_SWEEP_MINUTES,
                "repeats": -1,
                "next_run": timezone.now() + timedelta(minutes=settings.ONEOFFICE_SWEEP_MINUTES),
            },
        )
        verb = "Registered" if created else "Updated"
        self.stdout.write(
            f"{verb} '{sweep.name}': every {settings.ONEOFFICE_SWEEP_MINUTES} minutes."
        )
        auto, created = Schedule.objects.update_or_create(
            name=AUTO_RENEWAL,
            defaults={
                "func": "orders.tasks.auto_renew_task",
                "schedule_type": Schedule.DAILY,
                "repeats": -1,
                "next_run": next_run,
            },
        )
        verb = "Registered" if created else "Updated"
        self.stdout.write(f"{verb} '{auto.name}': daily with the reminders.")
        resume, created = Schedule.objects.update_or_create(
            name=RESUME_BATCHES,
            defaults={
                "func": "portal.batch_tasks.batch_resume_stalled_task",
                "schedule_type": Schedule.MINUTES,
                "minutes": 1,
                "repeats": -1,
                "next_run": timezone.now() + timedelta(minutes=1),
            },
        )
        verb = "Registered" if created else "Updated"
        self.stdout.write(f"{verb} '{resume.name}': every minute.")
