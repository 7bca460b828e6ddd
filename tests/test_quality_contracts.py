"""Profiling a job of a contract other than the shop's: the rules, columns and kinds are read from the
contract copy the job keeps beside its raw files, and each constraint kind fails exactly the rows that
break it."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestrator.contracts import job_contract
from orchestrator.domain.contract import parse_contract
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec
from orchestrator.quality import failing_rows, profile_job
from orchestrator.quality.model import FAILED, PASSED
from orchestrator.storage import LocalLake, paths

AS_OF = "2025-01-01T00:00:00+00:00"
JOB = "g-ledger-1"

# A ledger declaring one constraint of every kind.
LEDGER = """
apiVersion: v3.1.0
kind: DataContract
id: ledger
name: A small ledger
version: 1.0.0
status: active
schema:
  - name: accounts
    properties:
      - {name: account_id, logicalType: integer, primaryKey: true, required: true}
      - {name: opened_at, logicalType: timestamp, required: true}
      - {name: holder, logicalType: string, required: true}
    customProperties:
      - {property: businessKey, value: [holder]}
  - name: entries
    properties:
      - {name: entry_id, logicalType: integer, primaryKey: true, required: true}
      - name: account_id
        logicalType: integer
        required: true
        relationships: [{type: foreignKey, to: accounts.account_id}]
      - {name: transfer_id, logicalType: integer, required: true, logicalTypeOptions: {minimum: 1}}
      - name: amount
        logicalType: number
        required: true
        logicalTypeOptions: {multipleOf: 0.01, minimum: -10000, maximum: 10000}
      - {name: posted_at, logicalType: timestamp, required: true}
    customProperties:
      - property: constraints
        value:
          - {id: posted_after_opening, kind: after, column: posted_at, via: account_id,
             other: accounts.opened_at, catches: [posted_before_opening]}
          - {id: transfer_balances, kind: balance, column: amount, group: transfer_id,
             catches: [unbalanced]}
  - name: invoices
    properties:
      - {name: invoice_id, logicalType: integer, primaryKey: true, required: true}
      - name: total
        logicalType: number
        required: true
        logicalTypeOptions: {multipleOf: 0.01, minimum: 0}
    customProperties:
      - property: constraints
        value:
          - {id: total_of_lines, kind: aggregate, column: total, via: invoice_id,
             other: invoice_lines.amount, catches: [total_mismatch]}
  - name: invoice_lines
    properties:
      - {name: line_id, logicalType: integer, primaryKey: true, required: true}
      - name: invoice_id
        logicalType: integer
        required: true
        relationships: [{type: foreignKey, to: invoices.invoice_id}]
      - {name: quantity, logicalType: integer, required: true, logicalTypeOptions: {minimum: 1}}
      - {name: price, logicalType: number, required: true, logicalTypeOptions: {multipleOf: 0.01}}
      - {name: amount, logicalType: number, required: true, logicalTypeOptions: {multipleOf: 0.01}}
    customProperties:
      - property: constraints
        value:
          - {id: amount_is_quantity_times_price, kind: row, column: amount, terms: [quantity, price],
             severity: warning}
  - name: readings
    properties:
      - {name: reading_id, logicalType: integer, primaryKey: true, required: true}
      - name: meter
        logicalType: string
        required: true
        quality: [{metric: invalidValues, arguments: {validValues: [north, south]}, mustBe: 0}]
      - {name: counter, logicalType: integer, required: true, logicalTypeOptions: {minimum: 0}}
    customProperties:
      - property: constraints
        value:
          - {id: counter_rises, kind: sequence, column: counter, group: meter, catches: [out_of_order]}
