"""Before and after: two runs (raw versus silver of a job, or two jobs), rule by rule and column by column."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from orchestrator.quality.model import QualityRun

# The fields of a comparison headed as people read them, wherever it is shown (the page, the XLSX report).
HEADINGS = {
    "rule_id": "rule",
    "status_a": "status before",
    "status_b": "status after",
    "failed_a": "failing before",
    "failed_b": "failing after",
    "share_a": "share before",  # of the rows, so jobs of different sizes compare
    "share_b": "share after",
    "completeness_a": "completeness before",
    "completeness_b": "completeness after",
    "distinct_a": "distinct before",
    "distinct_b": "distinct after",
}


@dataclass
class RuleDelta:
    rule_id: str
    table: str
    severity: str
    status_a: str
    status_b: str
    failed_a: int
    failed_b: int
    share_a: float
    share_b: float
    change: int  # failed_b - failed_a


@dataclass
class ColumnDelta:
    table: str
    column: str
    completeness_a: float | None
    completeness_b: float | None
    distinct_a: int | None
    distinct_b: int | None


@dataclass
class Comparison:
    """What changed from run ``a`` (before) to run ``b`` (after)."""

    run_a: dict
    run_b: dict
    tables: list[dict] = field(default_factory=list)  # {"table", "rows_a", "rows_b"}
    rules: list[RuleDelta] = field(default_factory=list)
    columns: list[ColumnDelta] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _ref(run: QualityRun) -> dict:
    return {"run_id": run.run_id, "job_id": run.job_id, "layer": run.layer, "created_at": run.created_at}


def compare(run_a: QualityRun, run_b: QualityRun) -> Comparison:
    """Rule and column metrics side by side; what only one run has shows None or 0 on the other side."""
    rows_a = {t.table: t.rows for t in run_a.tables}
    rows_b = {t.table: t.rows for t in run_b.tables}
    tables = [
        {"table": t, "rows_a": rows_a.get(t), "rows_b": rows_b.get(t)}
        for t in dict.fromkeys([*rows_a, *rows_b])
    ]
    rules_a, rules_b = {x.rule_id: x for x in run_a.rules}, {x.rule_id: x for x in run_b.rules}
    rules = []
    for rule_id in dict.fromkeys([*rules_a, *rules_b]):
        a, b = rules_a.get(rule_id), rules_b.get(rule_id)
        ref = a or b
        rules.append(
            RuleDelta(
                rule_id,
                ref.table,
                ref.severity,
                a.status if a else "absent",
                b.status if b else "absent",
                a.failed if a else 0,
                b.failed if b else 0,
                a.share if a else 0.0,
                b.share if b else 0.0,
                (b.failed if b else 0) - (a.failed if a else 0),
            )
        )
    cols_a = {(c.table, c.column): c for t in run_a.tables for c in t.columns}
    cols_b = {(c.table, c.column): c for t in run_b.tables for c in t.columns}
    columns = []
    for key in dict.fromkeys([*cols_a, *cols_b]):
        a, b = cols_a.get(key), cols_b.get(key)
        columns.append(
            ColumnDelta(
                *key,
                a.completeness if a else None,
                b.completeness if b else None,
                a.distinct if a else None,
                b.distinct if b else None,
            )
        )
    return Comparison(_ref(run_a), _ref(run_b), tables, rules, columns)
