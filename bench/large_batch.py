"""Large batches: the Spark engine on local Spark beside the pandas engine, on the same raw orders.

For each size (1M and 5M orders by default; ``--quick``: 20k and 60k) one raw job of the orders table
(``--tables all``: the whole 12-table job) is generated, then cleaned end to end (read raw, clean, publish
silver, quarantine and gold Parquet) by each engine in its own child process, so each one's peak memory
is its own. Spark runs twice: with a JVM of its own (the session's start-up timed apart and left out of its
seconds), and as a client of one Spark Connect server started once for the whole run (its start-up and its
first job, a 20,000-order warm-up, reported apart; the client starts no JVM), as local runs go with
ORCHESTRATOR_SPARK_CONNECT set. Prints seconds, raw rows/s and peak resident memory per engine, each
Spark/pandas time ratio, and where the crossover lies. On Connect, also the engine against its floor on the
same server (one Spark job per table, its raw lines as text to one Parquet file: the least any Spark cleaning
does), and the engine's stages with the Spark jobs and SQL queries each ran, read from the server's UI. Run
from the repository root:
``.venv/bin/python bench/large_batch.py [--quick] [--sizes 1000000 5000000] [--tables all] [--no-connect]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import contextlib
import io
import itertools
import json
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from bench.memory import peak_mb
from orchestrator.cleaning.stages import label
from orchestrator.config import Settings
from orchestrator.domain import shop as s
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec
from orchestrator.storage import LocalLake, paths

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

USER = "bench"
TARGET_RATIO = 3.0  # Spark seconds / pandas seconds at the largest size, start-up excluded
CONNECT_TARGETS = {20_000: 5.0, 5_000_000: 3.0}  # orders: Spark Connect seconds / pandas seconds, at most
WARM_UP_ROWS = 20_000  # orders of the Spark Connect server's first job, measured apart
TARGET_DRIVER_MB = 500
RETAINED = 100_000  # Spark jobs and SQL queries the bench's server keeps for its UI: all of a run's


def _pandas_worker(root: Path, job_id: str) -> dict:
    """The in-process engine's work for one job: read raw, clean, publish silver, quarantine and gold."""
    from orchestrator.cleaning.engine import clean
    from orchestrator.cleaning.gold import build_gold
    from orchestrator.cleaning.pipeline import read_manifest, read_raw

    lake = LocalLake(root)
    start = time.perf_counter()
    manifest = read_manifest(lake, USER, job_id)
    as_of = int(datetime.fromisoformat(manifest["as_of"]).timestamp())
    results = clean(s.CONTRACT, read_raw(lake, manifest, s.CONTRACT), as_of)
    frames = {f"silver_{n}": t.silver for n, t in results.items()}
    frames |= {f"quarantine_{n}": t.quarantine for n, t in results.items()}
    frames |= {
        f"gold_{n}": g for n, g in build_gold(s.CONTRACT, {n: t.silver for n, t in results.items()}).items()
    }
    for name, frame in frames.items():
        buffer = io.BytesIO()
        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, buffer, compression="zstd")
        (root / "pandas-out").mkdir(exist_ok=True)
        (root / "pandas-out" / f"{name}.parquet").write_bytes(buffer.getvalue())
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_mb()}


def _spark_worker(root: Path, job_id: str, server: str = "", ui: str = "", floor: bool = False) -> dict:
    """The Spark engine's clean_job (``floor``: the floor's work, see _floor) in a local Spark session started
    (and timed) beforehand, or in a session on the Spark Connect server at ``server``; with the server's UI at
    ``ui``, the Spark jobs and SQL queries of each stage (_stage_jobs)."""
    from orchestrator.cleaning.spark.connect import remote_session
    from orchestrator.cleaning.spark.job import clean_job
    from orchestrator.cleaning.spark.session import local_session

    start = time.perf_counter()
    spark = remote_session(server, "c-bench-connect") if server else local_session()
    spark.range(1).count()
    startup = time.perf_counter() - start
    marks: list[tuple[str, float, float]] = []  # each stage's name, seconds and wall-clock end
    started = time.time()
    start = time.perf_counter()
    if floor:
        _floor(spark, root, job_id)
        marks.append(("floor", time.perf_counter() - start, time.time()))
    else:
        run_id = "c-bench-connect" if server else "c-bench-spark"
        clean_job(spark, root, USER, job_id, run_id, lambda *stage: marks.append((*stage, time.time())))
    seconds = time.perf_counter() - start
    peak = peak_mb()
    spark.stop()
    return {
        "seconds": seconds,
        "startup": startup,
        "peak_mb": peak,
        "stages": _stage_jobs(ui, started, marks) if ui else [],
    }


