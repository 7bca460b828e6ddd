"""The workbench in a real headless Chromium: log in, generate, clean, follow the job, profile, compare with
another job, download a report; and how long the quality page of a 100k-row job and the jobs table take
to render (printed).

The 100k-row job is generated, cleaned and profiled from the command line before the server starts, so
the timings measure the pages, not the engine. Screenshots land in test-output/.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from orchestrator.auth import open_user_store
from tests.test_browser_frame import (  # noqa: F401  (browser: the fixture, shared)
    PASSWORD,
    ROOT,
    SHOTS,
    _free_port,
    _wait_until_healthy,
    browser,
    fill,
    log_in,
    settle,
)

pytestmark = pytest.mark.slow
BIG_ORDERS = 8500  # about 100k rows over all tables


def _cli(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def workbench(tmp_path_factory) -> Iterator[dict]:
    """alice (administrator) with a cleaned and profiled 100k-row job, then the server on a free port."""
    data = tmp_path_factory.mktemp("workbench")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env.update(ORCHESTRATOR_DATA_DIR=str(data), ORCHESTRATOR_SECRETS_FILE=str(data / "no-secrets.toml"))
    env.update(ORCHESTRATOR_PROFILE_AFTER_CLEANING="false")  # profiled below, once, as the tests expect
    with pytest.MonkeyPatch.context() as patch:
        for name in ("ORCHESTRATOR_DATA_DIR", "ORCHESTRATOR_SECRETS_FILE"):
            patch.setenv(name, env[name])
        open_user_store().create_first_admin("alice", PASSWORD, PASSWORD)
    big = _cli(env, "generate", "--user", "alice", "--rows", str(BIG_ORDERS))["job_id"]
    cleaned = _cli(env, "run", big, "--wait", "--engine", "pandas")
    small = _cli(env, "generate", "--user", "alice", "--rows", "40", "--tables", "orders,payments")["job_id"]
    on_spark = _cli(env, "run", small, "--wait", "--engine", "spark")
    assert on_spark["state"] == "succeeded", on_spark["error"]
    for job, layer in ((big, "raw"), (cleaned["job_id"], "silver")):
        subprocess.run(
            [sys.executable, "-m", "orchestrator", "quality", job, "--user", "alice", "--layer", layer],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            check=True,
        )

    port = _free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    command += ["--server.fileWatcherType", "none"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process)
        yield {"url": url, "started": started, "big": cleaned, "data": data, "on_spark": on_spark}
    finally:
        process.terminate()
        process.wait(timeout=30)


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"workbench-{name}.png"), full_page=True)


def go_to(page: Page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()


def set_orders(page: Page, orders: int) -> None:
    """Type a number of orders on the Generate page and wait until the preview's estimate follows it."""
    before = page.get_by_text("estimated from the preview").inner_text()
    field = page.locator('input[aria-label="Rows of orders"]')
    field.fill(str(orders))
    field.press("Enter")
    page.wait_for_function(
        "before => ![...document.querySelectorAll('p')].some(p => p.innerText === before)", arg=before
    )


def timed(action, until) -> float:
    """Seconds from an action (a click) to the moment `until` returns: the result is on screen."""
    began = time.perf_counter()
    action()
    until()
    return time.perf_counter() - began


