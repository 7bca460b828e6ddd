"""Known answers of scoring (orchestrator/quality/scoring.py) on a job written here by hand: seven people and
four visits, an answer key naming each injected error, one duplicate line, and a silver layer that fixes,
nulls, keeps, quarantines or drops each error. Every expected number below is counted from the rows, not
read from a run; the comments say why each error and each flag counts as it does."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestrator.domain import rules as r
from orchestrator.generation.generator import ANSWER_KEY_SCHEMA, DUPLICATE_SCHEMA
from orchestrator.quality import score_raw, score_silver
from orchestrator.quality.model import KindScore
from orchestrator.storage import LocalLake, paths

USER, JOB, CLEANING = "alice", "g-20250101t000000-abcdef", "c-20250102t000000-abcdef"
AS_OF = "2025-01-01T00:00:00+00:00"
CLINIC = """\
apiVersion: v3.1.0
kind: DataContract
id: clinic
version: 1.0.0
status: active
schema:
  - name: people
    properties:
      - {name: person_id, logicalType: integer, primaryKey: true}
      - {name: email, logicalType: string, required: true}
      - {name: age, logicalType: integer, logicalTypeOptions: {minimum: 0, maximum: 120}}
      - {name: joined, logicalType: timestamp, required: true}
      - {name: nickname, logicalType: string}
  - name: visits
    properties:
      - {name: visit_id, logicalType: integer, primaryKey: true}
      - name: person_id
        logicalType: integer
        required: true
        relationships: [{type: foreignKey, to: people.person_id}]
      - {name: at, logicalType: timestamp, required: true}
      - {name: fee, logicalType: number, logicalTypeOptions: {multipleOf: 0.01}}
    customProperties:
      - property: constraints
        value:
          - {id: after_joining, kind: after, column: at, via: person_id, other: people.joined,
             catches: [order_before_signup]}
  - name: rooms
    properties:
      - {name: code, logicalType: string, primaryKey: true}
      - {name: floor, logicalType: integer}