def _floor(spark: SparkSession, root: Path, job_id: str) -> None:
    """The least any Spark cleaning of the job does: one Spark job per table reading its raw JSON Lines as
    text and writing them as one Parquet file, nothing parsed or cleaned."""
    from orchestrator.cleaning.spark.frames import write_parquet
    from orchestrator.cleaning.spark.read import read_manifest

    for name, info in read_manifest(root, USER, job_id)["tables"].items():
        lines = spark.read.text(str(root / info["raw_path"]))
        write_parquet(lines.coalesce(1).write, root / "floor" / name)


def _stage_jobs(ui: str, started: float, marks: list[tuple[str, float, float]]) -> list[dict]:
    """Per stage: its name and seconds, the Spark jobs submitted during it and the seconds at least one ran,
    the SQL queries (each a plan executed: its planning, jobs and commit), the seconds at least one query or
    job ran, and its longest query; from the server's UI (its REST API). They are one run's: nothing else
    runs on the server."""

    def get(path: str) -> list[dict]:
        with urllib.request.urlopen(f"{ui}/api/v1/applications{path}", timeout=30) as answer:
            return json.load(answer)

    def epoch(stamp: str) -> float:  # such as 2026-12-07T16:01:02.345GMT
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%Z").replace(tzinfo=UTC).timestamp()

    app = get("")[0]["id"]
    jobs = [
        (epoch(j["submissionTime"]), epoch(j["completionTime"]))
        for j in get(f"/{app}/jobs")
        if "submissionTime" in j and "completionTime" in j
    ]
    queries = {}  # each query's span, and how many Spark jobs it ran
    for q in get(f"/{app}/sql?details=false&length={RETAINED}"):
        start = epoch(q["submissionTime"])
        queries[start, start + q["duration"] / 1000] = len(q["successJobIds"]) + len(q["failedJobIds"])
    stages, begin = [], started
    for name, seconds, end in marks:
        ran = [(a, b) for a, b in queries if begin <= a < end]
        longest = max(ran, key=lambda span: span[1] - span[0], default=(begin, begin))
        stages.append(
            {
                "stage": name,
                "seconds": seconds,
                "jobs": _spans(jobs, begin, end),
                "queries": _spans(ran, begin, end),
                "in_either": _spans(jobs + ran, begin, end)[1],
                "longest": (longest[1] - longest[0], queries.get(longest, 0)),
            }
        )
        begin = end
    return stages


def _spans(spans: list[tuple[float, float]], begin: float, end: float) -> tuple[int, float]:
    """How many of ``spans`` start in [begin, end), and the seconds of that interval at least one covers."""
    within = sorted((a, min(b, end)) for a, b in spans if begin <= a < end)
    covered, reach = 0.0, begin
    for a, b in within:
        covered += max(0.0, b - max(a, reach))
        reach = max(reach, b)
    return len(within), covered


def _measure(engine: str, root: Path, job_id: str, server: str = "", ui: str = "") -> dict:
    """Run one engine (or the floor) in a child process and read back its numbers."""
    command = [sys.executable, __file__, "--worker", engine, "--root", str(root), "--job", job_id]
    command += ["--server", server] if server else []
    command += ["--ui", ui] if ui else []
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        causes = [
            line for line in done.stderr.splitlines() if "Error" in line and not line.startswith("\tat ")
        ]
        raise SystemExit(f"{engine} run failed: " + "\n".join(causes[:5] or done.stderr.splitlines()[-5:]))
    return json.loads(done.stdout.strip().splitlines()[-1])


