from django.core.management.base import BaseCommand

from orders.tasks import renewal_reminders_task


class Command(BaseCommand):
    help = (
        "Run the daily renewal reminder job now. Subscriptions already reminded for their "
        "current term are skipped, so running it again sends nothing twice."
    )

    def handle(self, *args, **options):
        self.stdout.write(renewal_reminders_task())