"""
JAN = "2024-01-01T00:00:00Z"
MARCH = "2024-03-01T00:00:00Z"
PEOPLE = [
    {"person_id": 1, "email": "a@x.org", "age": 30, "joined": JAN, "nickname": "Al"},  # line 0
    {"person_id": 2, "email": "B@x.org", "age": -5, "joined": JAN, "nickname": "Bo"},  # 1: case, negative
    {"person_id": 3, "email": "c@x.org", "age": 150, "joined": JAN, "nickname": "Cy"},  # 2: no error
    {"person_id": 4, "email": "d@x.org", "age": "N/A", "joined": "2024-02-30T00:00:00Z", "nickname": " Di"},
    {"person_id": 2, "email": "B@x.org", "age": -5, "joined": JAN, "nickname": "Bo"},  # 4: copy of line 1
    {"person_id": 5, "email": "", "age": None, "joined": "2030-01-01T00:00:00Z", "nickname": "Ed"},  # 5
    {"person_id": 6, "email": "f@x.org", "age": 119, "joined": JAN, "nickname": "Fy"},  # 6: outlier missed
]
VISITS = [
    {"visit_id": 1, "person_id": 1, "at": MARCH, "fee": 10.5},  # line 0
    {"visit_id": 2, "person_id": 99, "at": MARCH, "fee": 10.5},  # 1: orphan
    {"visit_id": 3, "person_id": 2, "at": "2023-06-01T00:00:00Z", "fee": 10.5},  # 2: before person 2 joined
    {"visit_id": 4, "person_id": 4, "at": "2023-06-01T00:00:00Z", "fee": 10.5},  # 3: before person 4 joined
]
# (table, line, key, column, kind): each injected cell error
ANSWER_KEY = [
    ("people", 0, 1, "nickname", "aa_unknown"),  # kinds no catalogue knows (yet): no rule targets them
    ("people", 1, 2, "email", "case"),
    ("people", 1, 2, "age", "negative"),
    ("people", 3, 4, "age", "wrong_type"),
    ("people", 3, 4, "joined", "impossible_date"),
    ("people", 3, 4, "nickname", "whitespace"),
    ("people", 5, 5, "email", "missing"),
    ("people", 5, 5, "age", "missing"),  # age may be null: no rule judges a missing age
    ("people", 5, 5, "joined", "future_date"),
    ("people", 6, 6, "age", "outlier"),  # 119 is within 0..120: no rule flags it
    ("visits", 0, 1, "at", "zz_later"),
    ("visits", 1, 2, "person_id", "orphan_fk"),
    ("visits", 2, 3, "at", "order_before_signup"),
    ("visits", 3, 4, "at", "order_before_signup"),  # person 4's joined is no date: the rule cannot judge it
]
DUPLICATES = [("people", 4, 1, 2, "exact_duplicate")]  # line 4 repeats line 1 (key 2)


def _ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


TS = pa.timestamp("s", tz="UTC")
TRUTH = {
    "people": pa.table(
        {
            "person_id": pa.array([1, 2, 3, 4, 5, 6], pa.int64()),
            "email": ["a@x.org", "b@x.org", "c@x.org", "d@x.org", "e@x.org", "f@x.org"],
            "age": pa.array([30, 25, 150, 41, 40, 60], pa.int64()),
            "joined": pa.array([_ts(JAN)] * 4 + [_ts("2024-05-01T00:00:00Z"), _ts(JAN)], TS),
            "nickname": ["Al", "Bo", "Cy", "Di", "Ed", "Fy"],
        }
    ),
    "visits": pa.table(
        {
            "visit_id": pa.array([1, 2, 3, 4], pa.int64()),
            "person_id": pa.array([1, 1, 2, 4], pa.int64()),
            "at": pa.array([_ts(MARCH)] * 2 + [_ts("2024-06-01T00:00:00Z")] * 2, TS),
            "fee": pa.array([10.5] * 4, pa.float64()),
        }
    ),
}
ROOMS = pa.table({"code": ["A1"], "floor": pa.array([1], pa.int64())})  # keyed by text: not compared


def _write(lake: LocalLake, path: str, data: bytes) -> None:
    with lake.open_write(path, overwrite=True) as handle:
        handle.write(data)


def _parquet(lake: LocalLake, path: str, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    _write(lake, path, sink.getvalue().to_pybytes())


@pytest.fixture
def job(settings):
    """The generation job: raw files, the contract's copy, a manifest, the answer key, duplicates, truth."""
    lake = LocalLake(settings.data_dir)
    for name, rows in (("people", PEOPLE), ("visits", VISITS)):
        _write(
            lake, paths.raw_table(USER, JOB, name), "".join(json.dumps(row) + "\n" for row in rows).encode()
        )
        _parquet(lake, paths.truth_table(USER, JOB, name), TRUTH[name])
    _write(lake, paths.raw_contract(USER, JOB), CLINIC.encode())
    manifest = {"job_id": JOB, "user": USER, "as_of": AS_OF, "tables": {"people": {}, "visits": {}}}
    _write(lake, paths.raw_manifest(USER, JOB), json.dumps(manifest).encode())
    key = [
        {"table": t, "line": line, "key": k, "column": c, "kind": kind, "clean": "", "dirty": ""}
        for t, line, k, c, kind in ANSWER_KEY
    ]
    _parquet(lake, paths.answer_key(USER, JOB), pa.Table.from_pylist(key, ANSWER_KEY_SCHEMA))
    dups = [dict(zip(DUPLICATE_SCHEMA.names, row, strict=True)) for row in DUPLICATES]
    _parquet(lake, paths.duplicate_map(USER, JOB), pa.Table.from_pylist(dups, DUPLICATE_SCHEMA))
    return settings, lake


def _rule(table: str, column: str, check: str) -> str:
    return f"{table}.{column}.{check}"


