"""The command line: options named as typed."""

from __future__ import annotations

import pytest

from orchestrator import cli
from orchestrator.cli import main
from orchestrator.generation.spec import GenerationSpec
from orchestrator.quality import run_history
from orchestrator.service import queue_generation


def _nothing_profiled() -> bool:
    return run_history("alice") == []


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
