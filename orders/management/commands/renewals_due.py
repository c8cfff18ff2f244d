import csv

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from orders.renewals import terms
from orders.renewals.selectors import order_list_due_for_renewal, term_end_of
from portal.core.people import display_name
from portal.core.spreadsheets import csv_cell

HEADERS = [
    "order",
    "customer",
    "product",
    "licenses",
    "term end",
    "days left",
    "account manager",
]


# A spreadsheet runs a cell starting with one of these as a formula.
class Command(BaseCommand):
    help = (
        "Print the subscriptions due for renewal (term ending within the window) or lapsed, "
        "soonest first: the list the 'Renewals due' admin page shows."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="Window in days from today (default ONEOFFICE_RENEWAL_WINDOW_DAYS).",
        )
        parser.add_argument(
            "--format", dest="output_format", choices=["table", "csv"], default="table"
        )

    def handle(self, *args, days, output_format, **options):
        if days is not None and days < 0:
            raise CommandError("--days must be 0 or more.")
        today = terms.vendor_date()
        rows = []
        for order in order_list_due_for_renewal(today=today, days=days):
            end = term_end_of(order)
            rows.append(
                [
                    order.number,
                    order.customer.name,
                    order.product,
                    order.licenses,
                    end.isoformat(),
                    terms.days_left(end, today),
                    display_name(order.customer.account_manager),
                ]
            )
        if output_format == "csv":
            writer = csv.writer(self.stdout, lineterminator="\n")
            writer.writerow(HEADERS)
            for row in rows:
                writer.writerow([csv_cell(c) for c in row])
            return
        self._table(rows, today, settings.ONEOFFICE_RENEWAL_WINDOW_DAYS if days is None else days)

    def _table(self, rows: list[list], today, days: int) -> None:
        if not rows:
            self.stdout.write(
                f"Nothing due within {days} days of {today:%Y-%m-%d}, nothing lapsed."
            )
            return
        cells = [HEADERS] + [[str(cell) for cell in row] for row in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(HEADERS))]
        numeric = {HEADERS.index("licenses"), HEADERS.index("days left")}

        def line(row: list[str]) -> str:
            return "  ".join(
                cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
                for i, cell in enumerate(row)
            ).rstrip()

        self.stdout.write(line(HEADERS))
        self.stdout.write("  ".join("-" * width for width in widths))
        for row in cells[1:]:
            self.stdout.write(line(row))
        self.stdout.write(
            f"{len(rows)} subscription{'s' if len(rows) != 1 else ''} due within {days} days of "
            f"{today:%Y-%m-%d} ({settings.TIME_ZONE}) or lapsed."
        )
