"""The command line: where `quality -o` may write, stop signals handled as Ctrl-C, options named as typed."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import stat
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from orchestrator import cli, stopping
from orchestrator.cli import main
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs.store import Job
from orchestrator.quality import run_history
from orchestrator.service import (
    CLEANING_STOPPED,
    GENERATION_STOPPED,
    generate_job,
    launch_clean,
    queue_generation,
)
from tests.gen_helpers import stored_job, stored_jobs

REPOSITORY = Path(__file__).resolve().parents[1]
DEADLINE_SECONDS = 180  # bounds every wait for a child process; none is expected to come near it


@pytest.fixture
def generated(data_dir: Path) -> str:
    """A small generated job of alice's."""
    return generate_job(GenerationSpec(rows=200, seed=1), "alice").job_id


def _orchestrator(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen:
    """``python -m orchestrator ...`` as a process of its own, as a person or a service manager starts it."""
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "orchestrator", *args],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _nothing_profiled() -> bool:
    return run_history("alice") == []


# -- quality -o ---------------------------------------------------------------------------------------------


def _raw_file(data_dir: Path, job_id: str) -> Path:
    return data_dir / "raw" / "alice" / job_id / "orders.jsonl"


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["", "--force"])
@pytest.mark.parametrize("where", ["raw file", "data root", "new file inside", "through ..", "symlink"])
def test_a_report_is_never_written_inside_the_data_root(data_dir, generated, tmp_path, capsys, where, force):
    raw = _raw_file(data_dir, generated)
    before = raw.read_bytes()
    link = tmp_path / "report.csv"
    link.symlink_to(raw)
    output = {
        "raw file": raw,
        "data root": data_dir,
        "new file inside": data_dir / "report.csv",
        "through ..": tmp_path / ".." / tmp_path.name / "data" / "raw" / "alice" / generated / "orders.jsonl",
        "symlink": link,
    }[where]
    assert main(["quality", generated, "--user", "alice", "--format", "csv", "-o", str(output), *force]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: -o/--output: {output} is inside the workbench's data folder ")
    assert "name a file outside it" in err
    assert raw.read_bytes() == before
    assert not (data_dir / "report.csv").exists()
    assert _nothing_profiled()


def test_an_existing_report_is_replaced_only_with_force(data_dir, generated, tmp_path, capsys):
    report = tmp_path / "report.json"
    report.write_text("an earlier report\n")
    assert main(["quality", generated, "--user", "alice", "-o", str(report)]) == 2
    assert capsys.readouterr().err == (
        f"error: -o/--output: {report} exists already; add --force to replace it, or name another file\n"
    )
    assert report.read_text() == "an earlier report\n"
    assert _nothing_profiled()
    assert main(["quality", generated, "--user", "alice", "-o", str(report), "--force"]) == 0
    assert json.loads(report.read_text())["job_id"] == generated


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing/report.json", "the folder {tmp}/missing does not exist; create it, or name a file in"),
        ("folder", "{tmp}/folder is a folder; name a file in it instead"),
    ],
    ids=["missing folder", "a folder"],
)
def test_a_report_file_that_cannot_be_written_is_refused_before_profiling(
    data_dir, generated, tmp_path, capsys, name, message
):
    (tmp_path / "folder").mkdir()
    before = sorted(tmp_path.rglob("*"))
    assert main(["quality", generated, "--user", "alice", "-o", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: -o/--output: {message.format(tmp=tmp_path)}")
    assert "Traceback" not in err
    assert sorted(tmp_path.rglob("*")) == before
    assert _nothing_profiled()


def test_a_report_in_a_folder_the_user_may_not_write_in_is_refused_before_profiling(
    data_dir, generated, tmp_path
):
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o555)
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:  # root writes anywhere; without CAP_DAC_OVERRIDE it meets the folder's mode
        if not shutil.which("setpriv"):
            pytest.skip("running as root and setpriv (util-linux) is missing")
        prefix = ("setpriv", "--bounding-set=-dac_override")
    process = _orchestrator(
        "quality", generated, "--user", "alice", "-o", str(folder / "r.json"), prefix=prefix
    )
    out, err = process.communicate(timeout=DEADLINE_SECONDS)
    assert (process.returncode, out) == (2, "")
    assert err == (
        f"error: -o/--output: this user may not create files in the folder {folder}; name a file in a "
        "folder you can write in\n"
    )
    assert list(folder.iterdir()) == []
    assert _nothing_profiled()


# -- stop signals -------------------------------------------------------------------------------------------


def _wait_for(process: subprocess.Popen, ready: Callable[[], object]) -> None:
    """Poll until ``ready()`` is true, failing if the process ends first."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not ready():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)


def _leftovers(data_dir: Path) -> list[Path]:
    """Temporary files (written under a dot name, then renamed into place) anywhere in the data root."""
    return [p for p in data_dir.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


STOPS = pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])


@STOPS
def test_a_stopped_generate_is_cancelled_keeps_nothing_and_frees_the_users_slot(data_dir, monkeypatch, stop):
    monkeypatch.setenv("ORCHESTRATOR_MAX_ACTIVE_GENERATIONS", "1")
    process = _orchestrator(
        "generate", "--user", "alice", "--rows", "300000", "--chunk-rows", "2000", "--json"
    )

    def generating() -> Job | None:
        return next((job for job in stored_jobs("alice") if job.state == "running" and job.progress), None)

    _wait_for(process, generating)
    job_id = generating().job_id
    process.send_signal(stop)
    out, err = process.communicate(timeout=DEADLINE_SECONDS)
    assert (process.returncode, out) == (128 + stop, "")
    assert err.endswith(f"error: stopped by {stop.name} before it finished\n") and "Traceback" not in err
    stopped = stored_job(job_id)
    assert (stopped.state, stopped.error) == ("cancelled", GENERATION_STOPPED)
    assert _files(data_dir / "raw") == [] and _files(data_dir / "truth") == []
    assert _leftovers(data_dir) == []
    queue_generation(GenerationSpec(rows=50), "alice")  # not refused: alice's one generation slot is free


@pytest.mark.parametrize("command", ["run --wait", "worker --job"])
def test_a_stopped_cleaning_goes_back_to_its_queue_and_a_later_run_cleans_it(data_dir, command):
    parent = generate_job(GenerationSpec(rows=30_000, seed=2, chunk_rows=10_000), "alice").job_id
    if command == "run --wait":
        process = _orchestrator("run", parent, "--wait", "--engine", "pandas")
    else:  # what "Clean now" on the Pipelines page starts
        process = _orchestrator("worker", "--job", launch_clean("alice", parent, engine="pandas").job.job_id)

    def cleaning() -> Job | None:
        return next(
            (job for job in stored_jobs("alice") if job.kind == "clean" and job.state == "running"), None
        )

    _wait_for(process, cleaning)
    job_id = cleaning().job_id
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=DEADLINE_SECONDS)
    assert "Traceback" not in err
    if command == "run --wait":
        assert (process.returncode, err) == (143, "error: stopped by SIGTERM before it finished\n")
    else:
        assert (process.returncode, out, err) == (0, "", "")  # a worker leaves quietly
    stopped = stored_job(job_id)
    assert (stopped.state, stopped.error) == ("queued", CLEANING_STOPPED)  # neither failed nor held
    assert _leftovers(data_dir) == []
    assert main(["worker", "--once"]) == 0  # the scheduler's next run
    assert stored_job(job_id).state == "succeeded"


def _stop_this_process() -> int:
    os.kill(os.getpid(), signal.SIGTERM)
    return 0


def test_a_stop_that_duckdb_reports_as_an_error_of_its_own_is_still_a_stop():
    """A stop arriving while DuckDB runs may come back as a DuckDB error; a cleaning that took it for a
    failure would be recorded failed, never to be retried, and its worker would go on draining."""
    con = duckdb.connect(config={"threads": 1})  # the function runs in this thread, so the signal stops it
    con.create_function("stop_this_process", _stop_this_process, [], "INTEGER", side_effects=True)
    with stopping.stop_signals_raise(), pytest.raises(duckdb.Error, match="KeyboardInterrupt"):
        con.sql("SELECT stop_this_process()").fetchall()
    with (
        stopping.stop_signals_raise(),
        pytest.raises(KeyboardInterrupt) as stopped,
        stopping.stop_over_errors(),
    ):
        con.sql("SELECT stop_this_process()").fetchall()
    assert isinstance(stopped.value.__cause__, duckdb.Error)


def _processes_naming(text: str) -> list[int]:
    """The live processes whose command line mentions ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:  # it ended meanwhile
            continue
    return found


def test_a_stopped_run_on_spark_stops_its_spark_run_too(data_dir, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "10")
    parent = generate_job(GenerationSpec(rows=50, seed=4, tables=("orders",)), "alice").job_id
    process = _orchestrator("run", parent, "--wait", "--engine", "spark")

    def spark_running() -> Job | None:
        return next(
            (job for job in stored_jobs("alice") if (job.remote_run or {}).get("state") == "running"), None
        )

    _wait_for(process, spark_running)
    job_id = spark_running().job_id
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=DEADLINE_SECONDS)
    assert (process.returncode, out, err) == (143, "", "error: stopped by SIGTERM before it finished\n")
    left = _processes_naming(job_id)
    for pid in left:  # after a failure, not to leave the notebook and its JVM (its process group) running
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    assert left == []  # the notebook and its JVM went with it
    assert (stored_job(job_id).state, stored_job(job_id).error) == ("queued", CLEANING_STOPPED)
    assert not (data_dir / "silver").exists()


