"""Profiling a layer: each table is read once into DuckDB, then one aggregate query per table yields the
profile, the column rules' counts and their first failing rows (the two exact distinct counts, of rows and
of business keys, run alone); key, reference and cross-table rules run as joins over the loaded tables."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from orchestrator.domain import rules as r
from orchestrator.errors import InvalidInput
from orchestrator.quality import checks
from orchestrator.quality.layers import (
    RAW,
    TEXT,
    LayerFiles,
    LoadedTable,
    LocalFiles,
    connect,
    lit,
    load_parquet,
    load_raw,
    q,
)
from orchestrator.quality.model import (
    FAILED,
    MAX_SAMPLE_ROWS,
    PASSED,
    SKIPPED,
    ColumnProfile,
    QualityRun,
    RuleResult,
    TableProfile,
    ratio,
)
from orchestrator.storage import Storage

Progress = Callable[[float, str], None]
TOP_VALUES = 5


@dataclass(frozen=True)
class RuleLines:
    """A runnable rule: the queries selecting the ``__line`` of the rows it judged and of those it failed."""

    rule: r.Rule
    table: LoadedTable
    judged: str
    failed: str
    column: checks.ColumnCheck | None = None  # row expressions, for a one-table column rule


class Session:
    """A layer loaded into an in-memory DuckDB: one table per file, read once, checked by the rules of the
    contract its generation followed."""

    def __init__(self, storage: Storage, files: LayerFiles, memory_limit: str | None = None) -> None:
        self.files = files
        self.storage = storage
        self.rules = r.rules_of(files.contract)
        self.con = connect(memory_limit)
        self._local = LocalFiles(storage)
        self.tables: dict[str, LoadedTable] = {}

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.con.close()
        self._local.close()

    def load(self, progress: Progress | None = None) -> dict[str, LoadedTable]:
        loader = load_raw if self.files.layer == RAW else load_parquet
        for i, (name, path) in enumerate(self.files.tables.items()):
            if progress:
                progress(i / max(len(self.files.tables), 1) / 2, f"reading {name}")
            self.tables[name] = loader(self.con, name, self._local.path(path), path, self.files.contract)
        return self.tables

    def local_path(self, lake_path: str) -> str:
        return self._local.path(lake_path)

    def rule_lines(self) -> tuple[list[RuleLines], dict[str, str]]:
        """Every rule that can run on the loaded tables, and why each other one cannot."""
        runnable, skipped = [], {}
        for table in self.tables.values():
            if table.schema is None:
                continue
            for rule in self.rules.get(table.name, ()):
                try:
                    runnable.append(self._lines(rule, table))
                except checks.Skipped as exc:
                    skipped[rule.id] = str(exc)
        return runnable, skipped

    def _lines(self, rule: r.Rule, table: LoadedTable) -> RuleLines:
        as_of = self.files.as_of.replace(tzinfo=None) if self.files.as_of else None
        if checks.is_set_check(rule):
            found = checks.set_check(rule, table, self.tables, as_of)
            return RuleLines(rule, table, found.judged, found.failed)
        check = checks.column_check(rule, table, as_of)
        rel = q(table.relation)
        return RuleLines(
            rule,
            table,
            f"SELECT __line FROM {rel} WHERE {check.judged}",
            f"SELECT __line FROM {rel} WHERE {check.failed}",
            check,
        )


def check_sample_rows(sample_rows: int) -> int:
    if (
        isinstance(sample_rows, bool)
        or not isinstance(sample_rows, int)
        or not 0 <= sample_rows <= MAX_SAMPLE_ROWS
    ):
        raise InvalidInput(
            "sample_rows", f"must be a whole number from 0 to {MAX_SAMPLE_ROWS} (got {sample_rows!r})"
        )
    return sample_rows


def _plain(value: object) -> str | float | None:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None if value is None else str(value)


def _sample_struct(table: LoadedTable, columns: tuple[str, ...] | list[str]) -> str:
    key = table.key.text if table.key else "NULL"
    parts = ["'line': __line", f"'key': {key}"]
    parts += [f"{lit(c)}: {table.columns[c].text}" for c in columns if c in table.columns]
    return "{" + ", ".join(parts) + "}"


def _business_key(table: LoadedTable) -> list[str]:
    if table.schema is None:
        return []
    return [c for c in table.schema.business_key if c in table.columns]


class _Aggregates:
    """The aggregates of one pass over a table; an expression asked for twice is computed once.

    A distinct count runs in a query of its own: beside the other aggregates DuckDB holds every hash table
    at once, which at 10M rows doubled the peak memory and, under a memory limit, pushed the loaded table
    out to disk for the rest of the run."""

    def __init__(self) -> None:
        self._exprs: dict[str, int] = {}
        self._alone: set[int] = set()

    def add(self, expr: str, *, alone: bool = False) -> int:
        at = self._exprs.setdefault(expr, len(self._exprs))
        if alone:
            self._alone.add(at)
        return at

    def run(self, con: duckdb.DuckDBPyConnection, relation: str) -> list:
        exprs = list(self._exprs)
        together = [i for i in range(len(exprs)) if i not in self._alone]
        row: list = [None] * len(exprs)
        values = con.execute(f"SELECT {', '.join(exprs[i] for i in together)} FROM {relation}").fetchone()
        for i, value in zip(together, values, strict=True):
            row[i] = value
        for i in sorted(self._alone):
            row[i] = con.execute(f"SELECT {exprs[i]} FROM {relation}").fetchone()[0]
        return row


# Conditions are folded into the aggregates' arguments instead of FILTER clauses: DuckDB slices every
# aggregate input once per filtered aggregate, a cost that grows with the square of the aggregates.
def _count(condition: str) -> str:
    """SQL: the rows where ``condition`` is true."""
    return "count(*)" if condition == "TRUE" else f"coalesce(count_if({condition}), 0)"


def _first_lines(condition: str, n: int) -> str:
    """SQL: the first ``n`` lines (ascending) where ``condition`` is true, or NULL if there is none."""
    line = f"CASE WHEN {condition} THEN __line END"
    return f"min_by({line}, {line}, {n})"


def _normalised(text: str) -> str:
    """SQL: the text trimmed, in lower case, with runs of white space made one space (the regular
    expressions run only on values holding white space)."""
    spaced = f"regexp_replace(lower(trim({text})), '\\s+', ' ', 'g')"
    return f"CASE WHEN regexp_matches({text}, '\\s') THEN {spaced} ELSE lower({text}) END"


def _profile_table(
    con: duckdb.DuckDBPyConnection, table: LoadedTable, column_rules: list[RuleLines], sample_rows: int
) -> tuple[TableProfile, list[RuleResult]]:
    """One aggregate pass (and one per distinct count): profile, duplicate counts and every column rule's
    counts and first failing lines; then the sampled rows in one query."""
    cols = list(table.columns.values())
    agg = _Aggregates()
    rows_at = agg.add("count(*)")
    stats_at = [
        (
            agg.add(_count(c.present)),
            agg.add(f"approx_count_distinct({c.text})"),
            agg.add(f"min({c.value})"),
            agg.add(f"max({c.value})"),
            agg.add(f"approx_top_k({c.text}, {TOP_VALUES})") if c.kind == TEXT else None,
        )
        for c in cols
    ]
    distinct_at = agg.add(f"count(DISTINCT hash({', '.join(c.text for c in cols)}))", alone=True)
    bk = [table.columns[c] for c in _business_key(table)]
    if bk:
        norm = ", ".join(_normalised(c.text) for c in bk)
        there = " AND ".join(c.present for c in bk)
        distinct_keys = f"count(DISTINCT CASE WHEN {there} THEN hash({norm}) END)"
        key_at = (agg.add(_count(there)), agg.add(distinct_keys, alone=True))
    rules_at = [
        (
            agg.add(_count(x.column.judged)),
            agg.add(_count(x.column.failed)),
            agg.add(_first_lines(x.column.failed, max(sample_rows, 1))),
        )
        for x in column_rules
    ]
    row = agg.run(con, q(table.relation))
    rows, distinct_rows = row[rows_at], row[distinct_at]
    stats = [[row[i] if i is not None else None for i in at] for at in stats_at]
    near = 0
    if bk:
        with_key, distinct_keys = row[key_at[0]], row[key_at[1]]
        near = max(with_key - distinct_keys - (rows - distinct_rows), 0)
    tops = _top_counts(con, table, cols, [s[4] or [] for s in stats])
    profile = TableProfile(
        table.name,
        table.path,
        rows,
        rows - distinct_rows,
        near,
        [
            ColumnProfile(
                table.name,
                c.name,
                c.kind,
                rows,
                s[0],
                ratio(s[0], rows),
                s[1],
                _plain(s[2]),
                _plain(s[3]),
                top,
            )
            for c, s, top in zip(cols, stats, tops, strict=True)
        ],
    )
    found = [[row[i] for i in at] for at in rules_at]
    sampled = sorted({line for _, _, lines in found for line in (lines or [])[:sample_rows]})
    by_line = {}
    if sampled:
        struct = _sample_struct(table, [c.name for c in cols])
        by_line = dict(
            con.execute(
                f"SELECT __line, {struct} FROM {q(table.relation)} "
                f"WHERE __line IN ({', '.join(map(str, sampled))})"
            ).fetchall()
        )
    results = []
    for lines, (checked, failed, first) in zip(column_rules, found, strict=True):
        samples = [_sample_of(by_line[line], lines.rule.columns) for line in (first or [])[:sample_rows]]
        results.append(_result(lines.rule, rows, checked, failed, samples))
    return profile, results


def _sample_of(row: dict, columns: tuple[str, ...]) -> dict:
    """A sample row cut to its line, key and the rule's columns."""
    return {k: v for k, v in row.items() if k in ("line", "key") or k in columns}