"""


def _entry(i: int, account: int, transfer: int, amount: object, posted: str = "2024-08-01T00:00:00Z"):
    return {
        "entry_id": i,
        "account_id": account,
        "transfer_id": transfer,
        "amount": amount,
        "posted_at": posted,
    }


ROWS: dict[str, list[dict]] = {
    "accounts": [
        {"account_id": 1, "opened_at": "2024-01-01T00:00:00Z", "holder": "Anna"},
        {"account_id": 2, "opened_at": "2024-06-01T00:00:00Z", "holder": "Ben"},
        {"account_id": 3, "opened_at": "", "holder": "Cleo"},  # no opening: its entries are not judged
    ],
    "entries": [
        _entry(1, 1, 10, -50.0),
        _entry(2, 2, 10, 50.0),
        _entry(3, 1, 11, -20.0),
        _entry(4, 2, 11, 25.0, "2024-05-01T00:00:00Z"),  # 5.00 off balance; posted before account 2 opened
        _entry(5, 3, 12, -5.0, "2023-01-01T00:00:00Z"),  # account 3's opening is unknown
        _entry(6, 1, 12, "five"),  # not a number: transfer 12 is not judged
        _entry(7, 1, 13, 7.0),  # one leg alone is not judged
        _entry(1, 1, 10, -50.0),  # an exact copy of line 0: counted once in its transfer
    ],
    "invoices": [
        {"invoice_id": 1, "total": 30.0},
        {"invoice_id": 2, "total": 99.0},  # its line sums to 40.00
        {"invoice_id": 3, "total": 5.0},  # its line's amount is unreadable: not judged
        {"invoice_id": 4, "total": 10.0},  # no lines: not judged
        {"invoice_id": 5, "total": 35.0},
    ],
    "invoice_lines": [
        {"line_id": 1, "invoice_id": 1, "quantity": 1, "price": 10.0, "amount": 10.0},
        {"line_id": 2, "invoice_id": 1, "quantity": 2, "price": 10.0, "amount": 20.0},
        {"line_id": 3, "invoice_id": 2, "quantity": 4, "price": 10.0, "amount": 40.0},
        {"line_id": 4, "invoice_id": 3, "quantity": 1, "price": 5.0, "amount": "??"},
        {"line_id": 5, "invoice_id": 5, "quantity": 3, "price": 10.0, "amount": 35.0},  # 3 x 10 is not 35
    ],
    "readings": [
        {"reading_id": 1, "meter": "north", "counter": 100},
        {"reading_id": 2, "meter": "north", "counter": 110},
        {"reading_id": 3, "meter": "north", "counter": 90},  # falls below its neighbours
        {"reading_id": 4, "meter": "north", "counter": 130},
        {"reading_id": 5, "meter": "south", "counter": 5},
        {"reading_id": 6, "meter": "south", "counter": 7},
        {"reading_id": 7, "meter": "south", "counter": "n/a"},  # unreadable: left out of the order
        {"reading_id": 8, "meter": "south", "counter": 9},
        {"reading_id": 9, "meter": "south", "counter": 3},  # the last reading falls back
    ],
}


def write_contract_job(lake: LocalLake, user: str, job_id: str, text: str, tables: dict[str, list[dict]]):
    """A raw job as the generator leaves it: raw files, the contract's copy and a manifest naming both."""
    source = parse_contract(text)
    for name, rows in tables.items():
        with lake.open_write(paths.raw_table(user, job_id, name)) as handle:
            handle.write("".join(json.dumps(row) + "\n" for row in rows).encode())
    with lake.open_write(paths.raw_contract(user, job_id)) as handle:
        handle.write(source.text.encode())
    manifest = {
        "manifest_version": 1,
        "job_id": job_id,
        "user": user,
        "contract": {
            "id": source.contract.id,
            "version": source.contract.version,
            "path": paths.raw_contract(user, job_id),
            "sha256": source.sha256,
        },
        "as_of": AS_OF,
        "tables": {name: {"raw_path": paths.raw_table(user, job_id, name)} for name in tables},
    }
    with lake.open_write(paths.raw_manifest(user, job_id)) as handle:
        handle.write(json.dumps(manifest).encode())


@pytest.fixture
def ledger_run(settings):
    write_contract_job(LocalLake(settings.data_dir), "alice", JOB, LEDGER, ROWS)
    return profile_job("alice", JOB, "raw", settings, sample_rows=100, save=False)


def _failing(run, rule_id: str) -> list[int]:
    return [sample["line"] for sample in run.rule(rule_id).samples]


def _tables(run) -> dict:
    return {t.table: t for t in run.tables}


