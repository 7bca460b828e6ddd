"""The whole rows behind a rule's failing samples: every column of the profiled row, the raw line it came from
(silver keeps its number in ``_raw_line``) and the answer key's entries for that line. Only the few lines a
run keeps per rule are read, so a page can show them on demand."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import duckdb

from orchestrator.cleaning.engine import LINE
from orchestrator.config import Settings, get_settings
from orchestrator.contracts import job_contract
from orchestrator.jobs import placement
from orchestrator.quality.layers import RAW, LocalFiles, connect, lit, locate, parquet_rows, raw_rows
from orchestrator.quality.model import QualityRun
from orchestrator.storage import Storage, open_lake, paths


@dataclass
class FailingRow:
    """One failing row of a rule, whole, with where it came from and what the generator did to it."""

    line: int  # 0-based row of the profiled layer's file (the raw line, on raw)
    values: dict[str, str | None]  # every column of that row, as text (silver's _raw_line is raw_line)
    raw_line: int | None  # the raw line it came from; None where it is not known (gold)
    raw: dict[str, str | None] = field(default_factory=dict)  # every column of that raw line, as text
    # the answer key's entries for the raw line: column (None for the whole row), kind, clean, dirty (JSON)
    answers: list[dict] = field(default_factory=list)


def failing_rows(run: QualityRun, rule_id: str, settings: Settings | None = None) -> list[FailingRow]:
    """The failing rows ``run`` keeps for a rule, read whole from the layer's file, each with its raw line
    and answer-key entries where the layer descends from raw and the truth is there."""
    rule = run.rule(rule_id)
    lines = [sample["line"] for sample in rule.samples]
    if not lines:
        return []
    storage = open_lake(placement.settings_for_id(run.job_id, settings or get_settings()))
    local = LocalFiles(storage)
    con = connect()
    try:
        raw_path = paths.raw_table(run.user, run.source_job_id, rule.table)
        contract = job_contract(storage, run.user, run.source_job_id).contract
        if run.layer == RAW:
            values = raw_rows(con, storage, rule.table, raw_path, lines, contract)
            raw_lines = {line: line for line in values}
            raws = values
        else:
            path = locate(storage, run.user, run.job_id, run.layer).tables[rule.table]
            read = parquet_rows(con, rule.table, local.path(path), path, lines, contract)
            raw_lines = {line: int(row[LINE]) for line, row in read.items() if row.get(LINE) is not None}
            values = {line: {k: v for k, v in row.items() if k != LINE} for line, row in read.items()}
            known = raw_lines and storage.exists(raw_path)
            raws = raw_rows(con, storage, rule.table, raw_path, raw_lines.values(), contract) if known else {}
        answers = _answers(con, storage, local, run, rule.table, raw_lines.values())
    finally:
        con.close()
        local.close()
    rows = []
    for line in lines:
        if line in values:
            raw_line = raw_lines.get(line)
            rows.append(
                FailingRow(line, values[line], raw_line, raws.get(raw_line, {}), answers.get(raw_line, []))
            )
    return rows


def _answers(
    con: duckdb.DuckDBPyConnection,
    storage: Storage,
    local: LocalFiles,
    run: QualityRun,
    table: str,
    raw_lines: Iterable[int],
) -> dict[int, list[dict]]:
    """The answer key's entries for some raw lines of a table, by line; none if the truth is absent."""
    path = paths.answer_key(run.user, run.source_job_id)
    wanted = sorted(set(raw_lines))
    if not wanted or not storage.exists(path):
        return {}
    found: dict[int, list[dict]] = {}
    for line, column, kind, clean, dirty in con.execute(
        f'SELECT line, "column", kind, clean, dirty FROM read_parquet({lit(local.path(path))}) '
        f'WHERE "table" = ? AND line IN ({", ".join(map(str, wanted))}) ORDER BY line, "column" NULLS FIRST',
        [table],
    ).fetchall():
        found.setdefault(line, []).append({"column": column, "kind": kind, "clean": clean, "dirty": dirty})
    return found