def _top_counts(con, table: LoadedTable, cols, values: list[list[str]]) -> list[list[dict]]:
    """Exact counts of the approximate most frequent values, in one more scan."""
    wanted = [(i, v) for i, vs in enumerate(values) for v in vs if v is not None]
    if not wanted:
        return [[] for _ in cols]
    select = ", ".join(_count(f"{cols[i].text} = {lit(v)}") for i, v in wanted)
    counts = con.execute(f"SELECT {select} FROM {q(table.relation)}").fetchone()
    tops: list[list[dict]] = [[] for _ in cols]
    for (i, v), n in zip(wanted, counts, strict=True):
        tops[i].append({"value": v, "count": n})
    return [sorted(t, key=lambda x: -x["count"]) for t in tops]


def _result(rule: r.Rule, rows: int, checked: int, failed: int, samples: list[dict]) -> RuleResult:
    return RuleResult(
        rule.id,
        rule.table,
        list(rule.columns),
        rule.check,
        rule.severity,
        list(rule.kinds),
        rule.description,
        FAILED if failed else PASSED,
        checked,
        failed,
        ratio(failed, rows),
        [{k: _plain(v) if k not in ("line",) else v for k, v in s.items()} for s in samples],
    )


def _set_result(con, lines: RuleLines, rows: int, sample_rows: int) -> RuleResult:
    """Counts and first failing rows of a set check (its queries name each line at most once)."""
    table = lines.table
    checked = con.execute(f"SELECT count(*) FROM ({lines.judged})").fetchone()[0]
    failed, first = con.execute(
        f"SELECT count(*), min_by(__line, __line, {max(sample_rows, 1)}) FROM ({lines.failed})"
    ).fetchone()
    samples = []
    if failed and sample_rows:
        samples = con.execute(
            f"SELECT {_sample_struct(table, lines.rule.columns)} FROM {q(table.relation)} "
            f"WHERE __line IN ({', '.join(map(str, first[:sample_rows]))}) ORDER BY __line"
        ).fetchall()
    return _result(lines.rule, rows, checked, failed, [s[0] for s in samples])