def test_a_stopped_quality_run_writes_and_stores_nothing(data_dir, tmp_path):
    job_id = generate_job(GenerationSpec(rows=30_000, seed=3, chunk_rows=10_000), "alice").job_id
    report = tmp_path / "out" / "report.json"
    report.parent.mkdir()
    terminal, its_side = pty.openpty()  # on a terminal, the command shows how far its profiling has come
    fcntl.ioctl(its_side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 lines of 100
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "quality", job_id, "--user", "alice", "-o", str(report)],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=its_side,
        text=True,
    )
    os.close(its_side)
    shown: list[str] = []

    def read_terminal() -> None:
        while select.select([terminal], [], [], 0)[0]:
            try:
                shown.append(os.read(terminal, 1 << 16).decode(errors="replace"))
            except OSError:  # the command has ended and closed its side
                return

    def profiling() -> bool:  # its progress bar is past 0%
        read_terminal()
        return re.search(r"profiling: +[1-9]", "".join(shown)) is not None

    try:
        _wait_for(process, profiling)
        process.send_signal(signal.SIGTERM)
        out = process.stdout.read()
        process.wait(timeout=DEADLINE_SECONDS)
        read_terminal()
    finally:
        os.close(terminal)
    assert (process.returncode, out) == (143, "")
    assert "error: stopped by SIGTERM before it finished" in shown[-1] and "Traceback" not in "".join(shown)
    assert list(report.parent.iterdir()) == []
    assert _nothing_profiled()
    assert _leftovers(data_dir) == []


