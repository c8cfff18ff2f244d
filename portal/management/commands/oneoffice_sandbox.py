import contextlib

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.oneoffice.sandbox import Sandbox


class Command(BaseCommand):
    help = "Run the built-in OneOffice sandbox: a local stand-in for the vendor's API."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.ONEOFFICE_SANDBOX_PORT)
        parser.add_argument(
            "--state",
            default=str(settings.VAR_DIR / "sandbox.json"),
            help="File that keeps the sandbox's customers and orders across restarts.",
        )
        parser.add_argument(
            "--response-style",
            choices=["old", "new"],
            default="new",
            help="createCustomer reply: integer ids (old page) or string ids with a url (new).",
        )

    def handle(self, *args, **options):
        sandbox = Sandbox(
            api_key=settings.ONEOFFICE_API_KEY,
            state_path=options["state"],
            renewal_window_days=settings.ONEOFFICE_RENEWAL_WINDOW_DAYS,
            tz=settings.TIME_ZONE,
            host=options["host"],
            port=options["port"],
            response_style=options["response_style"],
        )
        self.stdout.write(
            f"OneOffice sandbox listening on {sandbox.url} (state: {options['state']})"
        )
        with contextlib.suppress(KeyboardInterrupt):
            sandbox.serve_forever()
