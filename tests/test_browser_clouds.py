"""A job on another cloud in a real headless Chromium: generated on Azure (ADLS on Azurite, through the real
SDK), synced from the Jobs page to this machine, cleaned on the copy from the Pipelines page; the jobs table
says where each job lives. Screenshots land in test-output/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from azure.storage.blob import BlobServiceClient
from playwright.sync_api import Browser, Page

from orchestrator.auth import open_user_store
from tests.azurite import Azurite
from tests.test_browser_frame import (  # noqa: F401  (browser: the fixture, shared)
    PASSWORD,
    ROOT,
    _free_port,
    _wait_until_healthy,
    browser,
    log_in,
    settle,
)
from tests.test_browser_workbench import go_to, set_orders, shot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_clouds(tmp_path_factory, azurite: Azurite) -> Iterator[str]:
    """alice (administrator), and the workbench on a free port with this machine (the default) and Azure,
    whose lake is an ADLS file system of its own on Azurite."""
    data = tmp_path_factory.mktemp("clouds")
    file_system = f"lake{uuid.uuid4().hex[:10]}"
    BlobServiceClient.from_connection_string(azurite.connection_string).create_container(file_system)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env.update(ORCHESTRATOR_DATA_DIR=str(data), ORCHESTRATOR_SECRETS_FILE=str(data / "no-secrets.toml"))
    env.update(ORCHESTRATOR_PROFILE_AFTER_CLEANING="false", ORCHESTRATOR_CLOUDS="local,azure")
    env.update(ORCHESTRATOR_AZURE_STORAGE_CONNECTION_STRING=azurite.connection_string)
    env.update(ORCHESTRATOR_AZURE_FILE_SYSTEM=file_system)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("ORCHESTRATOR_DATA_DIR", "ORCHESTRATOR_SECRETS_FILE"):
            patch.setenv(name, env[name])
        open_user_store().create_first_admin("alice", PASSWORD, PASSWORD)
    port = _free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    command += ["--server.fileWatcherType", "none"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def clouds_in_the_jobs_table(page: Page) -> dict[str, str]:
    """Each job in the jobs table with the text of its cloud cell, as the grid shows them."""
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.locator('[role="gridcell"]').first.wait_for(state="attached", timeout=30_000)  # read, not drawn
    header = grid.locator('[role="columnheader"]').all_text_contents()
    shown = {}
    for row in grid.locator('[role="row"]').all()[1:]:
        cells = dict(zip(header, row.locator('[role="gridcell"]').all_text_contents(), strict=False))
        shown[cells["job"]] = cells["cloud"]
    return shown


def test_generate_on_azure_sync_to_this_machine_and_clean_the_copy_in_a_real_browser(
    browser: Browser,  # noqa: F811
    two_clouds: str,
):
    page = browser.new_context(viewport={"width": 1400, "height": 1200}).new_page()
    page.goto(two_clouds)
    log_in(page, "alice", "Signed in as alice")

    go_to(page, "Generate")
    settle(page, "Cleaning will run on")
    set_orders(page, 30)
    page.locator('[data-testid="stRadio"]').filter(has_text="Cloud").get_by_text("Microsoft Azure").click()
    settle(page, "Cleaning will run on")
    page.get_by_role("button", name="Generate", exact=True).click()
    settle(page, "Generated job")
    told = page.get_by_text(re.compile(r"^Generated job g-\S+ on Microsoft Azure: ")).inner_text()
    generation = told.split()[2]
    shot(page, "clouds-1-generated-on-azure")

    go_to(page, "Jobs")
    settle(page, f"Job {generation}")
    assert clouds_in_the_jobs_table(page) == {generation: "Microsoft Azure"}
    page.get_by_role("button", name="Sync to another cloud").click()
    page.get_by_role("button", name="Sync", exact=True).click()
    settle(page, f"Synced {generation} from Microsoft Azure to this machine: ")
    shot(page, "clouds-2-synced")
    assert page.get_by_text(re.compile(r"\d+ file\(s\) copied .*, 0 already there and verified\.")).count()
    assert page.get_by_text("Lives on Microsoft Azure + copy on this machine.").count() == 1
    assert page.get_by_role("button", name="Sync to another cloud").count() == 0  # both clouds hold it

    go_to(page, "Pipelines")
    settle(page, "Clean on")
    page.locator('[data-testid="stRadio"]').filter(has_text="Clean on").get_by_text("this machine").click()
    settle(page, "Cleaning writes about")  # the disk of this machine's lake, now the one cleaned on
    page.get_by_role("button", name="Clean now").click()
    page.get_by_text("Cleaning complete").first.wait_for(timeout=60_000)  # the frame's toast
    shot(page, "clouds-3-cleaned-on-the-copy")

    go_to(page, "Jobs")
    settle(page, "Details of")
    shown = clouds_in_the_jobs_table(page)
    [cleaning] = set(shown) - {generation}
    assert shown == {generation: "Microsoft Azure + copy on this machine", cleaning: "this machine"}
    shot(page, "clouds-4-jobs")
