"""Profiling speed of the quality engine beside a straightforward pandas implementation, in the same run.

For each size, a raw orders table is generated, then each implementation computes the same metrics
(row count; per column completeness, distinct count, min/max, top values; the orders rules that need no
other table, with counts and five failing rows each; key uniqueness; exact and near duplicates) in a
child process of its own, so its peak memory is measured alone. Targets from the issue: at least 3x
pandas at 1M rows and 5x at 10M, at least 2M rows/s at 10M, samples of every rule within a second at 1M,
and peak memory under 2.5 GB at 10M. Beside them, two floors as one DuckDB query each: every column
parsed as text and counted (the floor of the 0.6x target at 10M), and the least any profile must do (the
same, with the distinct keys and rows), each with its share of the time 2M rows/s allows. Run from the
repository root: `python -m bench.quality [--rows 1000000,10000000]`.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path

from bench.memory import peak_mb

TARGET_RATIO = {1_000_000: 3.0, 10_000_000: 5.0}
TARGET_ROWS_PER_SECOND = 2_000_000
TARGET_PEAK_GB = 2.5
TARGET_FLOOR_RATE = 0.6  # at 10M rows, of the floor's rows/s
# DuckDB's own limit, below the peak target: the 10M-row table alone takes about 1.7 GB in DuckDB, and
# with a lower limit it is spilled to disk and read back by every query
MEMORY_LIMIT = "2GB"


def _peak_gb() -> float:
    return peak_mb() / 1024


def _cpu_seconds() -> float:
    """CPU seconds of this process so far, all threads (less distorted by a busy machine than wall time)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _engine(root: str, job_id: str, out: mp.Queue) -> None:
    """A profile as ``profile_job`` runs it, without the scoring against the truth and the store."""
    os.environ["ORCHESTRATOR_DATA_DIR"] = root
    from orchestrator.config import get_settings
    from orchestrator.quality.engine import Session, profile_session
    from orchestrator.quality.layers import RAW, locate
    from orchestrator.storage import open_lake

    settings = get_settings()
    storage = open_lake(settings)
    start, cpu = time.perf_counter(), _cpu_seconds()
    with Session(storage, locate(storage, "bench", job_id, RAW), memory_limit=MEMORY_LIMIT) as session:
        session.load()
        loaded = time.perf_counter()
        run = profile_session(session, sample_rows=5)
    done = time.perf_counter()
    failed = {x.rule_id: x.failed for x in run.rules}
    out.put(
        {
            "seconds": done - start,
            "cpu": _cpu_seconds() - cpu,
            "after_read": done - loaded,
            "peak_gb": _peak_gb(),
            "failed": failed,
        }
    )


def _pandas(path: str, as_of: str, out: mp.Queue) -> None:
    import pandas as pd

    from orchestrator.domain import rules as r
    from orchestrator.domain import shop as s

    start, cpu = time.perf_counter(), _cpu_seconds()
    df = pd.read_json(path, lines=True, dtype=False, convert_dates=False)
    text = {c: df[c].astype("string") for c in df.columns}
    table = s.TABLES["orders"]
    parsed = {}
    for col in table.columns:
        if col.type == s.TIMESTAMP:
            parsed[col.name] = pd.to_datetime(text[col.name], format="%Y-%m-%dT%H:%M:%SZ", errors="coerce")
        elif col.type in (s.ID, s.FK, *s.NUMERIC_TYPES):
            parsed[col.name] = pd.to_numeric(text[col.name], errors="coerce")
    profile = {}
    for name, values in text.items():
        there = values.notna() & (values.str.strip() != "")
        value = parsed.get(name, values)
        profile[name] = (
            there.sum(),
            values.nunique(),
            value.min(),
            value.max(),
            values.value_counts().head(5),
        )
    exact = df.astype("string").duplicated().sum()
    norm = text["order_id"].str.strip().str.lower()
    near = norm.duplicated().sum() - exact
    limit = pd.Timestamp(as_of).tz_localize(None)
    failed, samples = {}, {}
    for rule in r.rules_for("orders"):
        c = rule.column
        values, there = text[c], text[c].notna() & (text[c].str.strip() != "")
        if rule.check == r.NOT_NULL:
            bad = ~there
        elif rule.check in (r.NUMERIC, r.TIMESTAMP):
            bad = there & parsed[c].isna()
        elif rule.check == r.RANGE:
            bad = (parsed[c] < rule.params["minimum"]) | (parsed[c] > rule.params["maximum"])
        elif rule.check == r.NOT_FUTURE:
            bad = parsed[c] > limit
        elif rule.check == r.IN_SET:
            bad = there & ~values.isin(rule.params["values"])
        elif rule.check == r.UNIQUE:
            bad = there & parsed[c].duplicated()
        else:
            continue
        bad = bad.fillna(False).astype(bool)
        failed[rule.id] = int(bad.sum())
        samples[rule.id] = df.loc[bad, ["order_id", c]].head(5)
    out.put(
        {
            "seconds": time.perf_counter() - start,
            "cpu": _cpu_seconds() - cpu,
            "peak_gb": _peak_gb(),
            "failed": failed,
            "checks": (len(profile), int(exact), int(near)),
        }
    )


