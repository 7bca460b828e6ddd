"""Generation throughput: the vectorised engine beside naive per-row Faker, in the same run.

Both produce the orders table with the same columns and the same 30% error knob (the kinds and their
rates come from the error catalogue); the naive generator calls Faker once per value, corrupts cells in
Python and writes JSON Lines with ``json.dumps``. The engine also writes the clean truth, the answer key
and the duplicate map, so the ratio is conservative. Beside them, the floor: the same number of clean
orders, drawn beforehand, only formatted and written with the engine's Arrow kernels (the faster of two
runs). Peak memory of a 10M-row run is read from a child process.

Then generation as a user runs it, each a whole process (start-up, imports and the job record included):
``python -m orchestrator generate --rows 1000000 --tables orders`` beside the floor, a ``python -c`` that
imports DuckDB and COPYs 1M plain order rows it makes itself to JSON Lines, and a 10-row job of every table
with a seed never used before, beside the imports any such job pays (numpy, pyarrow, pandas, DuckDB).
Medians of ``--runs`` rounds, alternated. Run from the repository root:
``.venv/bin/python bench/generation.py [--quick] [--skip-10m] [--process-only] [--runs 3]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from faker import Faker

from bench.memory import peak_mb
from orchestrator.config import Settings
from orchestrator.domain import shop as s
from orchestrator.generation import catalogue, jsonfmt
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec

TARGET_RATIO = 100
TARGET_ROWS_PER_SECOND = 500_000
TARGET_PEAK_MB = 1_500
TARGET_FLOOR_RATE = 0.8  # the in-process engine's rate over the floor's
TARGET_PROCESS_RATIO = 2.0  # a whole `generate` process over DuckDB's whole COPY process
TARGET_SMALL_JOB_SECONDS = 1.0  # a whole 10-row `generate` process with a new seed
ROOT = Path(__file__).resolve().parents[1]
DUCKDB_FLOOR = """
import sys

import duckdb

