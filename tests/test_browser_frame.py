"""The frame in a real headless Chromium against `streamlit run`: first run, login, cookie, logout revocation.

Needs the Debian packages chromium and chromium-driver and the playwright Python package (its own browser
download is not used). Screenshots land in test-output/ for a person to look at.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-output"
PASSWORD = "correct horse battery"
SETUP_TOKEN = "the setup token of this test server"  # the environment's, as an installer would set it
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_healthy(url: str, process: subprocess.Popen, attempts: int = 300) -> None:
    """Poll Streamlit's health endpoint until it answers; stop early if the server process dies."""
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.2)  # the pause between tries, cut short if the server exits
        if process.returncode is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode}: {process.stderr.read()!r}")
    raise RuntimeError("streamlit did not answer its health check")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """A fresh workbench on a free port with an empty data root, as on a first install."""
    port = _free_port()
    data = tmp_path_factory.mktemp("data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env.update(ORCHESTRATOR_DATA_DIR=str(data), ORCHESTRATOR_SECRETS_FILE=str(data / "no-secrets.toml"))
    env.update(ORCHESTRATOR_SETUP_TOKEN=SETUP_TOKEN)
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    command += ["--server.fileWatcherType", "none"]  # edits elsewhere in the tree must not disturb the run
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium chromium-driver")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def settle(page: Page, text: str) -> None:
    """Wait until `text` is on screen and the script run that drew it has finished."""
    page.get_by_text(text, exact=False).first.wait_for(timeout=30_000)
    page.wait_for_selector('[data-test-script-state="notRunning"]', timeout=30_000)


def fill(page: Page, label: str, value: str) -> None:
    """Type into a text input and leave it, which is when Streamlit takes the value into the form."""
    field = page.locator(f'input[aria-label="{label}"]')
    field.fill(value)
    field.blur()


def log_in(page: Page, user: str, then: str) -> None:
    """Log in on the login form on screen, and wait until ``then`` shows."""
    settle(page, "Log in")
    fill(page, "User name", user)
    fill(page, "Password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    settle(page, then)


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"frame-{name}.png"), full_page=True)


def session_cookie(page: Page) -> dict | None:
    return next((c for c in page.context.cookies() if c["name"] == "workbench_session" and c["value"]), None)


def cookie_becomes(page: Page, present: bool) -> dict | None:
    """Wait until the browser holds the session cookie (or no longer does); the server sets it."""
    deadline = time.monotonic() + 30
    while (session_cookie(page) is not None) != present:
        assert time.monotonic() < deadline, f"the session cookie is {'missing' if present else 'still set'}"
        page.wait_for_timeout(100)
    return session_cookie(page)


def test_first_run_login_cookie_and_logout_in_a_real_browser(server, browser):
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()

    # The very first request of a fresh server asks for a page file by its name: the frame still decides.
    page.goto(f"{server}/admin_users")
    page.wait_for_url(f"{server}/", timeout=30_000)  # the page sent the browser back to the frame
    settle(page, "Create the first administrator")
    assert page.get_by_role("heading", name="Users", exact=True).count() == 0
    page.goto(server)  # a plain session for the rest: the redirected one may still be settling its URL
    settle(page, "Create the first administrator")
    fill(page, "Setup token", SETUP_TOKEN)
    fill(page, "User name", "alice")
    fill(page, "Password", PASSWORD)
    fill(page, "Repeat password", PASSWORD)
    page.get_by_role("button", name="Create administrator").click()
    settle(page, "Administrator alice created")
    shot(page, "1-login")

    log_in(page, "alice", "Signed in as alice")
    copied = cookie_becomes(page, present=True)
    assert copied["sameSite"] == "Strict" and copied["httpOnly"]
    assert "workbench_session" not in page.evaluate("document.cookie")  # no script of the page reads it
    shot(page, "2-home")
    assert page.get_by_text("Deploy", exact=True).count() == 0  # the developer's toolbar is not the product's

    page.reload()  # a new websocket session: the cookie alone signs the user in
    settle(page, "Signed in as alice")
    page.get_by_role("link", name="Users").first.click()
    settle(page, "Add a user")
    assert page.get_by_role("heading", name="Users", exact=True).count() == 1
    shot(page, "3-users")
    page.get_by_role("button", name="Unlock").scroll_into_view_if_needed()
    shot(page, "3b-users-reset-or-unlock")
    page.get_by_role("button", name="Disable").scroll_into_view_if_needed()
    shot(page, "3c-users-role-and-access")
    page.get_by_role("link", name="Account").first.click()
    settle(page, "Change your password")
    fill(page, "Current password", "not the password")
    fill(page, "New password", "another long password")
    fill(page, "Repeat new password", "another long password")
    page.get_by_role("button", name="Change password").click()
    settle(page, "is not your current password")
    shot(page, "3d-account-refused-change")

    page.get_by_role("button", name="Log out").click()
    # Back at the login form, told why, with the cookie gone.
    cookie_becomes(page, present=False)
    settle(page, "You are logged out.")
    page.wait_for_timeout(1_000)  # the notice stays: nothing reruns the page behind the user's back
    assert page.get_by_text("You are logged out.").count() == 1
    assert page.get_by_text("Signed in as alice").count() == 0
    shot(page, "4-logged-out")

    # A cookie copied before logout no longer signs anyone in.
    thief = browser.new_context()
    thief.add_cookies([copied])
    stolen = thief.new_page()
    stolen.goto(server)
    settle(stolen, "Log in")
    assert stolen.get_by_text("Signed in as").count() == 0
    shot(stolen, "5-copied-cookie-refused")
    thief.close()

    # A link to a page, opened signed out, is the page shown after login.
    linked = browser.new_context().new_page()
    linked.goto(f"{server}/users")
    log_in(linked, "alice", "Add a user")
    assert linked.url == f"{server}/users"
    assert linked.get_by_role("heading", name="Users", exact=True).count() == 1
    shot(linked, "6-link-opened-after-login")

    # A link with its query, opened in a fresh browser, keeps both through the login's reruns.
    deep = browser.new_context().new_page()
    deep.goto(f"{server}/data-quality?job=g-20260101t000000-abcdef&layer=raw")
    log_in(deep, "alice", "Data quality")
    deep.wait_for_timeout(1_000)  # a late rerun of the login would land on Home now
    assert deep.url == f"{server}/data-quality?job=g-20260101t000000-abcdef&layer=raw"
    assert deep.get_by_text("Signed in as alice").count() == 1
    shot(deep, "7-deep-link-with-query")
