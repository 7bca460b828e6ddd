"""What the workbench pages share that is not Streamlit: the table of pages, the generation preview, routing
ahead of a launch, the destinations of a cleaning job, and the tables and report files the pages show."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pymysql
from pandas.io.formats.style import Styler

from orchestrator import worker
from orchestrator.cleaning import engines, stages
from orchestrator.clouds import CLOUDS, cloud_of
from orchestrator.config import DATA_DIR_ENV, Settings
from orchestrator.errors import WorkbenchError
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec
from orchestrator.health import ConnectionCheck
from orchestrator.jobs import placement, routing
from orchestrator.jobs.store import KIND_CLEAN, KIND_GENERATE, SUCCEEDED, Job, JobStore
from orchestrator.loading import operational, warehouse
from orchestrator.loading.operational import sqlite_path
from orchestrator.loading.warehouse import warehouse_path
from orchestrator.quality import Comparison, FailingRow, QualityRun, write_report
from orchestrator.quality.compare import HEADINGS
from orchestrator.quality.layers import RAW, SILVER
from orchestrator.quality.model import RuleResult
from orchestrator.quality.report import csv_cell
from orchestrator.queues import open_queue
from orchestrator.runners import spark_target
from orchestrator.service import resolve_engine
from orchestrator.storage import LocalLake, open_lake, paths

REFRESH_SECONDS = 2  # how often a page that follows running jobs looks again


PREVIEW_ORDERS = 50
DOWNLOAD_MAX_ROWS = 1_000_000  # a download is built in memory; a larger job is read from the lake itself
# What a job takes in the lake per byte of the preview's raw lines, scaled to its orders: its truth, answer
# key and duplicate map (Parquet) add about an eighth, and later orders have a few more events than the
# first ones. Measured 1.21 at 20,000 and at 200,000 orders; rounded up.
LAKE_BYTES_PER_PREVIEW_RAW_BYTE = 1.25
HIGHLIGHT = "background-color: #ffd7d5; color: #8a1c12"
REPORT_MIME = {
    "html": "text/html",
    "json": "application/json",
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class Preview:
    """A small sample of what a spec generates: raw cells as written, and the injected kind of each cell."""

    orders: int
    raw: dict[str, pd.DataFrame]  # table -> raw values as text (None where the raw line has null)
    kinds: dict[str, pd.DataFrame]  # table -> the same shape: error kind of the cell, or ""
    answer_key: pd.DataFrame  # table, line, key, column, kind, clean, dirty
    raw_bytes: int  # the sample's raw JSON Lines

    @property
    def lines(self) -> int:
        return sum(len(frame) for frame in self.raw.values())

    def estimated_lines(self, orders: int) -> int:
        """Raw lines a spec with ``orders`` orders will hold, scaled from this sample."""
        return round(self.lines * orders / self.orders)

    def estimated_bytes(self, orders: int) -> int:
        """About what a spec with ``orders`` orders will take in the lake, scaled from this sample."""
        return round(self.raw_bytes * orders / self.orders * LAKE_BYTES_PER_PREVIEW_RAW_BYTE)

    def highlighted(self, table: str) -> Styler:
        """The sample of ``table`` with every cell that carries an injected error coloured."""
        kinds = self.kinds[table]
        return self.raw[table].style.apply(
            lambda _: kinds.map(lambda kind: HIGHLIGHT if kind else ""), axis=None
        )


def _cell(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def preview(spec: GenerationSpec, user: str, settings: Settings) -> Preview:
    """Run the real generator for ``PREVIEW_ORDERS`` orders of ``spec`` into a throw-away folder."""
    sample = GenerationSpec(**{**spec.to_dict(), "rows": PREVIEW_ORDERS, "tables": tuple(spec.tables)})
    with tempfile.TemporaryDirectory(prefix="preview-") as folder:
        root = Path(folder)
        result = generate(sample, user, storage=LocalLake(root), settings=settings)
        key = pq.read_table(root / result.answer_key_path).to_pandas()
        raw, kinds = {}, {}
        for name, table in result.tables.items():
            with (root / table.raw_path).open(encoding="utf-8") as handle:
                records = [json.loads(line) for line in handle]
            frame = pd.DataFrame([{k: _cell(v) for k, v in r.items()} for r in records], dtype=object)
            marks = pd.DataFrame("", index=frame.index, columns=frame.columns)
            for line, column, kind in key.loc[key["table"] == name, ["line", "column", "kind"]].itertuples(
                index=False
            ):
                if pd.isna(column):  # a duplicate row: the whole line (Arrow's null reads as NaN)
                    marks.loc[line, :] = kind
                else:
                    marks.loc[line, column] = kind
            raw[name], kinds[name] = frame, marks
        raw_bytes = sum(table.bytes for table in result.tables.values())
    return Preview(PREVIEW_ORDERS, raw, kinds, key, raw_bytes)


def route_of(total_rows: int, settings: Settings) -> str:
    """The queue a batch of ``total_rows`` raw rows goes to."""
    return routing.route(total_rows, settings.small_batch_max_rows)


def schedule_of(route: str, settings: Settings) -> str:
    """How often the scheduler drains ``route``'s queue, as the pages say it."""
    if route == "small":
        return f"every {settings.small_every_minutes} minutes"
    return f"daily at {settings.large_daily_at_utc} UTC"