def test_generate_clean_follow_profile_and_download_in_a_real_browser(browser: Browser, workbench):  # noqa: F811
    """The browser is launched before the server starts, so "app ready" times the app, not Chromium. The
    server's very first request is a link to a page, which is the page shown after login."""
    url = workbench["url"]
    page = browser.new_context(viewport={"width": 1400, "height": 2400}, accept_downloads=True).new_page()
    page.goto(f"{url}/job-list")
    settle(page, "Log in")
    ready = time.perf_counter() - workbench["started"]
    print(f"\napp ready (server start to login form rendered): {ready:.2f} s")
    assert page.get_by_text("Page not found").count() == 0
    fill(page, "User name", "alice")
    fill(page, "Password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    settle(page, "Signed in as alice")
    settle(page, "Details of")
    assert page.url.startswith(f"{url}/job-list?job=") and page.get_by_text("Page not found").count() == 0
    shot(page, "0-jobs-linked-on-first-request")

    go_to(page, "Generate")
    settle(page, "Cleaning will run on")
    set_orders(page, 300_000)
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text(re.compile(r"^Started, \w+: [\d,]+")).wait_for(timeout=60_000)  # the page follows it
    shot(page, "1a-generating")
    page.get_by_role("button", name="Stop").click()
    settle(page, "was cancelled; nothing of it was kept")
    shot(page, "1b-stopped")

    set_orders(page, 300)
    settle(page, "the small route")
    shot(page, "1-generate")
    page.get_by_role("button", name="Generate", exact=True).click()
    settle(page, "Generated job")
    shot(page, "2-generated")

    page.get_by_role("link", name="Clean it").click()
    settle(page, "the small route, pandas")
    page.get_by_role("button", name="Clean now").click()
    settle(page, "launched on pandas")
    page.get_by_text("Cleaning complete").first.wait_for(timeout=60_000)  # the frame's toast
    # the runs table follows the job it launched, without a click
    page.get_by_text(re.compile(r"^Destinations of c-\S+ \(succeeded\):$")).wait_for(timeout=15_000)
    shot(page, "3-pipelines")

    go_to(page, "Jobs")
    page.get_by_text("job of alice, succeeded, route small").wait_for(timeout=30_000)
    settle(page, "Open in Data quality")
    shot(page, "4-jobs")
    with page.expect_download() as download:
        page.get_by_role("button", name="Silver, quarantine and gold").click()
    with zipfile.ZipFile(download.value.path()) as archive:
        names = archive.namelist()
    assert any(n.startswith("silver/") and n.endswith("/manifest.json") for n in names)
    assert any(n.startswith("gold/") and n.endswith(".parquet") for n in names)

    page.get_by_role("link", name="Open in Data quality").click()
    settle(page, "has not been profiled yet")
    page.get_by_role("button", name="Profile silver").click()
    settle(page, "Profile the raw layer")
    page.get_by_role("button", name="Profile raw").click()
    settle(page, "Before: raw of")
    page.locator(".js-plotly-plot").nth(1).wait_for(timeout=30_000)
    shot(page, "5-quality")
    with page.expect_download() as download:
        page.get_by_role("button", name="JSON").click()
    report = json.loads(download.value.path().read_bytes())
    assert report["layer"] == "silver" and report["job_id"].startswith("c-")
    assert report["comparison"]["run_a"]["layer"] == "raw"
    with page.expect_download() as download:
        page.get_by_role("button", name="XLSX").click()
    assert download.value.path().read_bytes()[:2] == b"PK"  # a zip container, as every xlsx file is

    go_to(page, "Settings")
    settle(page, "Secrets")
    page.get_by_role("button", name="Test connections").click()
    settle(page, "job store: sqlite job store")
    shot(page, "6-settings")

    big = workbench["big"]
    go_to(page, "Jobs")
    settle(page, "Details of")
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Details of").click()
    page.keyboard.type(big["job_id"])
    page.keyboard.press("Enter")
    settle(page, f"cleaning {big['parent_id']}")
    quality_seconds = timed(
        lambda: page.get_by_role("link", name="Open in Data quality").click(),
        lambda: (
            page.locator(".js-plotly-plot").nth(1).wait_for(timeout=30_000),
            settle(page, f"Before: raw of {big['parent_id']}"),
        ),
    )
    assert page.get_by_text(big["job_id"]).count() >= 1
    shot(page, "7-quality-100k")
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Compare with").click()
    page.keyboard.type(f"silver of {report['job_id']}")
    page.keyboard.press("Enter")
    settle(page, f"Before: silver of {report['job_id']}")
    page.get_by_text("Columns whose completeness").scroll_into_view_if_needed()
    shot(page, "7b-compared-with-another-job")
    with page.expect_download() as download:
        page.get_by_role("button", name="JSON").click()
    compared = json.loads(download.value.path().read_bytes())["comparison"]
    assert (compared["run_a"]["job_id"], compared["run_b"]["job_id"]) == (report["job_id"], big["job_id"])
    jobs_seconds = timed(
        lambda: go_to(page, "Jobs"),
        lambda: (
            settle(page, "Details of"),
            page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=30_000),
        ),
    )
    shot(page, "8-jobs-table")

    on_spark = workbench["on_spark"]
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Details of").click()
    page.keyboard.type(on_spark["job_id"])
    page.keyboard.press("Enter")
    run = on_spark["remote_run"]
    settle(page, f"Spark run {run['run_id']} on local_spark, last seen succeeded.")
    shot(page, "9-jobs-spark-run")

    page.locator('[data-testid="stSelectbox"]').filter(has_text="Details of").click()
    page.keyboard.type(big["parent_id"])
    page.keyboard.press("Enter")
    settle(page, f"Job {big['parent_id']}")
    page.get_by_role("button", name="Delete job").click()
    settle(page, "its 1 cleaning(s) with their silver")
    shot(page, "10a-delete-confirm")
    page.get_by_role("button", name="Delete for good").click()
    settle(page, f"Deleted {big['parent_id']}, {big['job_id']}.")
    shot(page, "10b-deleted")
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Details of").click()
    listed = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    assert on_spark["job_id"] in listed and not {big["parent_id"], big["job_id"]} & set(listed)
    print(f"quality page of the {big['rows_in']:,}-row job, click to rendered: {quality_seconds:.2f} s")
    print(f"jobs table, click to rendered: {jobs_seconds:.2f} s")


