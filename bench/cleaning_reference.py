"""The contract-driven cleaning engines against the shop's own engines they replaced, on the same raw jobs.

The reference (``--reference``, a commit whose engines knew only the shop) is exported beside this
checkout; each engine then cleans the same generated job in a child process of its own tree, alternately,
best of ``--repeat`` runs:
- pandas: ``engine.clean`` of a shop job of ``--orders`` orders (all twelve tables), reading raw apart;
- Spark: the notebook on local Spark, end to end, for a job of ``--spark-orders`` orders (the orders table
  alone, or with ``--spark-tables all`` all twelve, whose constraints reach across tables), its session
  start-up left out (the stage lines the notebook prints say how long it took).
Prints seconds, raw rows/s and the ratio now/reference per engine. Run from the repository root:
``.venv/bin/python bench/cleaning_reference.py [--orders 100000] [--spark-orders 5000000]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import subprocess
import tempfile
import time

from orchestrator import REPOSITORY
from orchestrator.cleaning.stages import told_stage
from orchestrator.config import Settings
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec

USER = "bench"
REFERENCE = "b7addfd"  # the last commit whose engines repaired the shop by hand

# Cleans the job in the tree on sys.path and prints the engine's seconds; either engine's signature.
PANDAS = """
import inspect, json, sys, time
from datetime import datetime
from orchestrator.cleaning.engine import clean
from orchestrator.cleaning import pipeline
from orchestrator.storage import LocalLake
lake = LocalLake(sys.argv[1])
manifest = pipeline.read_manifest(lake, "bench", sys.argv[2])
as_of = int(datetime.fromisoformat(manifest["as_of"]).timestamp())
if "contract" in inspect.signature(clean).parameters:
    from orchestrator.contracts import job_contract
    contract = job_contract(lake, "bench", sys.argv[2]).contract
    raw = pipeline.read_raw(lake, manifest, contract)
    run = lambda: clean(contract, raw, as_of)
else:
    raw = pipeline.read_raw(lake, manifest)
    run = lambda: clean(raw, as_of)
started = time.perf_counter()
run()
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def _export(revision: str, folder: Path) -> Path:
    """The tree of ``revision``, exported (not checked out) into ``folder``."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", revision], cwd=REPOSITORY, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def _child(tree: Path, args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [sys.executable, *args], cwd=tree, env=env, check=True, capture_output=True, text=True
    )


def _pandas(tree: Path, root: Path, job: str) -> float:
    return json.loads(_child(tree, ["-c", PANDAS, str(root), job]).stdout.splitlines()[-1])["seconds"]


def _spark(tree: Path, root: Path, job: str, run: int) -> float:
    """Seconds of one notebook run of ``tree``, its session start-up left out."""
    started = time.perf_counter()
    done = _child(
        tree,
        [
            "notebooks/clean_large_batch.py",
            f"--job_id=c-bench-{run}",
            f"--user={USER}",
            f"--parent_job_id={job}",
            f"--lake_root={root}",
        ],
    )
    took = time.perf_counter() - started
    told = [told_stage(line) for line in done.stdout.splitlines()]
    start_up = sum(seconds for name, seconds in filter(None, told) if name == "spark_start")
    return took - start_up


def _rows(root: Path, job: str) -> int:
    manifest = json.loads(next(root.rglob(f"{job}/manifest.json")).read_text())
    return sum(table["rows"] for table in manifest["tables"].values())


def _compare(label: str, rows: int, reference: list[float], now: list[float]) -> None:
    best_ref, best_now = min(reference), min(now)
    print(f"{label}: {rows:,} raw rows")
    print(f"  reference {best_ref:8.2f} s  {rows / best_ref:12,.0f} rows/s")
    ratio = best_now / best_ref
    print(f"  now       {best_now:8.2f} s  {rows / best_now:12,.0f} rows/s   now/reference {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default=REFERENCE)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--spark-orders", type=int, default=5_000_000)
    parser.add_argument("--spark-tables", choices=("orders", "all"), default="orders")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reference-") as folder:
        reference = _export(args.reference, Path(folder) / "reference")
        root = Path(folder) / "lake"
        settings = Settings(data_dir=root)
        now_tree = REPOSITORY
        if args.orders:
            job = generate(GenerationSpec(rows=args.orders, seed=7), USER, settings=settings).job_id
            times: dict[Path, list[float]] = {reference: [], now_tree: []}
            for _ in range(args.repeat):
                for tree in times:
                    times[tree].append(_pandas(tree, root, job))
            _compare(f"pandas, {args.orders:,} orders", _rows(root, job), times[reference], times[now_tree])
        if args.spark_orders:
            tables = ("orders",) if args.spark_tables == "orders" else ()
            spec = GenerationSpec(rows=args.spark_orders, seed=7, tables=tables)
            job = generate(spec, USER, settings=settings).job_id
            times = {reference: [], now_tree: []}
            run = 0
            for _ in range(args.repeat):
                for tree in times:
                    run += 1
                    times[tree].append(_spark(tree, root, job, run))
            label = f"Spark, {args.spark_orders:,} orders ({args.spark_tables} tables)"
            _compare(label, _rows(root, job), times[reference], times[now_tree])


if __name__ == "__main__":
    main()
