import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

RESET_HINT = ".venv/bin/python manage.py changepassword {username}"


def ensure_superuser(*, username: str = "admin", email: str = "admin@localhost") -> str | None:
    """Create a superuser with a generated password unless one exists; return that password."""
    User = get_user_model()
    if User.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser(username=username, email=email, password=password)
    return password


class Command(BaseCommand):
    help = "Create a local superuser with a generated password, once; later runs do nothing."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="admin@localhost")

    def handle(self, *args, username, email, **options):
        password = ensure_superuser(username=username, email=email)
        if password is None:
            self.stdout.write(
                "A superuser exists already; log in with your own password "
                f"(forgotten? {RESET_HINT.format(username=username)})."
            )
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Created superuser '{username}' with password: {password}\n"
                "This is shown only once; change it under 'Change password' after logging in."
            )
        )
