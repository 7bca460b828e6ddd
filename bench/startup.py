"""Start-up: how long after `streamlit run` a person sees the login form, beside a bare Streamlit app started
the same way in the same run.

Both servers start as `make run` starts the workbench (`streamlit run FILE`, headless, on a free local
port), on an empty data root; a headless Chromium (Debian's) opens the page and the time runs from the
process start to the moment the text is on screen and the script run that drew it has finished. The bare
app is one `st.title`, so the ratio is what the workbench adds: its imports, the frame and the first page.
Medians of ``--runs`` starts of each, alternated. Run from the repository root:
``.venv/bin/python bench/startup.py [--runs 3] [--quick]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

from playwright.sync_api import Browser, sync_playwright

from orchestrator.auth.store import UserStore

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.3
BARE_APP = 'import streamlit as st\n\nst.title("Data workbench")\nst.subheader("Log in")\n'
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
PASSWORD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthy(url: str, process: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {process.stderr.read().decode(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(url)


def time_to_login_form(browser: Browser, script: Path, cwd: Path, data: Path) -> float:
    """Seconds from starting `streamlit run script` to the login form on screen in a fresh browser page."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env.update(ORCHESTRATOR_DATA_DIR=str(data), ORCHESTRATOR_SECRETS_FILE=str(data / "no-secrets.toml"))
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port)]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    command += ["--server.fileWatcherType", "none"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        _healthy(url, process, time.monotonic() + 60)
        page = browser.new_page()
        page.goto(url)
        page.get_by_text("Log in").first.wait_for(timeout=60_000)
        page.wait_for_selector('[data-test-script-state="notRunning"]', timeout=60_000)
        seconds = time.perf_counter() - started
        page.close()
        return seconds
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="starts of each app (median reported)")
    parser.add_argument("--quick", action="store_true", help="one start of each, for a smoke run")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed: apt-get install -y chromium")
    bare_times: list[float] = []
    workbench_times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as folder, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        bare = Path(folder) / "bare" / "bare_app.py"
        bare.parent.mkdir()
        bare.write_text(BARE_APP)
        for run in range(runs):
            bare_times.append(time_to_login_form(browser, bare, bare.parent, Path(folder) / f"bare-{run}"))
            data = Path(folder) / f"workbench-{run}"  # with a user, so the first page is the login form
            UserStore(data / "state" / "users.sqlite").create_first_admin("bench", PASSWORD, PASSWORD)
            workbench_times.append(time_to_login_form(browser, ROOT / "app.py", ROOT, data))
        browser.close()
    bare_median, workbench_median = statistics.median(bare_times), statistics.median(workbench_times)
    ratio = workbench_median / bare_median
    every = ", ".join(f"{seconds:.2f}" for seconds in bare_times)
    print(f"bare Streamlit app, start to login form: median {bare_median:.2f} s of {runs} ({every})")
    every = ", ".join(f"{seconds:.2f}" for seconds in workbench_times)
    print(f"workbench, start to login form:          median {workbench_median:.2f} s of {runs} ({every})")
    verdict = "ok" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(f"ratio workbench / bare: {ratio:.2f}x (target <= {TARGET_RATIO}x): {verdict}")


if __name__ == "__main__":
    main()