def test_raw_recall_and_precision_per_error_kind_are_counted_from_the_answer_key(job):
    settings, _ = job
    score = score_raw(USER, JOB, settings)
    k = KindScore
    # Flags (line: rule): people 1 email pattern and age range (both true), 2 age range (150: no error, a
    # false flag), 3 age numeric, joined timestamp, nickname text (all true), 4 the key's second occurrence
    # (true: the duplicate; its copied cells are left to line 1), 5 email not null and joined not future
    # (true); visits 1 the foreign key (true), 2 after joining (true). A flag counts for every kind its rule
    # targets, so the range's false flag lowers negative's, zero's and outlier's precision alike.
    assert score.kinds == [  # the catalogue's order, then unknown kinds by name
        k("missing", 2, judgeable=1, detected=1, recall=1.0, flagged=1, correct_flags=1, precision=1.0),
        k("whitespace", 1, judgeable=1, detected=1, recall=1.0, flagged=2, correct_flags=2, precision=1.0),
        k("case", 1, judgeable=1, detected=1, recall=1.0, flagged=1, correct_flags=1, precision=1.0),
        k("wrong_type", 1, judgeable=1, detected=1, recall=1.0, flagged=2, correct_flags=2, precision=1.0),
        k("negative", 1, judgeable=1, detected=1, recall=1.0, flagged=2, correct_flags=1, precision=0.5),
        k("outlier", 1, judgeable=1, detected=0, recall=0.0, flagged=2, correct_flags=1, precision=0.5),
        k(
            "impossible_date",
            1,
            judgeable=1,
            detected=1,
            recall=1.0,
            flagged=1,
            correct_flags=1,
            precision=1.0,
        ),
        k("future_date", 1, judgeable=1, detected=1, recall=1.0, flagged=1, correct_flags=1, precision=1.0),
        k("orphan_fk", 1, judgeable=1, detected=1, recall=1.0, flagged=1, correct_flags=1, precision=1.0),
        k(
            "order_before_signup",
            2,
            judgeable=1,
            detected=1,
            recall=1.0,
            flagged=1,
            correct_flags=1,
            precision=1.0,
        ),
        k(
            "exact_duplicate",
            1,
            judgeable=1,
            detected=1,
            recall=1.0,
            flagged=1,
            correct_flags=1,
            precision=1.0,
        ),
        k("aa_unknown", 1),  # nothing judges or flags it: no recall, no precision
        k("zz_later", 1),
    ]
    assert score.totals == {
        "injected": 15,  # 14 cell errors and 1 duplicate line
        "judgeable": 11,  # not: a missing age, the visit of person 4, the two unknown kinds
        "coverage": 0.733333,  # 11 / 15
        "detected": 10,  # the outlier is missed
        "recall": 0.909091,  # 10 / 11
        "flagged": 11,  # the eleven flags above, the copies' two left out
        "correct_flags": 10,
        "precision": 0.909091,  # 10 / 11
    }
    one = {"flagged": 1, "correct_flags": 1, "precision": 1.0}
    assert score.rules == [  # by rule id
        {"rule_id": _rule("people", "age", r.NUMERIC), **one},
        {"rule_id": _rule("people", "age", r.RANGE), "flagged": 2, "correct_flags": 1, "precision": 0.5},
        {"rule_id": _rule("people", "email", r.NOT_NULL), **one},
        {"rule_id": _rule("people", "email", r.PATTERN), **one},
        {"rule_id": _rule("people", "joined", r.NOT_FUTURE), **one},
        {"rule_id": _rule("people", "joined", r.TIMESTAMP), **one},
        {"rule_id": _rule("people", "nickname", r.CANONICAL_TEXT), **one},
        {"rule_id": _rule("people", "person_id", r.UNIQUE), **one},
        {"rule_id": _rule("visits", "at", "after_joining"), **one},
        {"rule_id": _rule("visits", "person_id", r.FOREIGN_KEY), **one},
    ]
    assert score.layer == "raw"


def test_a_flag_on_a_cell_of_another_column_or_kind_is_no_correct_flag(job):
    """The pattern flags line 1's email, which carries a case error: correct. Moved to the nickname, the
    same error no longer makes the email's flag correct, and the email's case error is no longer there."""
    settings, lake = job
    moved = [row if row[:2] != ("people", 1) or row[3] != "email" else ("people", 1, 2, "nickname", "case")
             for row in ANSWER_KEY]  # fmt: skip
    key = [
        {"table": t, "line": line, "key": k, "column": c, "kind": kind, "clean": "", "dirty": ""}
        for t, line, k, c, kind in moved
    ]
    _parquet(lake, paths.answer_key(USER, JOB), pa.Table.from_pylist(key, ANSWER_KEY_SCHEMA))
    score = score_raw(USER, JOB, settings)
    pattern = next(x for x in score.rules if x["rule_id"] == _rule("people", "email", r.PATTERN))
    assert (pattern["flagged"], pattern["correct_flags"], pattern["precision"]) == (1, 0, 0.0)
    case = next(x for x in score.kinds if x.kind == "case")
    # the nickname's text rule targets whitespace only: a case error there is judged by no rule
    assert (case.injected, case.judgeable, case.detected, case.recall) == (1, 0, 0, None)
    assert (case.flagged, case.correct_flags) == (1, 0)  # the email pattern's flag, no longer correct


def test_a_job_without_errors_or_flags_scores_zero_of_zero(job):
    settings, lake = job
    for name, rows in (("people", PEOPLE[:1]), ("visits", VISITS[:1])):
        _write(
            lake, paths.raw_table(USER, JOB, name), "".join(json.dumps(row) + "\n" for row in rows).encode()
        )
    _parquet(lake, paths.answer_key(USER, JOB), ANSWER_KEY_SCHEMA.empty_table())
    _parquet(lake, paths.duplicate_map(USER, JOB), DUPLICATE_SCHEMA.empty_table())
    score = score_raw(USER, JOB, settings)
    assert (score.kinds, score.rules) == ([], [])
    assert score.totals == {
        "injected": 0,
        "judgeable": 0,
        "coverage": 0.0,
        "detected": 0,
        "recall": 0.0,
        "flagged": 0,
        "correct_flags": 0,
        "precision": 0.0,
    }


def _silver(lake: LocalLake, tables: dict[str, pa.Table], quarantine: dict[str, pa.Table]) -> None:
    for name, table in tables.items():
        _parquet(lake, paths.silver_table(USER, JOB, CLEANING, name), table)
    for name, table in quarantine.items():
        _parquet(lake, paths.quarantine_table(USER, JOB, CLEANING, name), table)


