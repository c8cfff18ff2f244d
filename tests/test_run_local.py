"""`make run`'s last step, run for real: sandbox, cluster and web server start; the portal and
the one-time password are announced only once the server answers; Ctrl-C stops them all."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def environment(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        DJANGO_DEBUG="on",  # as `make run` sets it
        REDIS_URL="",
        ONEOFFICE_URL="",
        ONEOFFICE_SANDBOX_PORT=str(_free_port()),
        Q_WORKERS="1",
        PYTHONUNBUFFERED="1",
    )
    subprocess.run(
        [sys.executable, MANAGE, "migrate", "--noinput"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return env


def test_run_local_announces_the_portal_once_listening_and_stops_everything(environment):
    port = _free_port()
    sandbox_port = int(environment["ONEOFFICE_SANDBOX_PORT"])
    process = subprocess.Popen(
        [sys.executable, MANAGE, "run_local", "--addr", f"127.0.0.1:{port}"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line, "run_local ended:\n" + "".join(lines)
            lines.append(line)
            if "Portal: " in line:
                # Announced only once the server answers.
                assert _listening(port)
                break
        else:
            pytest.fail("no Portal line:\n" + "".join(lines))
        banner = [process.stdout.readline() for _ in range(4)]
        text = "".join(banner)
        [password] = re.findall(r"^ {6}(\S+)$", text, flags=re.MULTILINE)
        assert "manage.py changepassword admin" in text
        assert sum("Portal: " in line for line in lines) == 1

        # The password printed is the superuser's.
        session = requests.Session()
        login = f"http://127.0.0.1:{port}/admin/login/"
        session.get(login, timeout=10)
        response = session.post(
            login,
            data={
                "username": "admin",
                "password": password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
                "next": "/admin/",
            },
            timeout=10,
        )
        assert response.url == f"http://127.0.0.1:{port}/admin/"
        assert _listening(sandbox_port)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert not _listening(port) and not _listening(sandbox_port)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # nothing left in its process group