def scheduler_status(settings: Settings) -> tuple[bool, str]:
    """Whether a scheduler is running against this job store, and what the pages say about it."""
    store = JobStore.default()
    try:
        live = store.live_schedulers()
    finally:
        store.close()
    if not live:
        return False, (
            "no scheduler is running, so a job queued for a scheduled run waits until one starts: `make run` "
            "starts one beside the workbench, or run `python -m orchestrator worker`"
        )
    latest = live[0]
    seconds = (datetime.now(UTC) - latest.seen_at).total_seconds()
    return True, (
        f"running on {latest.host} (process {latest.pid}), heard from {max(seconds, 0):.0f} s ago; it drains "
        f"the {worker.queues_named(latest.routes)} next, at {latest.next_at:%Y-%m-%d %H:%M} UTC"
    )


def route_reason(total_rows: int, settings: Settings) -> str:
    """Why a batch takes its route and engine, as the pages say it: "24,310 raw rows > 10,000: the large
    route, Spark"."""
    route = route_of(total_rows, settings)
    sign = "≤" if route == "small" else ">"
    engine = engines.LABELS[resolve_engine(engines.AUTO, route)]
    return f"{total_rows:,} raw rows {sign} {settings.small_batch_max_rows:,}: the {route} route, {engine}"


# What a cleaning takes on an engine with no past run to learn from, as (fixed seconds, seconds per raw row),
# from bench/README.md: pandas about half a second plus 3 s per million rows; local Spark about a minute
# (session start and query planning) plus 15 s per million rows.
DEFAULT_ENGINE_COSTS = {engines.PANDAS: (0.5, 3e-6), engines.SPARK: (60.0, 15e-6)}
COST_HISTORY = 200  # the newest cleanings an estimate looks at


@dataclass(frozen=True)
class EngineCost:
    """What a cleaning takes on one engine: a fixed cost plus seconds per raw row, fitted to ``runs`` past
    cleanings on it (none: the default guess)."""

    engine: str
    fixed_seconds: float
    seconds_per_row: float
    runs: int

    def seconds(self, rows: int) -> float:
        """Expected seconds of a cleaning of ``rows`` raw rows."""
        return self.fixed_seconds + self.seconds_per_row * rows

    @property
    def basis(self) -> str:
        """Where the estimate comes from, as the pages say it."""
        if not self.runs:
            return "no past runs; a guess"
        return f"from {self.runs} past run{'s' if self.runs > 1 else ''}"


def fit_cost(engine: str, samples: list[tuple[int, float]]) -> EngineCost:
    """The least-squares line of seconds on raw rows through ``samples`` (rows, seconds), neither cost below
    zero: a negative slope is flattened, a negative fixed cost makes the line pass through zero. Runs of one
    size only cannot tell the slope, so they keep the default's cost per row."""
    fixed, per_row = DEFAULT_ENGINE_COSTS[engine]
    if not samples:
        return EngineCost(engine, fixed, per_row, 0)
    count = len(samples)
    mean_rows = sum(rows for rows, _ in samples) / count
    mean_seconds = sum(seconds for _, seconds in samples) / count
    spread = sum((rows - mean_rows) ** 2 for rows, _ in samples)
    if spread:
        covariance = sum((rows - mean_rows) * (seconds - mean_seconds) for rows, seconds in samples)
        per_row = max(covariance / spread, 0.0)
    fixed = mean_seconds - per_row * mean_rows
    if fixed < 0:
        fixed = 0.0
        per_row = sum(rows * seconds for rows, seconds in samples) / sum(rows * rows for rows, _ in samples)
    return EngineCost(engine, fixed, per_row, count)