rows, out = int(sys.argv[1]), sys.argv[2]
duckdb.sql(f'''
    COPY (
        SELECT
            i AS order_id,
            1 + hash(i, 'customer') % {max(1, rows // 4)} AS customer_id,
            CASE WHEN hash(i, 'coupon?') % 100 < 15 THEN 1 + hash(i, 'coupon') % {max(1, rows // 500)} END
                AS coupon_id,
            strftime(TIMESTAMP '2024-01-01' + to_seconds((hash(i, 'ts') % 63158400)::BIGINT),
                     '%Y-%m-%dT%H:%M:%SZ') AS order_ts,
            ['cancelled', 'delivered', 'paid', 'shipped'][1 + (hash(i, 'status') % 4)::BIGINT] AS status,
            ['EUR', 'GBP', 'USD'][1 + (hash(i, 'currency') % 3)::BIGINT] AS currency,
            ((hash(i, 'discount') % 10000)::BIGINT / 100)::DECIMAL(10, 2) AS discount_amount,
            ((100 + hash(i, 'total') % 999900)::BIGINT / 100)::DECIMAL(10, 2) AS total_amount
        FROM range(1, {rows} + 1) AS t(i)
    ) TO '{out}' (FORMAT json)
''')
"""
ERROR_RATE = 0.3
ORDERS = s.TABLES["orders"]
USER = "bench"


def _corrupt(kind: str, value: Any, column: s.Column, rng: random.Random) -> Any:
    """One dirty value of ``kind`` for a clean ``value``, the way a per-row script would write it."""
    if kind == "missing":
        return rng.choice((None, ""))
    if kind == "whitespace":
        return rng.choice((" ", "\t", "  ")) + str(value) + rng.choice(("", " "))
    if kind == "case":
        return str(value).swapcase()
    if kind == "typo":
        text = str(value)
        i = rng.randrange(len(text) - 1)
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == "wrong_type":
        return rng.choice(("N/A", "unknown", "TBD", "-"))
    if kind == "negative":
        return -abs(value) or -1
    if kind == "zero":
        return 0
    if kind == "outlier":
        return (column.maximum or 1) * rng.randint(2, 10)
    if kind == "impossible_date":
        return value[:5] + "13" + value[7:]
    if kind == "future_date":
        return str(int(value[:4]) + rng.randint(2, 5)) + value[4:]
    if kind == "unknown_category":
        return rng.choice(("XXX", "unknown", "legacy"))
    if kind == "orphan_fk":
        return value + 10_000_000
    if kind == "order_before_signup":
        return "2019" + value[4:]
    if kind == "total_mismatch":
        return round(value + rng.randint(1, 50), 2)
    raise ValueError(f"no naive corruption for {kind}")


def naive_orders(rows: int, out: Path, seed: int = 0) -> None:
    """Orders generated row by row with Faker, dirtied in Python and written as JSON Lines."""
    fake = Faker()
    fake.seed_instance(seed)
    rng = random.Random(seed)
    spec = GenerationSpec(rows=rows, tables=("orders",), error_rate=ERROR_RATE)
    kinds = {
        c.name: [(k, spec.rate("orders", k)) for k in catalogue.cell_kinds(ORDERS, c)]
        for c in ORDERS.columns[1:]
    }
    exact, near = spec.rate("orders", "exact_duplicate"), spec.rate("orders", "near_duplicate")
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 12, 31, tzinfo=UTC)
    with out.open("w", encoding="utf-8") as raw, out.with_suffix(".key.jsonl").open("w") as key:
        for i in range(1, rows + 1):
            total = float(fake.pydecimal(left_digits=4, right_digits=2, positive=True))
            row: dict[str, Any] = {
                "order_id": i,
                "customer_id": fake.random_int(1, max(1, rows // 4)),
                "coupon_id": fake.random_int(1, max(1, rows // 500)) if fake.boolean(15) else None,
                "order_ts": fake.date_time_between(start, end, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "status": fake.random_element(s.ORDER_STATUSES),
                "currency": fake.random_element(s.CURRENCIES),
                "discount_amount": round(total * fake.random_element((0, 0, 0, 0.05, 0.1)), 2),
                "total_amount": total,
            }
            for column in ORDERS.columns[1:]:
                draw = rng.random()
                for kind, rate in kinds[column.name]:
                    if draw < rate:
                        if row[column.name] is not None:
                            clean = row[column.name]
                            row[column.name] = _corrupt(kind, clean, column, rng)
                            entry = {"line": i, "column": column.name, "kind": kind, "clean": clean}
                            key.write(json.dumps(entry) + "\n")
                        break
                    draw -= rate
            line = json.dumps(row) + "\n"
            raw.write(line)
            draw = rng.random()
            if draw < exact:
                raw.write(line)
            elif draw < exact + near:
                raw.write(json.dumps({**row, "status": f" {row['status']}"}) + "\n")
        raw.flush()
        os.fsync(raw.fileno())


def _seconds(run: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of ``run`` (CPU of every thread of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def engine_orders(rows: int, data_dir: Path, all_tables: bool = False) -> None:
    """Orders (with ``all_tables``, the whole 12-table job of that many orders) through the vectorised
    generator into a lake under ``data_dir``."""
    spec = GenerationSpec(rows=rows, tables=() if all_tables else ("orders",), error_rate=ERROR_RATE)
    generate(spec, USER, settings=Settings(data_dir=data_dir))


def floor_orders(rows: int, out: Path) -> None:
    """The least a generator of these files on Arrow must do: clean orders already drawn (numpy arrays) are
    formatted as JSON Lines with the engine's own Arrow kernels and written, with their Parquet truth. No
    value is drawn from a pool, no error injected, no answer key kept."""
    draw = np.random.default_rng(0)
    columns = {
        "order_id": np.arange(1, rows + 1),
        "customer_id": draw.integers(1, max(2, rows // 4), rows),
        "coupon_id": draw.integers(1, max(2, rows // 500), rows),
        "order_ts": draw.integers(1_704_067_200, 1_767_225_600, rows),  # 2024 and 2025, epoch seconds
        "status": draw.integers(0, len(s.ORDER_STATUSES), rows),
        "currency": draw.integers(0, len(s.CURRENCIES), rows),
        "discount_amount": draw.integers(0, 10_000, rows),  # cents
        "total_amount": draw.integers(100, 1_000_000, rows),
    }
    fragments = [
        jsonfmt.integers(columns["order_id"]),
        jsonfmt.integers(columns["customer_id"]),
        jsonfmt.integers(columns["coupon_id"]),
        jsonfmt.timestamps(columns["order_ts"]),
        jsonfmt.quote(pa.array(s.ORDER_STATUSES), escape=False).take(columns["status"]),
        jsonfmt.quote(pa.array(s.CURRENCIES), escape=False).take(columns["currency"]),
        jsonfmt.scaled(columns["discount_amount"], 2),
        jsonfmt.scaled(columns["total_amount"], 2),
    ]
    with out.open("wb") as raw:
        raw.write(jsonfmt.to_bytes(jsonfmt.join_lines(list(columns), fragments)))
    pq.write_table(pa.table(columns), out.with_suffix(".parquet"))


def peak_memory(rows: int, data_dir: Path, all_tables: bool = False) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak resident memory (MB) of generating ``rows`` orders (with
    ``all_tables``, the 12-table job) in a fresh child process (the peak as the child reads it of itself)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [sys.executable, __file__, "--generate-only", str(rows), "--data-dir", str(data_dir)]
    command += ["--all-tables"] if all_tables else []
    start = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu, float(done.stdout.split()[-1])


def _child(command: list[str], data_dir: Path) -> tuple[float, float]:
    """Wall and CPU seconds of a whole child process run from the repository root on ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env["ORCHESTRATOR_DATA_DIR"] = str(data_dir)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{command[1:4]} failed: {done.stderr.decode(errors='replace')[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def whole_processes(rows: int, runs: int, root: Path) -> dict[str, list[tuple[float, float]]]:
    """Each measure's (wall, cpu) per round; the rounds alternate the measures, every `generate` with a seed
    not used before in this data directory."""
    generate_command = [sys.executable, "-m", "orchestrator", "generate", "--user", USER]
    times: dict[str, list[tuple[float, float]]] = {}
    for run in range(runs):
        out = root / f"duckdb-{run}.jsonl"
        large = ["--rows", str(rows), "--tables", "orders", "--seed", str(1000 + run)]
        measures = {
            "duckdb": [sys.executable, "-c", DUCKDB_FLOOR, str(rows), str(out)],
            "large": [*generate_command, *large],
            "small": [*generate_command, "--rows", "10", "--seed", str(2000 + run)],
            "imports": [sys.executable, "-c", "import numpy, pyarrow, pyarrow.parquet, pandas, duckdb"],
        }
        for name, command in measures.items():
            times.setdefault(name, []).append(_child(command, root / "process"))
        out.unlink()
    return times


def report_whole_processes(rows: int, times: dict[str, list[tuple[float, float]]]) -> None:
    runs = len(times["duckdb"])
    median = {name: statistics.median(w for w, _ in each) for name, each in times.items()}
    cpu = {name: statistics.median(c for _, c in each) for name, each in times.items()}
    floor = median["duckdb"]
    print(f"whole processes, median of {runs} (load average {os.getloadavg()[0]:.1f}):")
    print(f"{'process':<52}{'seconds':>9}{'cpu s':>8}{'vs floor':>10}")
    for label, name in (
        (f"floor: duckdb COPY {rows:,} plain orders to JSONL", "duckdb"),
        (f"generate --rows {rows:,} --tables orders", "large"),
        ("generate --rows 10, a new seed", "small"),
        ("imports of any job: numpy, pyarrow, pandas, duckdb", "imports"),
    ):
        print(f"{label:<52}{median[name]:>9.2f}{cpu[name]:>8.2f}{median[name] / floor:>9.2f}x")
    for name in ("large", "small"):
        every = ", ".join(f"{wall:.2f}" for wall, _ in times[name])
        print(f"({name} runs: {every} s)")
    ratio = _verdict(median["large"] / floor <= TARGET_PROCESS_RATIO)
    print(f"target: generate within {TARGET_PROCESS_RATIO}x the DuckDB floor: {ratio}")
    small = _verdict(median["small"] < TARGET_SMALL_JOB_SECONDS)
    print(f"target: a 10-row job with a new seed under {TARGET_SMALL_JOB_SECONDS:.0f} s: {small}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--skip-10m", action="store_true", help="skip the peak-memory run")
    parser.add_argument("--generate-only", type=int, metavar="ROWS", help="only generate ROWS orders")
    parser.add_argument("--data-dir", type=Path, help="lake root for --generate-only")
    parser.add_argument(
        "--all-tables", action="store_true", help="with --generate-only or --memory-only: every table"
    )
    parser.add_argument(
        "--memory-only", type=int, metavar="ROWS", help="only the peak memory of generating ROWS orders"
    )
    parser.add_argument("--process-only", action="store_true", help="only the whole-process measures")
    parser.add_argument("--runs", type=int, default=3, help="rounds of the whole-process measures")
    args = parser.parse_args()
    if args.generate_only:
        engine_orders(args.generate_only, args.data_dir, args.all_tables)
        print(peak_mb())
        return
    if args.memory_only:
        with tempfile.TemporaryDirectory(prefix="bench-generation-") as tmp:
            seconds, cpu, peak = peak_memory(args.memory_only, Path(tmp), args.all_tables)
        what = "orders, every table" if args.all_tables else "orders"
        print(
            f"peak memory, {args.memory_only:,} {what}, in a child process: {peak:,.0f} MB "
            f"({seconds:.1f} s, {cpu:.1f} cpu s); target < {TARGET_PEAK_MB:,} MB: "
            f"{_verdict(peak < TARGET_PEAK_MB)}"
        )
        return
    naive_rows, engine_rows, memory_rows = (
        (2_000, 50_000, 200_000) if args.quick else (30_000, 1_000_000, 10_000_000)
    )
    runs = 1 if args.quick else args.runs
    if args.process_only:
        with tempfile.TemporaryDirectory(prefix="bench-generation-") as tmp:
            report_whole_processes(engine_rows, whole_processes(engine_rows, runs, Path(tmp)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-generation-") as tmp:
        root = Path(tmp)
        warm, _ = _seconds(lambda: engine_orders(1_000, root / "warm"))  # imports, first calls
        naive, naive_cpu = _seconds(lambda: naive_orders(naive_rows, root / "naive.jsonl"))
        floor, floor_cpu = min(
            _seconds(lambda: floor_orders(engine_rows, root / "floor.jsonl")) for _ in "ab"
        )
        engine, engine_cpu = _seconds(lambda: engine_orders(engine_rows, root / "warm"))
        memory = None if args.skip_10m else peak_memory(memory_rows, root / "warm")
        processes = whole_processes(engine_rows, runs, root)

    naive_rate, engine_rate = naive_rows / naive, engine_rows / engine
    ratio = engine_rate / naive_rate
    print(f"orders, error_rate {ERROR_RATE}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"(first engine run, 1,000 rows: {warm:.1f} s, not counted)")
    print(f"{'generator':<24}{'rows':>11}{'seconds':>9}{'cpu s':>8}{'rows/s':>11}{'vs naive':>10}")
    for name, rows, wall, cpu, rate in (
        ("naive Faker, per row", naive_rows, naive, naive_cpu, naive_rate),
        ("engine, vectorised", engine_rows, engine, engine_cpu, engine_rate),
        ("floor: format and write", engine_rows, floor, floor_cpu, engine_rows / floor),
    ):
        print(f"{name:<24}{rows:>11,}{wall:>9.2f}{cpu:>8.2f}{rate:>11,.0f}{rate / naive_rate:>9.2f}x")
    cpu_ratio = (engine_rows / engine_cpu) / (naive_rows / naive_cpu)
    print(f"(per CPU second: engine {engine_rows / engine_cpu:,.0f} rows/s, {cpu_ratio:.2f}x naive)")
    print(f"target: engine >= {TARGET_RATIO}x naive: {_verdict(ratio >= TARGET_RATIO)}")
    fast = _verdict(engine_rate >= TARGET_ROWS_PER_SECOND)
    print(f"target: engine >= {TARGET_ROWS_PER_SECOND:,} rows/s with raw written: {fast}")
    floor_ratio = engine_rate / (engine_rows / floor)
    print(
        f"engine rate / floor rate: {floor_ratio:.2f}x; target >= {TARGET_FLOOR_RATE}x: "
        f"{_verdict(floor_ratio >= TARGET_FLOOR_RATE)}"
    )
    if memory:
        seconds, cpu, peak = memory
        print(
            f"peak memory, {memory_rows:,} rows in a child process: {peak:,.0f} MB; "
            f"target < {TARGET_PEAK_MB:,} MB: {_verdict(peak < TARGET_PEAK_MB)}"
        )
        rate = memory_rows / seconds
        print(f"(that run, start-up included: {seconds:.1f} s, {cpu:.1f} cpu s, {rate:,.0f} rows/s)")
    report_whole_processes(engine_rows, processes)


def _verdict(ok: bool) -> str:
    return "ok" if ok else "BELOW TARGET"


if __name__ == "__main__":
    main()