def new_run_id() -> str:
    return f"q-{datetime.now(UTC).strftime('%Y%m%dt%H%M%S')}-{secrets.token_hex(3)}"


def profile_session(session: Session, sample_rows: int, progress: Progress | None = None) -> QualityRun:
    """Profile every loaded table and run every rule that can run on them."""
    started = time.perf_counter()
    files, con = session.files, session.con
    runnable, skipped = session.rule_lines()
    profiles, results = [], {}
    for i, table in enumerate(session.tables.values()):
        if progress:
            progress(0.5 + i / max(len(session.tables), 1) / 2, f"profiling {table.name}")
        mine = [x for x in runnable if x.table is table]
        column_rules = [x for x in mine if x.column is not None]
        profile, found = _profile_table(con, table, column_rules, sample_rows)
        profiles.append(profile)
        results.update({res.rule_id: res for res in found})
        for x in mine:
            if x.column is None:
                results[x.rule.id] = _set_result(con, x, profile.rows, sample_rows)
    ordered = []
    for table in session.tables.values():
        if table.schema is None:
            continue
        for rule in session.rules.get(table.name, ()):
            if rule.id in results:
                ordered.append(results[rule.id])
            else:
                res = _result(rule, 0, 0, 0, [])
                res.status, res.note = SKIPPED, skipped.get(rule.id, "")
                ordered.append(res)
    return QualityRun(
        run_id=new_run_id(),
        user=files.user,
        job_id=files.job_id,
        layer=files.layer,
        source_job_id=files.source_job_id,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        as_of=files.as_of.isoformat() if files.as_of else None,
        seconds=round(time.perf_counter() - started, 3),
        sample_rows=sample_rows,
        tables=profiles,
        rules=ordered,
    )