def engine_costs() -> dict[str, EngineCost]:
    """Each engine's cost, fitted to the newest succeeded cleanings of anyone on it: the seconds of their
    stages (the last attempt's) against their raw rows."""
    store = JobStore.default()
    try:
        cleanings = store.list_jobs("", is_admin=True, kind=KIND_CLEAN, limit=COST_HISTORY)
    finally:
        store.close()
    samples: dict[str, list[tuple[int, float]]] = {engine: [] for engine in DEFAULT_ENGINE_COSTS}
    for job in cleanings:
        if job.state == SUCCEEDED and job.engine in samples and job.rows_in is not None and job.timings:
            samples[job.engine].append((job.rows_in, sum(job.timings.values())))
    return {engine: fit_cost(engine, found) for engine, found in samples.items()}


def duration_text(seconds: float) -> str:
    """A duration as people read it: 0.6 s, 58 s, 4 min."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:,.0f} min"


def destinations(settings: Settings, user: str, parent_id: str, job_id: str) -> pd.DataFrame:
    """Where a cleaning job writes: its lake folders, the warehouse and the operational database."""
    silver = paths.silver_dir(user, parent_id, job_id)
    operational = (
        f"MySQL {settings.mysql.host}/{settings.mysql.database}"
        if settings.mysql
        else str(sqlite_path(settings))
    )
    return pd.DataFrame(
        {
            "destination": ["silver", "quarantine", "gold", "warehouse", "operational database"],
            "where": [
                f"{silver}/",
                f"{silver}/quarantine/",
                f"{paths.gold_dir(user, parent_id, job_id)}/",
                str(warehouse_path(settings)),
                operational,
            ],
        }
    )


def jobs_frame(jobs: list[Job], settings: Settings, timezone: str = "UTC") -> pd.DataFrame:
    """One row per job as the job table shows it: what it is and how it went first, so they stay in view on a
    narrow screen; where it ran and lives, when (in ``timezone``, the reader's), and the data it cleans
    after."""
    created = pd.Series([j.created_at for j in jobs], dtype="datetime64[us, UTC]")
    return pd.DataFrame(
        {
            "job": [j.job_id for j in jobs],
            "user": [j.user for j in jobs],
            "kind": [j.kind for j in jobs],
            "state": [j.state for j in jobs],
            "rows in": [j.rows_in for j in jobs],
            "rows out": [j.rows_out for j in jobs],
            "quarantined": [j.rows_quarantined for j in jobs],
            "seconds": [
                round((j.finished_at - (j.started_at or j.created_at)).total_seconds(), 1)
                if j.finished_at
                else None
                for j in jobs
            ],
            "route": [j.route or "" for j in jobs],
            "engine": [j.engine or "" for j in jobs],
            "cloud": [placement.lives_on(j, settings) for j in jobs],
            "created": created.dt.tz_convert(timezone).dt.tz_localize(None),  # shown without "+01:00"
            "source": [j.parent_id or "" for j in jobs],
        }
    ).astype({"rows in": "Int64", "rows out": "Int64", "quarantined": "Int64"})


def timings_frame(job: Job) -> pd.DataFrame:
    """Seconds per stage of a job, in the order the stages ran (to the hundredth, as people read them)."""
    return pd.DataFrame(
        {
            "stage": [stages.label(name) for name in job.timings],
            "seconds": [round(seconds, 2) for seconds in job.timings.values()],
        }
    )


OUTPUT_COUNTS = {
    "rows_in": "rows in",
    "rows_out": "rows out",
    "quarantined": "quarantined",
    "duplicates_removed": "duplicates removed",
}


def outputs_frame(outputs: dict) -> pd.DataFrame:
    """Per table of a finished cleaning job (its silver manifest): rows in and out, quarantined, duplicates
    removed."""
    frame = pd.DataFrame.from_dict(outputs["tables"], orient="index").reindex(columns=list(OUTPUT_COUNTS))
    return frame.rename(columns=OUTPUT_COUNTS).rename_axis("table").reset_index()


def failing_text(run: QualityRun) -> str:
    """How many rules of each severity fail, as a sentence reads it: "0 of 181 error rules and 27 of 49
    warning rules fail"."""
    counts = [f"{c.failing:,} of {c.rules:,} {severity} rules" for severity, c in run.summary().items()]
    return " and ".join(counts) + " fail"


def rules_frame(run: QualityRun) -> pd.DataFrame:
    """One row per rule: what it checks, what it found; headed as a person reads it (no rows for a layer no
    rule covers, as gold)."""
    headings = [f.name for f in fields(RuleResult) if f.name != "samples"]
    return (
        pd.DataFrame([asdict(rule) for rule in run.rules], columns=headings)
        .assign(columns=lambda f: f["columns"].map(", ".join), kinds=lambda f: f["kinds"].map(", ".join))
        .rename(
            columns={
                "rule_id": "rule",
                "kinds": "error kinds",
                "checked": "rows checked",
                "failed": "rows failing",
                "share": "share failing",
            }
        )
    )


MISSING = "a missing value is"  # heading: error, warning, allowed (null by design) or "" (no rules: gold)


def columns_frame(run: QualityRun) -> pd.DataFrame:
    """One row per column of the layer: its profile, and what a missing value of it is by the rules."""
    nulls = run.nulls()
    return pd.DataFrame(
        [
            {k: v for k, v in asdict(c).items() if k != "top"} | {MISSING: nulls[c.table, c.column] or ""}
            for t in run.tables
            for c in t.columns
        ]
    ).astype({"minimum": str, "maximum": str})


def samples_frame(run: QualityRun, rule_id: str) -> pd.DataFrame:
    """The failing cells a rule kept with the run (line, key and the rule's columns), values as text."""
    return pd.DataFrame(
        [{k: _cell(v) for k, v in s.items()} for s in run.rule(rule_id).samples], dtype=object
    )


def failing_rows_frame(run: QualityRun, rule_id: str, rows: list[FailingRow]) -> pd.DataFrame:
    """A rule's failing rows whole, one per row: line (on silver, the raw line it came from), key, the rule's
    columns, then every other column of the row, values as text."""
    rule = run.rule(rule_id)
    keys = {s["line"]: s.get("key") for s in rule.samples}
    records = []
    for row in rows:
        record = {"line": row.line}
        if run.layer == SILVER:
            record["raw line"] = row.raw_line
        record["key"] = keys.get(row.line)
        values = dict(row.values)
        record |= {c: values.pop(c) for c in rule.columns if c in values} | values
        records.append(record)
    frame = pd.DataFrame(records, dtype=object)
    return frame.astype({"raw line": "Int64"}) if "raw line" in frame else frame


def row_frame(run: QualityRun, rule_id: str, row: FailingRow) -> Styler:
    """One failing row column by column: on silver the raw value beside the cleaned one, and the answer
    key's entry for the cell (kind, clean and dirty value as JSON text; a whole-row entry first); the
    rule's columns coloured."""
    columns = run.rule(rule_id).columns
    answers = {a["column"]: a for a in row.answers}
    names: list[str | None] = list(row.values)
    if None in answers:  # a duplicate: the whole line
        names.insert(0, None)
    sides = {"raw": row.raw, "cleaned": row.values} if run.layer == SILVER else {"value": row.values}
    records = []
    for name in names:
        record = {"column": name if name is not None else "(whole row)"}
        record |= {side: values.get(name) for side, values in sides.items()}
        if run.layer in (RAW, SILVER):
            answer = answers.get(name, {})
            record |= {f"answer key: {field}": answer.get(field) for field in ("kind", "clean", "dirty")}
        records.append(record)
    frame = pd.DataFrame(records, dtype=object)
    return frame.style.apply(lambda r: [HIGHLIGHT if r["column"] in columns else ""] * len(r), axis=1)


SCORE_COLUMNS = {
    "raw": ["kind", "injected", "judgeable", "detected", "recall", "flagged", "correct_flags", "precision"],
    "silver": ["kind", "injected", "fixed", "nulled", "remaining", "quarantined", "dropped"],
}


def scores_frame(run: QualityRun) -> pd.DataFrame:
    """Per injected error kind: how the rules found it (raw) or how cleaning ended it (silver)."""
    frame = pd.DataFrame([asdict(k) for k in run.score.kinds])[SCORE_COLUMNS[run.score.layer]]
    return frame.rename(columns={"correct_flags": "correct flags"})


# Layers whose runs share tables and rules, so comparing them says something.
COMPARABLE_LAYERS = {"raw": ("raw", "silver"), "silver": ("raw", "silver"), "gold": ("gold",)}


def comparison_choices(history: list[dict], job: Job, layer: str) -> dict[str, str]:
    """``{run_id: label}`` of the stored runs a run of ``job``'s ``layer`` can be compared with: the newest
    run of each other job and layer of the same owner (``history`` is theirs, newest first), the layer
    it came from first."""
    newest: dict[tuple[str, str], dict] = {}
    for run in history:
        if run["layer"] in COMPARABLE_LAYERS[layer] and (run["job_id"], run["layer"]) != (job.job_id, layer):
            newest.setdefault((run["job_id"], run["layer"]), run)
    source = (job.parent_id, "raw")
    order = sorted(newest, key=lambda k: k != source)  # stable: otherwise newest first
    return {
        newest[k]["run_id"]: f"{k[1]} of {k[0]}{' (its source)' if k == source else ''}, "
        f"profiled {newest[k]['created_at'][:16].replace('T', ' ')}"
        for k in order
    }


def history_frame(history: list[dict]) -> pd.DataFrame:
    """The stored runs of a user, newest first, as the history table shows them: errors and warnings apart,
    the time profiled in UTC."""
    columns = {
        "run_id": "run",
        "job_id": "job",
        "layer": "layer",
        "created_at": "profiled",
        "seconds": "seconds",
        "failed_errors": "errors failing",
        "failed_warnings": "warnings failing",
        "error_rows": "rows failing errors",
        "warning_rows": "rows failing warnings",
    }
    frame = pd.DataFrame(history, columns=list(columns)).rename(columns=columns)
    return frame.assign(profiled=pd.to_datetime(frame["profiled"], utc=True))


def comparison_frame(comparison: Comparison) -> pd.DataFrame:
    """Rules failing before or after, the biggest drop in failing rows first."""
    frame = pd.DataFrame([asdict(r) for r in comparison.rules])
    if frame.empty:
        return frame
    changed = frame[(frame["failed_a"] != 0) | (frame["failed_b"] != 0)]
    columns = [
        "rule_id",
        "table",
        "severity",
        "status_a",
        "status_b",
        "failed_a",
        "failed_b",
        "change",
        "share_a",
        "share_b",
    ]
    return changed.sort_values("change").reset_index(drop=True)[columns].rename(columns=HEADINGS)


def column_comparison_frame(comparison: Comparison) -> pd.DataFrame:
    """Columns whose completeness or distinct count changed (not silver's bookkeeping columns), the
    biggest change in completeness first."""
    frame = pd.DataFrame([asdict(c) for c in comparison.columns])
    if frame.empty:
        return frame
    frame = frame[~frame["column"].str.startswith("_")]
    changed = frame[
        (frame["completeness_a"].fillna(-1) != frame["completeness_b"].fillna(-1))
        | (frame["distinct_a"].fillna(-1) != frame["distinct_b"].fillna(-1))
    ]
    change = (changed["completeness_b"] - changed["completeness_a"]).abs().fillna(1.0)
    return (
        changed.assign(_order=change)
        .sort_values("_order", ascending=False, kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
        .astype({"distinct_a": "Int64", "distinct_b": "Int64"})
        .rename(columns=HEADINGS)
    )


def report_file(run: QualityRun, format: str, comparison: Comparison | None = None) -> bytes:
    """A report of ``run`` as the bytes of a file in ``format``."""
    buffer = io.BytesIO()
    write_report(run, format, buffer, comparison)
    return buffer.getvalue()


@dataclass(frozen=True)
class Bundle:
    """Files of a finished job offered as one zip download: each lake folder's files under a short folder of
    the zip (``silver/``, ``gold/``; none for raw), so the archive opens without the lake's long paths."""

    label: str
    file_name: str
    folders: tuple[tuple[str, str], ...]  # (lake folder, folder in the zip)
    job_id: str  # whose files: they are read on its cloud


def job_bundles(job: Job) -> list[Bundle]:
    """What a finished job offers for download: its raw data and answer key, or the layers it cleaned."""
    if job.state != SUCCEEDED:
        return []
    if job.kind == KIND_GENERATE:
        return [
            Bundle("Raw data", f"{job.job_id}-raw", ((paths.raw_dir(job.user, job.job_id), ""),), job.job_id),
            Bundle(
                "Answer key and truth",
                f"{job.job_id}-answer-key",
                ((paths.truth_dir(job.user, job.job_id), ""),),
                job.job_id,
            ),
        ]
    folders = (
        (paths.silver_dir(job.user, job.parent_id, job.job_id), "silver/"),
        (paths.gold_dir(job.user, job.parent_id, job.job_id), "gold/"),
    )
    return [Bundle("Silver, quarantine and gold", f"{job.job_id}-cleaned", folders, job.job_id)]


def _csv_rows(path: str, data: bytes) -> tuple[list[str], list[dict]] | None:
    """A table file's rows for CSV: JSON Lines as written (every value as its text), Parquet as stored."""
    if path.endswith(".jsonl"):
        rows = [json.loads(line) for line in data.splitlines() if line.strip()]
        columns = list(dict.fromkeys(name for row in rows for name in row))
        return columns, [{k: v if isinstance(v, str) else json.dumps(v) for k, v in r.items()} for r in rows]
    if path.endswith(".parquet"):
        frame = pq.read_table(io.BytesIO(data)).to_pandas()
        return list(frame.columns), frame.astype(object).where(frame.notna(), None).to_dict("records")
    return None


def lake_check(settings: Settings) -> ConnectionCheck:
    """Whether the settings' cloud's lake answers: a writable folder here, or the cloud's storage."""
    if not cloud_of(settings).lake_on_disk:
        return open_lake(settings).test_connection()
    root = settings.data_dir
    writable = root.is_dir() and os.access(root, os.W_OK)
    return ConnectionCheck(
        writable,
        f"local lake in {root}" + ("" if writable else " is not a writable folder"),
        None if writable else DATA_DIR_ENV,
    )


def bundle_file(bundle: Bundle, settings: Settings, as_csv: bool = False) -> bytes:
    """The bundle's files as the bytes of a zip: as stored in the lake, or with every table as CSV (a text
    cell a spreadsheet would run as a formula starts with ' there, as in the reports)."""
    lake = open_lake(placement.settings_for_id(bundle.job_id, settings))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for folder, prefix in bundle.folders:
            for path in lake.list(folder):
                name = prefix + path[len(folder) + 1 :]
                if not as_csv:
                    with lake.open_read(path) as source, archive.open(name, "w", force_zip64=True) as target:
                        shutil.copyfileobj(source, target, 1 << 20)
                    continue
                with lake.open_read(path) as source:
                    data = source.read()
                table = _csv_rows(path, data)
                if table is None:  # the manifest and the contract stay as they are
                    archive.writestr(name, data)
                    continue
                columns, rows = table
                text = io.StringIO()
                writer = csv.DictWriter(text, columns, lineterminator="\n")
                writer.writeheader()
                writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
                archive.writestr(name.rsplit(".", 1)[0] + ".csv", text.getvalue())
    return buffer.getvalue()


def connection_checks(settings: Settings) -> dict[str, ConnectionCheck]:
    """Reach each system the configured profile uses once, and say what works or which setting to change."""
    checks: dict[str, ConnectionCheck] = {}
    try:
        store = JobStore.default()
    except (WorkbenchError, OSError, pymysql.err.Error, sqlite3.Error) as error:
        checks["job store"] = ConnectionCheck(False, str(error), getattr(error, "field", None))
    else:
        try:
            count = len(store.list_jobs("", is_admin=True, limit=1000))
        finally:
            store.close()
        where = f"MySQL at {settings.mysql.host}" if settings.job_store == "mysql" else "SQLite"
        checks["job store"] = ConnectionCheck(
            True, f"{settings.job_store} job store ({where}) answers: {count} job(s)"
        )
    cloud = cloud_of(settings)
    several = len(settings.clouds) > 1  # then each lake is named by its cloud, the default's first
    checks[f"lake on {cloud.label}" if several else "lake"] = _check(lambda: lake_check(settings))
    for name in settings.clouds:  # every other cloud's lake too: a job may live there
        if name != settings.profile:
            other = settings.on_cloud(name)
            checks[f"lake on {CLOUDS[name].label}"] = _check(lambda other=other: lake_check(other))
    if not cloud.queues_on_host:
        for route, name in routing.QUEUE_NAMES.items():
            checks[f"{route} queue"] = _check(lambda name=name: open_queue(name, settings).test_connection())
    checks["warehouse"] = warehouse.test_connection(settings)
    checks["operational database"] = operational.test_connection(settings)
    checks["large batches"] = _check(lambda: spark_target(settings).runner.test_connection())
    return checks


def _check(reach: Callable[[], ConnectionCheck]) -> ConnectionCheck:
    """A system's check; settings that cannot even open it (one missing or malformed) fail it, naming the
    setting, and the other checks still run."""
    try:
        return reach()
    except WorkbenchError as error:
        return ConnectionCheck(False, str(error), getattr(error, "field", None))