# -- options named as typed ---------------------------------------------------------------------------------

GENERATE = ["generate", "--user", "alice", "--rows", "10"]
REFUSED = [
    (["generate", "--user", "Alice", "--rows", "10"], "--user"),
    ([*GENERATE, "--tables", "orders,carts"], "--tables"),
    (["generate", "--user", "alice", "--rows", "0"], "--rows"),
    ([*GENERATE, "--error-rate", "1.5"], "--error-rate"),
    ([*GENERATE, "--seed", "-1"], "--seed"),
    ([*GENERATE, "--kind-rate", "smudge=0.1"], "--kind-rate"),
    ([*GENERATE, "--kind-rate", "missing"], "--kind-rate"),
    ([*GENERATE, "--kind-rate", "missing=1.5"], "--kind-rate: missing must be"),
    ([*GENERATE, "--kind-rate", "missing=0.9,case=0.9"], "--kind-rate"),
    ([*GENERATE, "--table-rate", "carts=0.1"], "--table-rate"),
    ([*GENERATE, "--table-rate", "orders"], "--table-rate"),
    ([*GENERATE, "--table-rate", "orders=2"], "--table-rate: orders must be"),
    ([*GENERATE, "--locales", "xx_XX"], "--locales"),
    ([*GENERATE, "--chunk-rows", "0"], "--chunk-rows"),
    ([*GENERATE, "--contract", "no-such-contract"], "--contract"),
    (["contracts", "show", "no-such-contract"], "NAME"),
    (["contracts", "export", "shop"], "-o/--output"),
    (["run", "G/1", "--user", "alice"], "job_id"),
    (["run", "g-some-1", "--user", "Alice"], "--user"),
    (["worker", "--once", "--visibility-timeout", "-5"], "--visibility-timeout"),
    (["invoke-small", "--job", "G/1"], "--job"),
    (["invoke-small"], "--cloud: the small batches on local are drained by the worker"),
    (["quality", "G/1", "--user", "alice"], "job_id"),
    (["quality", "g-some-1", "--user", "Alice"], "--user"),
    (["quality", "g-some-1", "--user", "alice", "--compare-job", "G/1"], "--compare-job"),
    (["quality", "g-some-1", "--user", "alice", "--samples", "500"], "--samples"),
    (["quality", "g-some-1", "--user", "alice", "--format", "xlsx"], "-o/--output"),
    ([*GENERATE, "--cloud", "gcp"], "--cloud: 'gcp' is not one of the configured clouds"),
    (["run", "g-some-1", "--user", "alice", "--cloud", "azure"], "--cloud: g-some-1 lives on local, not on"),
    (["sync", "Not A Job", "--to", "local"], "job_id: 'Not A Job' is not a valid job id"),
    (["sync", "g-some-1", "--to", "azure"], "--to: 'azure' is not one of the configured clouds (local)"),
]


