"""The benchmark scripts run at smoke sizes and print their ratio lines (timings are never checked)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.domain.shop import TABLE_NAMES

ROOT = Path(__file__).resolve().parents[1]
RATIO = re.compile(r"\d[\d,]*\.\d\dx\b")


def _run(script: str, *args: str) -> list[str]:
    """Run a bench script from the repository root, as documented, and return its output lines."""
    done = subprocess.run(
        [sys.executable, f"bench/{script}", "--quick", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _ratio_lines(lines: list[str], *labels: str) -> None:
    for label in labels:
        assert any(line.startswith(label) and RATIO.search(line) for line in lines), (label, lines)


@pytest.mark.slow
def test_generation_bench_prints_engine_beside_naive_faker_and_the_floor() -> None:
    lines = _run("generation.py")
    _ratio_lines(lines, "naive Faker", "engine, vectorised", "floor: format and write")
    assert any(re.match(r"peak memory, .* \d+ MB", line) for line in lines), lines


@pytest.mark.slow
def test_pipeline_bench_prints_each_measure_beside_its_baseline() -> None:
    lines = _run("pipeline.py")
    _ratio_lines(lines, "total", "baseline: raw copy", "baseline: read + write", "clean (engine.clean)")
    _ratio_lines(lines, "baseline: executemany tuples", "load_silver")
    _ratio_lines(lines, "send", "receive (1 per call)", "delete")
    tables = len(TABLE_NAMES)  # the bench generates every table, and each heading counts them
    for heading in ("small batch", "cleaning engine", "operational load (SQLite)"):
        assert any(re.match(rf"{re.escape(heading)}: .* in {tables} tables", line) for line in lines), heading


@pytest.mark.slow
def test_analysts_bench_prints_page_percentiles_and_that_every_job_ended_unseen_by_others() -> None:
    lines = _run("analysts.py")
    assert "jobs: 4 started, 4 succeeded; not succeeded: none" in lines  # two analysts, one round each
    assert "jobs of another analyst shown: 0" in lines and "page exceptions: 0" in lines
    assert any(re.match(r"page time, all \d+ runs: p50 [\d.]+ s, p95 [\d.]+ s, max", line) for line in lines)


@pytest.mark.slow
def test_sync_bench_prints_each_direction_beside_its_baselines_and_the_contract_table() -> None:
    lines = _run("sync.py")
    directions = ("local -> azure", "local -> aliyun", "azure -> local", "azure -> aliyun")
    for direction in directions:
        _ratio_lines(
            lines, f"{direction}: stream copy", f"{direction}: sync_job", f"{direction}: second sync"
        )
    _ratio_lines(lines, "floor: shutil.copyfile")
    for adapter in ("local", "azure (Azurite)", "OSS fake", "MNS fake"):
        assert any(re.match(rf"{re.escape(adapter)} +\d+ +\d+\.\d\d ", line) for line in lines), adapter
