"""Generation on Spark beside the local engine, in one run: rows per second of the same shop job (every
table) generated in this process, then by Spark tasks in a local Spark of 1 core and of 2 cores, each after
a small warm-up job in the same session (the first job pays for starting Python workers and their imports).
The Spark runs' time is split into the driver's plan (counting the order children's ids chunk by chunk),
the tasks building chunks, and the driver merging their parts into the job's files, from the progress it
reports. Every run's raw files are checked to be byte for byte the local run's.

Run from the repository root: ``.venv/bin/python bench/generation_spark.py [--rows 300000] [--chunk-rows
25000]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import os
import tempfile
import time

from orchestrator.cleaning.spark.session import local_session
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec
from orchestrator.storage import LocalLake


def run(spec: GenerationSpec, engine: str, spark=None) -> dict:
    marks: dict[str, float] = {}

    def progress(share: float, message: str) -> None:
        marks.setdefault(message.split(":")[0], time.perf_counter())

    root = Path(tempfile.mkdtemp(prefix="bench-gen-spark-"))
    started = time.perf_counter()
    result = generate(
        spec,
        "bench",
        storage=LocalLake(root),
        job_id="generate-bench",
        engine=engine,
        spark=spark,
        progress=progress,
    )
    seconds = time.perf_counter() - started
    lines = sum(t.rows for t in result.tables.values())
    shas = {name: t.sha256 for name, t in result.tables.items()}
    out = {"seconds": seconds, "lines": lines, "rate": lines / seconds, "shas": shas}
    if engine == "spark":
        out["plan"] = marks["spark"] - started  # the first progress comes once the tasks are under way
        out["merge"] = time.perf_counter() - marks.get("merging", time.perf_counter())
        out["tasks"] = seconds - out["plan"] - out["merge"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000, help="orders (every other table scales with it)")
    parser.add_argument("--chunk-rows", type=int, default=25_000)
    args = parser.parse_args()
    spec = GenerationSpec(rows=args.rows, seed=7, chunk_rows=args.chunk_rows)
    warm = GenerationSpec(rows=2_000, seed=7, chunk_rows=500)
    print(f"shop, every table, {args.rows:,} orders in chunks of {args.chunk_rows:,}; {os.cpu_count()} cores")

    run(warm, "local")
    local = run(spec, "local")
    print(
        f"local engine      : {local['seconds']:6.1f} s  {local['rate']:>9,.0f} lines/s "
        f"({local['lines']:,} lines)"
    )
    results = {}
    for cores in (1, 2):
        spark = local_session(parallelism=cores)
        run(warm, "spark", spark)
        results[cores] = got = run(spec, "spark", spark)
        spark.stop()
        same = "same bytes" if got["shas"] == local["shas"] else "RAW FILES DIFFER"
        print(
            f"spark local[{cores}]   : {got['seconds']:6.1f} s  {got['rate']:>9,.0f} lines/s "
            f"({got['rate'] / cores:,.0f} per core; plan {got['plan']:.1f} s, tasks {got['tasks']:.1f} s, "
            f"merge {got['merge']:.1f} s)  {same}"
        )
    one, two = results[1], results[2]
    print(f"spark local[1] / local engine   : {one['rate'] / local['rate']:.2f}x")
    print(f"spark local[2] / local engine   : {two['rate'] / local['rate']:.2f}x")
    print(
        f"spark local[2] / spark local[1] : {two['rate'] / one['rate']:.2f}x "
        f"(the tasks alone {one['tasks'] / two['tasks']:.2f}x)"
    )
    serial = two["plan"] + two["merge"]
    print(f"serial driver share at 2 cores  : {serial / two['seconds']:.0%} (plan + merge {serial:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