@pytest.mark.parametrize(("argv", "named"), REFUSED, ids=[" ".join(argv) for argv, _ in REFUSED])
def test_every_refused_value_names_the_option_as_typed(data_dir, capsys, argv, named):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {named}")
    option = named.split(":")[0]
    assert err.startswith(f"error: {option}: ") and err.count("\n") == 1
    assert not data_dir.joinpath("raw").exists() and _nothing_profiled()


def test_a_job_that_cannot_be_deleted_is_named_as_the_job_id_argument(data_dir, capsys):
    queued = queue_generation(GenerationSpec(rows=50), "alice").job_id
    assert main(["delete", queued]) == 2
    assert capsys.readouterr().err.startswith(
        f"error: job_id: job {queued} cannot be deleted while it is queued"
    )


def test_every_option_the_command_line_names_is_tested():
    tested = {(argv[0], named.split(":")[0]) for argv, named in REFUSED} | {("delete", "job_id")}
    listed = {(command, option) for command, fields in cli.OPTIONS.items() for option in fields.values()}
    assert tested == listed


def test_a_bad_setting_is_named_as_the_setting(data_dir, monkeypatch, capsys):
    monkeypatch.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "0")
    assert main(["run", "g-some-1", "--user", "alice"]) == 2
    assert capsys.readouterr().err == (
        "error: ORCHESTRATOR_SMALL_BATCH_MAX_ROWS: must be a whole number from 1 to 100,000,000 (got '0')\n"
    )


def test_what_a_command_writes_under_the_data_root_is_for_its_owner_alone(tmp_path):
    """A generation from the command line, started with an open umask, leaves its data root 0700 and every
    file under it 0600: raw data, truth, the job store and the pools."""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env.update(ORCHESTRATOR_DATA_DIR=str(data), ORCHESTRATOR_SECRETS_FILE=str(tmp_path / "none.toml"))
    done = subprocess.run(
        ["sh", "-c", f"umask 022 && exec {sys.executable} -m orchestrator generate --user alice --rows 20"],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    written = [path for path in data.rglob("*") if path.is_file()]
    assert {"orders.jsonl", "jobs.sqlite", "manifest.json"} <= {path.name for path in written}
    assert [path for path in written if stat.S_IMODE(path.stat().st_mode) & 0o077] == []
