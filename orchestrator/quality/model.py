"""The records of a quality run: table and column profiles, rule results, scores, comparisons.

``QualityRun.to_dict()`` is the versioned JSON documented in docs/quality-report-schema.md, and
``QualityRun.from_dict`` reads it back (the metrics store keeps it, so a page renders without a rerun).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

SCHEMA_VERSION = 2
DEFAULT_SAMPLE_ROWS = 5
MAX_SAMPLE_ROWS = 100
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass
class ColumnProfile:
    """Completeness, distinct count, range and most frequent values of one column."""

    table: str
    column: str
    kind: str  # number, timestamp or text
    rows: int
    present: int  # not null and not blank
    completeness: float
    distinct: int  # approximate (HyperLogLog) above a few thousand values
    minimum: str | float | None
    maximum: str | float | None
    top: list[dict] = field(default_factory=list)  # [{"value": ..., "count": ...}], most frequent first


@dataclass
class TableProfile:
    """Row count and duplicate counts of one table, with its column profiles."""

    table: str
    path: str
    rows: int
    exact_duplicate_rows: int  # rows equal in every column to an earlier row
    near_duplicate_rows: (
        int  # rows repeating an earlier business key (trimmed, lower case) but not exact copies
    )
    columns: list[ColumnProfile] = field(default_factory=list)


@dataclass
class RuleResult:
    """What one rule found: rows judged, rows failing, their share of the table and the first failing rows."""

    rule_id: str
    table: str
    columns: list[str]
    check: str
    severity: str
    kinds: list[str]
    description: str
    status: str  # passed, failed or skipped
    checked: int = 0
    failed: int = 0
    share: float = 0.0  # failed / rows of the table
    samples: list[dict] = field(default_factory=list)  # {"line": 0-based row, "key": ..., column: value}
    note: str = ""  # why a rule was skipped


@dataclass
class KindScore:
    """Scoring of one error kind: detection on raw, or what is left of it on silver."""

    kind: str
    injected: int
    # raw: errors in cells some rule targeting the kind judged, those a rule flagged, and flag precision
    judgeable: int = 0
    detected: int = 0
    recall: float | None = None
    flagged: int = 0
    correct_flags: int = 0
    precision: float | None = None
    # silver: errors whose row reached silver with the clean value, with the value set aside as null
    # (caught, not repairable), still wrong, or whose row was set aside
    fixed: int = 0
    nulled: int = 0
    remaining: int = 0
    quarantined: int = 0
    dropped: int = 0


@dataclass
class Score:
    """How the layer compares with the generator's truth, per error kind (and per rule on raw)."""

    layer: str
    kinds: list[KindScore] = field(default_factory=list)
    rules: list[dict] = field(
        default_factory=list
    )  # raw: {"rule_id", "flagged", "correct_flags", "precision"}
    totals: dict = field(default_factory=dict)


@dataclass
class QualityRun:
    """One profiling run of one layer of one job."""

    run_id: str
    user: str
    job_id: str
    layer: str
    source_job_id: str
    created_at: str
    as_of: str | None
    seconds: float
    sample_rows: int
    tables: list[TableProfile] = field(default_factory=list)
    rules: list[RuleResult] = field(default_factory=list)
    score: Score | None = None

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> QualityRun:
        plain = {f.name: data.get(f.name) for f in fields(cls)}
        plain["tables"] = [
            TableProfile(**{**t, "columns": [ColumnProfile(**c) for c in t["columns"]]})
            for t in data["tables"]
        ]
        plain["rules"] = [RuleResult(**rule) for rule in data["rules"]]
        score = data.get("score")
        if score:
            plain["score"] = Score(**{**score, "kinds": [KindScore(**k) for k in score["kinds"]]})
        return cls(**plain)

    def rule(self, rule_id: str) -> RuleResult:
        return next(r for r in self.rules if r.rule_id == rule_id)


def ratio(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0