@pytest.mark.parametrize(
    ("rule_id", "check", "judged", "failing"),
    [
        ("entries.posted_at.posted_after_opening", "after", 7, [3]),
        ("entries.amount.transfer_balances", "balance", 5, [2, 3]),
        ("invoices.total.total_of_lines", "aggregate", 3, [1]),
        ("invoice_lines.amount.amount_is_quantity_times_price", "row", 4, [4]),
        ("readings.counter.counter_rises", "sequence", 8, [2, 8]),
    ],
)
def test_each_constraint_kind_fails_exactly_the_rows_that_break_it(
    ledger_run, rule_id, check, judged, failing
):
    result = ledger_run.rule(rule_id)
    assert (result.check, result.status) == (check, FAILED)
    assert result.checked == judged
    assert _failing(ledger_run, rule_id) == failing


def test_the_rules_and_columns_are_the_contracts(ledger_run):
    tables = _tables(ledger_run)
    assert set(tables) == {x.table for x in ledger_run.rules} == set(ROWS)
    opened = next(c for c in tables["accounts"].columns if c.column == "opened_at")
    assert (opened.kind, opened.present, opened.rows) == ("timestamp", 2, 3)
    assert _failing(ledger_run, "accounts.opened_at.not_null") == [2]
    amount = next(c for c in tables["entries"].columns if c.column == "amount")
    assert (amount.kind, amount.minimum, amount.maximum) == ("number", -50.0, 50.0)
    assert _failing(ledger_run, "entries.amount.numeric") == [5]
    assert _failing(ledger_run, "readings.counter.numeric") == [6]


def test_uniqueness_holds_on_the_contracts_keys(ledger_run):
    assert _failing(ledger_run, "entries.entry_id.unique") == [7]
    assert _tables(ledger_run)["entries"].exact_duplicate_rows == 1
    assert ledger_run.rule("accounts.account_id.unique").status == PASSED
    assert ledger_run.rule("accounts.business_key.unique").columns == ["holder"]
    assert ledger_run.rule("accounts.business_key.unique").status == PASSED


def test_a_failing_row_of_another_contract_is_read_whole(settings, ledger_run):
    rows = failing_rows(ledger_run, "entries.amount.transfer_balances", settings)
    assert [row.line for row in rows] == [2, 3]
    assert rows[1].values == {
        "entry_id": "4",
        "account_id": "2",
        "transfer_id": "11",
        "amount": "25.0",
        "posted_at": "2024-05-01T00:00:00Z",
    }


def test_silver_is_checked_by_its_generations_contract(settings, ledger_run):
    lake = LocalLake(settings.data_dir)
    readings = pa.table(
        {"reading_id": [1, 2, 3, 4], "meter": ["north"] * 4, "counter": [100, 110, 90, 130]},
    )
    buffer = pa.BufferOutputStream()
    pq.write_table(readings, buffer)
    with lake.open_write(paths.silver_table("alice", JOB, "c-ledger-1", "readings")) as handle:
        handle.write(buffer.getvalue().to_pybytes())
    run = profile_job("alice", "c-ledger-1", "silver", settings, sample_rows=10, save=False)
    assert run.source_job_id == JOB
    assert [x.rule_id for x in run.rules if x.status == FAILED] == ["readings.counter.counter_rises"]
    assert _failing(run, "readings.counter.counter_rises") == [2]


@pytest.mark.parametrize(
    ("contract", "precise"),
    [
        ("bank", ["accounts.opened_at.opened_after_signup", "transactions.booked_at.booked_in_order"]),
        ("iot", ["devices.installed_at.installed_after_site", "readings.read_at.readings_in_time_order"]),
    ],
)
def test_a_generated_job_of_another_contract_is_profiled_and_scored_by_it(settings, contract, precise):
    generated = generate(GenerationSpec(rows=1000, seed=7, error_rate=0.4, contract=contract), "alice")
    run = profile_job("alice", generated.job_id, "raw", settings, save=False)
    constraints = job_contract(LocalLake(settings.data_dir), "alice", generated.job_id).contract.constraints
    assert {c.kind for c in constraints} >= {"after", "sequence"}
    for constraint in constraints:
        result = run.rule(f"{constraint.table}.{constraint.column}.{constraint.id}")
        assert (result.check, result.status) == (constraint.kind, FAILED)
    caught = {kind for c in constraints for kind in c.catches}
    for score in run.score.kinds:
        if score.kind in caught:
            assert score.judgeable and score.recall >= 0.8, score
    flags = {x["rule_id"]: x["precision"] for x in run.score.rules}
    assert [flags[rule_id] for rule_id in precise] == [1.0, 1.0]
