"""Gold: the contract's DuckDB queries against the shop's two former gold implementations, in one process.

One shop job (the tables gold reads) of ``--orders`` orders is generated and cleaned in process; its silver is
published as Parquet. Then, each best of ``--repeat`` runs:
- pandas before: the in-process gold of ``--reference`` (orchestrator/cleaning/gold.py there) over the silver
  frames, as the pandas pipeline built it;
- DuckDB over frames: build_gold over the same frames, as the pandas pipeline builds it now;
- DuckDB over Parquet: build_gold over the silver Parquet streamed (the contract's columns, in batches of
  16,384 rows), as the Spark job builds it now;
- Spark before (``--spark-reference``, a commit holding orchestrator/cleaning/spark/gold.py): its aggregates
  over the silver Parquet read by Spark, each written to Parquet, as the Spark job's gold stage did.
Prints seconds and ratios to the DuckDB runs. Run from the repository root:
``.venv/bin/python bench/gold.py [--orders 1000000] [--spark-reference REV]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import subprocess
import tempfile
import time
import types
from collections.abc import Callable
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from orchestrator.cleaning.engine import clean
from orchestrator.cleaning.gold import build_gold, streamed
from orchestrator.cleaning.pipeline import read_manifest, read_raw
from orchestrator.config import Settings
from orchestrator.contracts import job_contract
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec
from orchestrator.storage import LocalLake

USER = "bench"
TABLES = ("customers", "products", "orders", "order_items", "payments", "returns", "events")
REFERENCE = "b7addfd"  # the last commit with the shop's own pandas gold


def _module(revision: str, path: str, name: str) -> types.ModuleType:
    """A module as it was at ``revision`` of this repository."""
    source = subprocess.run(["git", "show", f"{revision}:{path}"], check=True, capture_output=True, text=True)
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses and annotations look their module up
    exec(compile(source.stdout, f"{revision}:{path}", "exec"), module.__dict__)
    return module


def _best(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reference", default=REFERENCE)
    parser.add_argument(
        "--spark-reference", help="a commit whose orchestrator/cleaning/spark/gold.py to time"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-gold-"))
    lake = LocalLake(root)
    started = time.perf_counter()
    spec = GenerationSpec(rows=args.orders, seed=1, error_rate=0.05, tables=TABLES)
    job = generate(spec, USER, settings=Settings(data_dir=root), storage=lake)
    manifest = read_manifest(lake, USER, job.job_id)
    contract = job_contract(lake, USER, job.job_id).contract
    as_of = int(datetime.fromisoformat(manifest["as_of"]).timestamp())
    results = clean(contract, read_raw(lake, manifest, contract), as_of)
    silver = {name: result.silver for name, result in results.items()}
    folder = root / "silver"
    folder.mkdir()
    for name, frame in silver.items():
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"{name}.parquet")
    rows = {name: len(frame) for name, frame in silver.items()}
    took = time.perf_counter() - started
    print(f"silver of {args.orders:,} orders ({sum(rows.values()):,} rows), {took:.0f} s")

    reads = {name for gold in contract.gold for name in gold.reads}  # what the Spark job reads back
    before = _module(args.reference, "orchestrator/cleaning/gold.py", "gold_before")
    seconds = {
        "pandas before": _best(args.repeat, lambda: before.build_gold(silver)),
        "DuckDB over frames": _best(args.repeat, lambda: build_gold(contract, silver)),
        "DuckDB over Parquet": _best(
            args.repeat,
            lambda: build_gold(
                contract,
                {n: streamed(folder / f"{n}.parquet", contract.tables[n].column_names) for n in reads},
            ),
        ),
    }
    if args.spark_reference:
        seconds["Spark before"] = _spark(args, folder, root, list(silver))
    for label, value in seconds.items():
        ratios = ", ".join(
            f"{value / seconds[duck]:.2f}x {duck}" for duck in ("DuckDB over frames", "DuckDB over Parquet")
        )
        print(f"{label:<22} {value:7.3f} s  ({ratios})")


def _spark(args: argparse.Namespace, folder: Path, root: Path, names: list[str]) -> float:
    """The Spark gold of ``--spark-reference`` over the silver Parquet, each table written to Parquet."""
    from orchestrator.cleaning.spark.session import local_session

    spark_gold = _module(args.spark_reference, "orchestrator/cleaning/spark/gold.py", "spark_gold_before")
    spark = local_session()
    try:
        out = root / "spark-gold"

        def run() -> None:
            silver = {name: spark.read.parquet(str(folder / f"{name}.parquet")) for name in names}
            for name, frame in spark_gold.build_gold(silver).items():
                frame.write.mode("overwrite").parquet(str(out / name))

        return _best(args.repeat, run)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