def _crossover(points: list[tuple[int, float]]) -> str:
    """Where Spark's time per row meets pandas', from the ratio measured at each size."""
    for (n1, r1), (n2, r2) in itertools.pairwise(points):
        if (r1 - 1) * (r2 - 1) <= 0 and r1 != r2:
            at = n1 + (n2 - n1) * (r1 - 1) / (r1 - r2)
            return f"Spark catches up with pandas at about {at:,.0f} orders"
    if all(ratio > 1 for _, ratio in points):
        slope = (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0]) if len(points) > 1 else 0
        if slope < 0:
            at = points[-1][0] + (points[-1][1] - 1) / -slope
            return f"pandas is faster at every size measured; the trend crosses near {at:,.0f} orders"
        return "pandas is faster at every size measured, and the gap does not shrink with size"
    return "Spark is faster at every size measured"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--sizes", type=int, nargs="+", help="order counts (default 1M and 5M)")
    parser.add_argument("--tables", default="orders", help="comma-separated tables, or all (default: orders)")
    parser.add_argument("--no-connect", action="store_true", help="leave out the Spark Connect runs")
    parser.add_argument("--worker", choices=("pandas", "spark", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--server", default="", help=argparse.SUPPRESS)
    parser.add_argument("--ui", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.worker == "pandas":
            print(json.dumps(_pandas_worker(Path(args.root), args.job)))
        else:
            floor = args.worker == "floor"
            print(json.dumps(_spark_worker(Path(args.root), args.job, args.server, args.ui, floor)))
        return
    with contextlib.ExitStack() as stack:
        server, ui = ("", "") if args.no_connect else stack.enter_context(_connect_server())
        _bench(args, server, ui)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _connect_server() -> Iterator[tuple[str, str]]:
    """A local Spark Connect server for the whole run, its start-up timed and reported, its UI on (to count
    each run's Spark jobs); yields its address and its UI's."""
    from orchestrator.cleaning.spark.connect import Endpoint, LocalServer

    ui_port = _free_port()
    conf = {"spark.ui.enabled": "true", "spark.ui.port": str(ui_port)}
    conf |= {key: str(RETAINED) for key in ("spark.ui.retainedJobs", "spark.sql.ui.retainedExecutions")}
    with tempfile.TemporaryDirectory() as temp:
        start = time.perf_counter()
        with LocalServer(Endpoint("127.0.0.1", _free_port()), Path(temp) / "server.log", conf=conf) as server:
            print(
                f"Spark Connect server start-up (once, excluded below): {time.perf_counter() - start:.1f} s"
            )
            yield server.point.address, f"http://127.0.0.1:{ui_port}"


def _warm_up(server: str, tables: tuple[str, ...]) -> None:
    """The server's first job (its JIT warming up), timed and reported apart: a server that stays up pays it
    once, so the sizes are measured on a warm one."""
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        spec = GenerationSpec(rows=WARM_UP_ROWS, tables=tables)
        job = generate(spec, USER, settings=Settings(data_dir=root))
        first = _measure("spark", root, job.job_id, server)
    print(
        f"first job on the server ({WARM_UP_ROWS:,} orders, excluded below): {first['seconds']:.1f} s "
        f"(+ {first['startup']:.1f} s to open its session)",
        flush=True,
    )


def _bench(args: argparse.Namespace, server: str, ui: str) -> None:
    """Each size generated once and cleaned by each engine (on Connect, the floor too); the table, the ratios
    and the targets, then on Connect the engine against its floor and its stages."""
    sizes = args.sizes or ([20_000, 60_000] if args.quick else [1_000_000, 5_000_000])
    tables = s.TABLE_NAMES if args.tables == "all" else tuple(args.tables.split(","))
    if server:
        _warm_up(server, tables)
    print(f"tables: {', '.join(tables)}")
    print("| orders | engine | seconds | raw rows/s | peak MB (driver) | spark / pandas |")
    print("|---:|---|---:|---:|---:|---:|")
    ratios, driver_peaks, connect_ratios, connect = [], [], [], []
    for size in sizes:
        with tempfile.TemporaryDirectory() as temp:
            root = Path(temp)
            job = generate(GenerationSpec(rows=size, tables=tables), USER, settings=Settings(data_dir=root))
            rows = sum(t.rows for t in job.tables.values())
            pandas = _measure("pandas", root, job.job_id)
            spark = _measure("spark", root, job.job_id)
            assert (root / paths.silver_table(USER, job.job_id, "c-bench-spark", tables[0])).is_file()
            remote = _measure("spark", root, job.job_id, server, ui) if server else None
            floor = _measure("floor", root, job.job_id, server, ui) if server else None
        ratio = spark["seconds"] / pandas["seconds"]
        ratios.append((size, ratio))
        driver_peaks.append(spark["peak_mb"])
        print(
            f"| {size:,} | pandas | {pandas['seconds']:.1f} | {rows / pandas['seconds']:,.0f} | "
            f"{pandas['peak_mb']:,.0f} | |"
        )
        print(
            f"| {size:,} | spark | {spark['seconds']:.1f} | {rows / spark['seconds']:,.0f} | "
            f"{spark['peak_mb']:,.0f} | {ratio:.2f}x |"
        )
        print(f"  (Spark session start-up, excluded above: {spark['startup']:.1f} s)", flush=True)
        if remote is not None:
            connect_ratios.append((size, remote["seconds"] / pandas["seconds"]))
            print(
                f"| {size:,} | spark (Connect) | {remote['seconds']:.1f} | {rows / remote['seconds']:,.0f} | "
                f"{remote['peak_mb']:,.0f} (client) | {connect_ratios[-1][1]:.2f}x |"
            )
            print(f"  (session on the server, excluded above: {remote['startup']:.1f} s)", flush=True)
            connect.append((size, pandas, remote, floor))
    if connect:
        _against_floor(connect)
    largest, ratio = ratios[-1]
    ok_ratio = ratio <= TARGET_RATIO
    ok_memory = max(driver_peaks) < TARGET_DRIVER_MB
    print(f"crossover: {_crossover(ratios)}")
    print(
        f"spark / pandas at {largest:,} orders: {ratio:.2f}x (target <= {TARGET_RATIO}x): "
        f"{'ok' if ok_ratio else 'BELOW TARGET'}"
    )
    print(
        f"driver peak {max(driver_peaks):,.0f} MB (target < {TARGET_DRIVER_MB} MB): "
        f"{'ok' if ok_memory else 'BELOW TARGET'}"
    )
    for size, ratio in connect_ratios:
        target = CONNECT_TARGETS.get(size)
        verdict = f" (target <= {target}x): {'ok' if ratio <= target else 'BELOW TARGET'}" if target else ""
        print(f"Spark Connect / pandas at {size:,} orders: {ratio:.2f}x{verdict}")


def _against_floor(runs: list[tuple[int, dict, dict, dict]]) -> None:
    """The engine on Connect against its floor (same server, same raw files), then its stages: the Spark jobs
    and SQL queries each ran, the seconds spent in them, and outside them (in the client, gRPC and the
    driver's own work)."""
    print("Spark Connect against its floor (one Spark job per table: raw JSON Lines as text to one Parquet):")
    print("| orders | floor s | floor jobs | engine s | engine jobs | engine / floor | floor / pandas |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size, pandas, engine, floor in runs:
        print(
            f"| {size:,} | {floor['seconds']:.1f} | {sum(st['jobs'][0] for st in floor['stages'])} | "
            f"{engine['seconds']:.1f} | {sum(st['jobs'][0] for st in engine['stages'])} | "
            f"{engine['seconds'] / floor['seconds']:.2f}x | {floor['seconds'] / pandas['seconds']:.2f}x |"
        )
    print("engine stages on Spark Connect (outside: in the client, gRPC and the driver's own work):")
    print("| orders | stage | s | jobs | s in jobs | queries | s in queries | s outside | longest query |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for size, _, engine, _ in runs:
        for st in engine["stages"]:
            (jobs, in_jobs), (queries, _), (longest, its_jobs) = st["jobs"], st["queries"], st["longest"]
            cells = [f"{size:,}", label(st["stage"]), f"{st['seconds']:.1f}", str(jobs), f"{in_jobs:.1f}"]
            cells += [str(queries), f"{st['in_either']:.1f}", f"{st['seconds'] - st['in_either']:.1f}"]
            print("| " + " | ".join([*cells, f"{longest:.1f} s, {its_jobs} jobs"]) + " |")


if __name__ == "__main__":
    main()