def test_a_jobs_tab_left_open_is_signed_out_when_its_user_is_disabled(browser: Browser, workbench):  # noqa: F811
    """The Jobs page refreshes itself: its next tick after an administrator disabled the user shows the login
    with the reason, and nothing the tab offered (Delete job) can be used any more."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env.update(ORCHESTRATOR_DATA_DIR=str(workbench["data"]))
    env.update(ORCHESTRATOR_SECRETS_FILE=str(workbench["data"] / "no-secrets.toml"))
    with pytest.MonkeyPatch.context() as patch:
        for name in ("ORCHESTRATOR_DATA_DIR", "ORCHESTRATOR_SECRETS_FILE"):
            patch.setenv(name, env[name])
        users = open_user_store()
        users.add_user("bob", PASSWORD, PASSWORD)
        job = _cli(env, "generate", "--user", "bob", "--rows", "20", "--tables", "orders")["job_id"]
        page = browser.new_context(viewport={"width": 1400, "height": 1200}).new_page()
        page.goto(workbench["url"])
        log_in(page, "bob", "Signed in as bob")
        go_to(page, "Jobs")
        settle(page, f"Job {job}")
        page.get_by_role("button", name="Delete job").click()
        settle(page, "Delete for good")
        shot(page, "11a-bobs-jobs-open")

        users.disable("bob")
        page.get_by_text("Your account was disabled by an administrator.").wait_for(timeout=15_000)
        settle(page, "Log in")
        shot(page, "11b-disabled-tab-signed-out")
        assert page.get_by_text("Signed in as bob").count() == 0
        assert page.get_by_role("button", name="Delete for good").count() == 0
        listed = _cli(env, "jobs", "--user", "bob")
        assert [j["job_id"] for j in listed] == [job]  # his job and files stay


def test_the_contracts_page_draws_the_shops_tables_in_a_real_browser(browser: Browser, workbench):  # noqa: F811
    """The diagram is drawn in the browser (Graphviz): a box per table, an edge per foreign key."""
    page = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
    page.goto(workbench["url"])
    log_in(page, "alice", "Signed in as alice")
    go_to(page, "Contracts")
    settle(page, "Online shop (shop 1.0.0)")
    diagram = page.locator('[data-testid="stGraphVizChart"] svg')
    diagram.wait_for(timeout=30_000)
    assert diagram.locator("g.node").count() == 12
    assert diagram.locator("g.edge").count() == 15
    assert diagram.locator("g.node", has_text="orders").filter(has_text="the rows asked for").count() == 1
    shot(page, "12-contracts")
    link = page.get_by_role("link", name="Generate from this contract")
    assert link.get_attribute("href") == "generation?contract=shop"
