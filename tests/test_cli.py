"""The command line: where `quality -o` may write, options named as typed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import cli
from orchestrator.cli import main
from orchestrator.generation.spec import GenerationSpec
from orchestrator.quality import run_history
from orchestrator.service import generate_job, queue_generation

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
    (["run", "G/1", "--user", "alice"], "job_id"),
    (["run", "g-some-1", "--user", "Alice"], "--user"),
    (["worker", "--once", "--visibility-timeout", "-5"], "--visibility-timeout"),
    (["quality", "G/1", "--user", "alice"], "job_id"),
    (["quality", "g-some-1", "--user", "Alice"], "--user"),
    (["quality", "g-some-1", "--user", "alice", "--compare-job", "G/1"], "--compare-job"),
    (["quality", "g-some-1", "--user", "alice", "--samples", "500"], "--samples"),
    (["quality", "g-some-1", "--user", "alice", "--format", "xlsx"], "-o/--output"),
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
