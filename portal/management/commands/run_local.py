import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.management.commands.ensure_superuser import RESET_HINT, ensure_superuser

STARTUP_SECONDS = 60


class Command(BaseCommand):
    help = (
        "Run everything in one terminal: the OneOffice sandbox (unless ONEOFFICE_URL is set), "
        "the django-q2 cluster and the web server on 127.0.0.1:8000. Ctrl-C stops them all."
    )

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--superuser", default="admin", help="created once, if none exists")

    def handle(self, *args, addr, superuser, **options):
        # Ctrl-C, a closed terminal or a `kill` all stop the children (SIGINT too: a shell may
        # have started us with it ignored).
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.default_int_handler)
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        commands = []
        if settings.ONEOFFICE_SANDBOX:
            commands.append(("sandbox", [*manage, "oneoffice_sandbox"]))
        commands.append(("cluster", [*manage, "qcluster"]))
        commands.append(("web", [*manage, "runserver", addr]))

        password = ensure_superuser(username=superuser)
        processes = []
        try:
            for name, command in commands:
                self.stdout.write(f"starting {name}: {' '.join(command[1:])}")
                processes.append((name, subprocess.Popen(command, start_new_session=True)))
                if name == "sandbox":
                    time.sleep(0.5)
            # Said once the server answers, after the start-up logs, where it cannot scroll away.
            if self._wait_listening(addr, processes):
                self._banner(addr, superuser, password)
            while all(process.poll() is None for _, process in processes):
                time.sleep(0.5)
            stopped = [name for name, process in processes if process.poll() is not None]
            self.stderr.write(f"{', '.join(stopped)} stopped; stopping the rest.")
        except KeyboardInterrupt:
            self.stdout.write("\nstopping...")
        finally:
            for name, process in processes:
                if process.poll() is None:
                    # The cluster stops its own workers; the web server's reloader child and
                    # the sandbox go with their process group.
                    if name == "cluster":
                        process.terminate()
                    else:
                        os.killpg(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            for _, process in processes:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)

    def _wait_listening(self, addr: str, processes) -> bool:
        host, _, port = addr.rpartition(":")
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if any(process.poll() is not None for _, process in processes):
                return False
            try:
                with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
                    return True
            except OSError:
                time.sleep(0.3)
        self.stderr.write(f"The web server is not answering on {addr} yet; still waiting.")
        return False

    def _banner(self, addr: str, username: str, password: str | None) -> None:
        rule = "=" * 72
        lines = [rule, f"  Portal: http://{addr}/admin/  (Ctrl-C stops all)"]
        if password is not None:
            lines += [
                f"  Superuser '{username}' created; its password, shown only this once:",
                f"      {password}",
            ]
        lines += [f"  Forgot the password? {RESET_HINT.format(username=username)}", rule]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