def _people(rows: list[tuple]) -> pa.Table:
    ids, emails, ages, joined, nicknames = zip(*rows, strict=True)
    return pa.table(
        {
            "person_id": pa.array(ids, pa.int64()),
            "email": pa.array(emails, pa.string()),
            "age": pa.array(ages, pa.int64()),
            "joined": pa.array([_ts(t) for t in joined], TS),
            "nickname": pa.array(nicknames, pa.string()),
        }
    )


def test_silver_counts_each_error_fixed_nulled_remaining_quarantined_or_dropped(job):
    settings, lake = job
    people = _people(
        [
            (1, "a@x.org", 30, JAN, "Al"),  # as the truth: its unknown kind is fixed
            (2, "b@x.org", None, JAN, "Bo"),  # case fixed, the negative age nulled...
            (2, "b@x.org", None, JAN, "Bo"),  # ... and the duplicate kept: remaining
            (3, "c@x.org", 150, JAN, "Cyd"),  # a clean value changed: damaged
            (5, None, None, "2030-01-01T00:00:00Z", "Ed"),  # missing email and age nulled, the future kept
        ]
    )  # person 4 is quarantined, person 6 is gone
    visits = pa.table(
        {
            "visit_id": pa.array([1, 2, 3, 4], pa.int64()),
            "person_id": pa.array([1, None, 2, 4], pa.int64()),  # the orphan nulled
            "at": pa.array(
                [_ts(MARCH), _ts(MARCH), _ts("2024-06-01T00:00:00Z"), _ts("2023-06-01T00:00:00Z")], TS
            ),
            # visit 1's fee within half a cent of the truth: the same amount; visit 4's a cent off: damaged
            "fee": pa.array([10.504, 10.5, 10.5, 10.51], pa.float64()),
        }
    )  # visit 3's time repaired, visit 4's kept
    tables = {"people": people, "rooms": ROOMS, "visits": visits}
    _silver(lake, tables, {"people": pa.table({"person_id": ["4"]})})
    score = score_silver(USER, CLEANING, settings)
    k = KindScore
    assert score.kinds == [
        k("missing", 2, nulled=2),
        k("whitespace", 1, quarantined=1),
        k("case", 1, fixed=1),
        k("wrong_type", 1, quarantined=1),
        k("negative", 1, nulled=1),
        k("outlier", 1, dropped=1),
        k("impossible_date", 1, quarantined=1),
        k("future_date", 1, remaining=1),
        k("orphan_fk", 1, nulled=1),
        k("order_before_signup", 2, fixed=1, remaining=1),
        k("exact_duplicate", 1, remaining=1),
        k("aa_unknown", 1, fixed=1),
        k("zz_later", 1, fixed=1),
    ]
    assert score.totals == {
        "truth_rows": 10,
        "silver_rows_matched": 9,  # people 1, 2 twice, 3 and 5; the four visits
        "rows_quarantined": 1,
        "rows_dropped": 1,
        "cells_compared": 28,  # 4 people in silver x 4 columns besides the key, 4 visits x 3
        # person 2's age, 3's nickname, 5's email, age and joined; visit 2's person, 4's time and fee
        "cells_differing": 8,
        "cell_accuracy": 0.714286,  # 1 - 8 / 28, to six decimals
        "cells_damaged": 2,  # person 3's nickname and visit 4's fee: no error was injected there
        "injected": 15,
        "fixed": 4,
        "nulled": 4,
        "remaining": 3,
    }
    assert (score.layer, score.rules) == ("silver", [])


def test_a_silver_equal_to_the_truth_fixes_everything_but_what_it_set_aside(job):
    settings, lake = job
    truth = TRUTH["people"]
    _silver(lake, {"people": truth, "visits": TRUTH["visits"]}, {})
    score = score_silver(USER, CLEANING, settings)
    assert all(x.fixed == x.injected for x in score.kinds)
    assert score.totals["cells_differing"] == 0
    assert score.totals["cell_accuracy"] == 1.0
    assert (score.totals["fixed"], score.totals["remaining"], score.totals["rows_dropped"]) == (15, 0, 0)


def test_a_silver_with_no_table_keyed_by_an_integer_compares_nothing(job):
    settings, lake = job
    _silver(lake, {"rooms": ROOMS}, {})
    score = score_silver(USER, CLEANING, settings)
    assert score.kinds == []
    assert score.totals == {
        "truth_rows": 0,
        "silver_rows_matched": 0,
        "rows_quarantined": 0,
        "rows_dropped": 0,
        "cells_compared": 0,
        "cells_differing": 0,
        "cell_accuracy": None,  # nothing compared: no accuracy, rather than a perfect one
        "cells_damaged": 0,
        "injected": 0,
        "fixed": 0,
        "nulled": 0,
        "remaining": 0,
    }
