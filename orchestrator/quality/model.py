"""The records of a quality run: table and column profiles, rule results, scores, comparisons.

``QualityRun.to_dict()`` is the versioned JSON documented in docs/quality-report-schema.md, and
``QualityRun.from_dict`` reads it back (the metrics store keeps it, so a page renders without a rerun).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from orchestrator.domain.rules import ERROR, NOT_NULL, WARNING

SCHEMA_VERSION = 3
DEFAULT_SAMPLE_ROWS = 5
MAX_SAMPLE_ROWS = 100
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
SEVERITIES = (ERROR, WARNING)
NULL_ALLOWED = "allowed"  # a column its rules let be null: empty by design, not incomplete


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


@dataclass(frozen=True)
class SeveritySummary:
    """How the rules of one severity went: an error fails silver, a warning is reported only."""

    rules: int  # rules that ran (passed or failed)
    failing: int
    skipped: int
    failed_rows: int  # rows failing, summed over the rules (a row failing two rules counts twice)


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
        """The versioned JSON: the run's fields, with the severity summary and each column's ``nulls``."""
        data = {"schema_version": SCHEMA_VERSION, **asdict(self)}
        data["summary"] = {severity: asdict(counts) for severity, counts in self.summary().items()}
        nulls = self.nulls()
        for table in data["tables"]:
            for column in table["columns"]:
                column["nulls"] = nulls[column["table"], column["column"]]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> QualityRun:
        """A run from its JSON (any schema version); fields derived from the rules are derived again."""
        plain = {f.name: data.get(f.name) for f in fields(cls)}
        plain["tables"] = [
            TableProfile(
                **{**t, "columns": [ColumnProfile(**_fields_of(ColumnProfile, c)) for c in t["columns"]]}
            )
            for t in data["tables"]
        ]
        plain["rules"] = [RuleResult(**rule) for rule in data["rules"]]
        score = data.get("score")
        if score:
            plain["score"] = Score(**{**score, "kinds": [KindScore(**k) for k in score["kinds"]]})
        return cls(**plain)

    def rule(self, rule_id: str) -> RuleResult:
        return next(r for r in self.rules if r.rule_id == rule_id)

    def failing(self) -> list[RuleResult]:
        """The failing rules, most rows failing first (ties in the order the rules are declared)."""
        return sorted((r for r in self.rules if r.status == FAILED), key=lambda r: -r.failed)

    def summary(self) -> dict[str, SeveritySummary]:
        """Per severity, errors first: rules that ran, those failing, those skipped, their failing rows."""
        ruled = {severity: [r for r in self.rules if r.severity == severity] for severity in SEVERITIES}
        return {
            severity: SeveritySummary(
                rules=sum(r.status != SKIPPED for r in mine),
                failing=sum(r.status == FAILED for r in mine),
                skipped=sum(r.status == SKIPPED for r in mine),
                failed_rows=sum(r.failed for r in mine),
            )
            for severity, mine in ruled.items()
        }

    def nulls(self) -> dict[tuple[str, str], str | None]:
        """Per (table, column): what a missing value is. The severity of the column's not_null rule;
        ``allowed`` where its table has rules but none asks for a value (a coupon most orders lack);
        None where no rule covers the table (gold)."""
        ruled = {r.table for r in self.rules}
        asked = {(r.table, r.columns[0]): r.severity for r in self.rules if r.check == NOT_NULL}
        return {
            (c.table, c.column): asked.get((c.table, c.column), NULL_ALLOWED if c.table in ruled else None)
            for t in self.tables
            for c in t.columns
        }


def _fields_of(cls: type, data: dict) -> dict:
    """The entries of ``data`` that are fields of the dataclass ``cls`` (derived ones are left out)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def ratio(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0
