"""Browser tests: the real portal on pytest-django's live server, driven by the operating
system's Chromium (never a downloaded one) at 1280×800, the vendor being the sandbox.

Every test fails on a JavaScript console error and on any 5xx the browser receives; a failing
test leaves a screenshot and the page's HTML in var/browser-failures/.
"""

import os
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission

from portal.security.roles import ROLES

# Playwright's sync API runs an event loop in the test's thread; the ORM calls the tests make
# beside it are still synchronous, one at a time.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling home, on a closed network.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's
FAILURES = Path(settings.BASE_DIR) / "var" / "browser-failures"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        pytest.exit(f"No Chromium at {CHROMIUM}: install the OS package or set CHROMIUM_PATH.")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": CHROMIUM_FLAGS,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args, live_server):
    return {**browser_context_args, "viewport": VIEWPORT, "base_url": live_server.url}


@pytest.fixture(autouse=True)
def _portal(transactional_db, live_server):
    """A database the live server's thread sees, with the roles the migrations create (a
    transactional test empties every table after itself)."""
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in (perm.split(".") for perm in perms)
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(page, request):
    """The page, watched: console errors and 5xx responses fail the test."""
    problems: list[str] = []
    page.on(
        "console",
        lambda msg: msg.type == "error" and problems.append(f"console error: {msg.text}"),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "response",
        lambda r: r.status >= 500 and problems.append(f"HTTP {r.status} from {r.url}"),
    )
    page.set_default_timeout(10_000)
    page.expected_statuses = set()
    yield page
    problems = [p for p in problems if not _expected(p, page.expected_statuses)]
    report = getattr(request.node, "report_call", None)
    if report is None or report.failed or problems:
        _save_failure(page, request.node.name)
    assert not problems, "\n".join(problems)


def _expected(problem: str, statuses: set[int]) -> bool:
    # Chromium logs every 4xx page it loads as a console error; a test that opens a 403 on
    # purpose says so with `page.expected_statuses`.
    found = re.search(
        r"Failed to load resource: the server responded with a status of (\d+)", problem
    )
    return bool(found) and int(found.group(1)) in statuses


def _save_failure(page, name: str) -> None:
    FAILURES.mkdir(parents=True, exist_ok=True)
    stem = FAILURES / re.sub(r"[^\w.-]+", "_", name)
    try:
        page.screenshot(path=f"{stem}.png", full_page=True)
        Path(f"{stem}.html").write_text(page.content())
    except Exception as exc:  # the page may be gone; the report says why the test failed
        print(f"could not save the failing page: {exc}")
        return
    print(f"failing page saved: {stem}.png and {stem}.html")


def messages(page) -> list[str]:
    return page.locator("ul.messagelist li").all_inner_texts()


def login(page, user) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/$"))