def _floor(path: str, distinct: bool, out: mp.Queue) -> None:
    """The floor, one DuckDB query on every thread: parse every column of the file as text and count it.
    With ``distinct``, the least any profile of the file must do: also count the distinct keys (uniqueness)
    and the distinct rows (exact duplicates). Nothing is kept, not even the file's order, and no rule runs:
    no DuckDB profile of raw is faster."""
    import duckdb

    from orchestrator.domain import shop as s
    from orchestrator.quality.layers import MAX_OBJECT_BYTES, lit

    columns = [c.name for c in s.TABLES["orders"].columns]
    spec = "{" + ", ".join(f"{lit(c)}: 'VARCHAR'" for c in columns) + "}"
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    start, cpu = time.perf_counter(), _cpu_seconds()
    extra = f", count(DISTINCT {columns[0]}), count(DISTINCT hash({', '.join(columns)}))" if distinct else ""
    con.execute(
        f"SELECT count(*), {', '.join(f'count({c})' for c in columns)}{extra} FROM read_json({lit(path)}, "
        f"format='newline_delimited', columns={spec}, maximum_object_size={MAX_OBJECT_BYTES})"
    ).fetchall()
    out.put({"seconds": time.perf_counter() - start, "cpu": _cpu_seconds() - cpu})


def _child(target, *args) -> dict:
    out: mp.Queue = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=target, args=(*args, out))
    proc.start()
    result = out.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default="1000000,10000000", help="comma-separated order counts")
    parser.add_argument(
        "--pandas-max-rows",
        type=int,
        default=10_000_000,
        help="largest size the pandas baseline runs at (it holds about 2 GB per million rows)",
    )
    args = parser.parse_args()
    sizes = [int(x) for x in args.rows.split(",")]

    from orchestrator.config import Settings
    from orchestrator.generation.generator import generate
    from orchestrator.generation.spec import GenerationSpec
    from orchestrator.storage import paths

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        settings = Settings(data_dir=root)
        pandas_rate = None  # rows per second and per cpu second of the largest pandas run, for larger sizes
        for rows in sizes:
            result = generate(
                GenerationSpec(rows=rows, tables=("orders",), seed=1), "bench", settings=settings
            )
            lines = result.tables["orders"].rows
            path = str(root / paths.raw_table("bench", result.job_id, "orders"))
            engine = _child(_engine, str(root), result.job_id)
            print(f"orders, {lines:,} raw lines ({rows:,} orders); load average {os.getloadavg()[0]:.1f}")
            print(
                f"  engine  {engine['seconds']:7.2f} s  {lines / engine['seconds']:>12,.0f} rows/s  "
                f"{engine['cpu']:6.1f} cpu s  peak {engine['peak_gb']:.2f} GB  "
                f"(rules with samples, and profile, after the read: {engine['after_read']:.2f} s)"
            )
            plain = _child(_floor, path, False)
            floor = _child(_floor, path, True)
            budget = lines / TARGET_ROWS_PER_SECOND
            for name, run, what in (
                ("floor", plain, "parse every column as text, count"),
                ("floor+", floor, "the same, with distinct keys and rows"),
            ):
                print(
                    f"  {name:<6}  {run['seconds']:7.2f} s  {lines / run['seconds']:>12,.0f} rows/s  "
                    f"{run['cpu']:6.1f} cpu s  ({what}: {run['seconds'] / budget:.0%} of the {budget:.2f} s "
                    f"that {TARGET_ROWS_PER_SECOND:,} rows/s allows)"
                )
            print(
                f"  engine rate / floor rate {plain['seconds'] / engine['seconds']:.2f}x, / floor+ rate "
                f"{floor['seconds'] / engine['seconds']:.2f}x (target >= {TARGET_FLOOR_RATE}x)"
            )
            if rows > args.pandas_max_rows:
                print(f"  pandas  not run: above --pandas-max-rows ({args.pandas_max_rows:,})")
                if pandas_rate:
                    print(
                        f"  ratio   {lines / pandas_rate[0] / engine['seconds']:.1f}x "
                        f"({lines / pandas_rate[1] / engine['cpu']:.1f}x per cpu second) against pandas' "
                        "rates at the largest size it ran, extrapolated "
                        f"(target {TARGET_RATIO.get(rows, 'n/a')}x)"
                    )
            else:
                baseline = _child(_pandas, path, "2026-01-01T00:00:00")
                pandas_rate = (lines / baseline["seconds"], lines / baseline["cpu"])
                agree = all(baseline["failed"][k] == engine["failed"][k] for k in baseline["failed"])
                print(
                    f"  pandas  {baseline['seconds']:7.2f} s  {pandas_rate[0]:>12,.0f} rows/s  "
                    f"{baseline['cpu']:6.1f} cpu s  peak {baseline['peak_gb']:.2f} GB"
                )
                print(
                    f"  ratio   {baseline['seconds'] / engine['seconds']:.1f}x "
                    f"({baseline['cpu'] / engine['cpu']:.1f}x per cpu second; "
                    f"target {TARGET_RATIO.get(rows, 'n/a')}x); rule counts agree: {agree}"
                )
            for file in (root / paths.raw_dir("bench", result.job_id)).iterdir():
                file.unlink()
        print(
            f"targets: {TARGET_ROWS_PER_SECOND:,} rows/s and peak under {TARGET_PEAK_GB} GB at 10M rows, "
            "samples within 1 s after the read at 1M rows"
        )


if __name__ == "__main__":
    main()
