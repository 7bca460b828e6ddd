"""Generation from any contract: the built-in bank and iot, and a contract of standard fields only, through
the generic builder: related tables, volumes, constraints on the clean truth, determinism, an exact answer
key, notes for what is generated otherwise than declared, and the command line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from orchestrator.cli import main
from orchestrator.contracts import resolve
from orchestrator.errors import AlreadyExists, InvalidInput
from orchestrator.generation import catalogue
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec
from tests.gen_helpers import (
    assert_answer_key_reproduces_raw,
    assert_references_resolve,
    raw_records,
)
from tests.test_contracts import STANDARD_ONLY

OBJECT_TYPED = """
apiVersion: v3.1.0
kind: DataContract
id: devices
name: Devices with settings
version: 1.0.0
status: active
schema:
  - name: devices
    properties:
      - {name: device_id, logicalType: integer, primaryKey: true, required: true}
      - {name: settings, logicalType: object, required: true}
      - name: serial
        logicalType: string
        required: true
        logicalTypeOptions: {pattern: "^(AB|CD)[0-9]{4}$"}
"""


@pytest.fixture
def standard_only(tmp_path: Path) -> str:
    path = tmp_path / "ledger.yaml"
    path.write_text(STANDARD_ONLY, encoding="utf-8")
    return str(path)


@pytest.fixture(params=["bank", "iot", "standard_only"])
def contract(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("standard_only") if request.param == "standard_only" else request.param


def _con(root: Path, result) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name, table in result.tables.items():
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{root / table.truth_path}')")
    return con


def test_every_reference_of_the_clean_truth_resolves_and_children_follow_their_volume(data_dir, contract):
    result = generate(GenerationSpec(rows=400, seed=4, contract=contract, chunk_rows=150), "alice")
    declared = resolve(contract, "alice").contract
    assert set(result.tables) == set(declared.tables)
    con = _con(data_dir, result)
    assert_references_resolve(con, declared)
    for table in declared.tables.values():
        per = table.volume.get("per")
        if per:
            link = next(c.name for c in table.columns if c.references == per)
            key = declared.tables[per].key
            low, high = con.execute(
                f"SELECT min(n), max(n) FROM (SELECT p.{key}, count(c.{link}) n "
                f"FROM {per} p LEFT JOIN {table.name} c ON c.{link} = p.{key} GROUP BY 1)"
            ).fetchone()
            assert table.volume["min"] <= low <= high <= table.volume["max"], table.name
    assert result.tables[declared.driving_table].truth_rows == 400


def test_raw_is_the_same_whatever_the_chunk_size_and_more_rows_keep_the_first(data_dir, contract):
    small = generate(GenerationSpec(rows=300, seed=5, contract=contract, chunk_rows=37), "alice")
    large = generate(GenerationSpec(rows=300, seed=5, contract=contract), "alice")
    assert {t: r.sha256 for t, r in small.tables.items()} == {t: r.sha256 for t, r in large.tables.items()}
    more = generate(GenerationSpec(rows=700, seed=5, contract=contract, chunk_rows=90), "alice")
    for name, table in small.tables.items():
        head = (data_dir / table.raw_path).read_bytes()
        full = (data_dir / more.tables[name].raw_path).read_bytes()
        assert head and full.startswith(head) and len(full) > len(head), name


def test_the_answer_key_explains_every_raw_cell(data_dir, contract):
    result = generate(GenerationSpec(rows=300, seed=8, contract=contract, chunk_rows=111), "alice")
    assert result.errors_injected > 0
    assert_answer_key_reproduces_raw(data_dir, result)


def test_constraints_hold_on_the_clean_truth_and_their_contradictions_are_recorded(data_dir):
    bank = generate(GenerationSpec(rows=500, seed=6, contract="bank"), "alice")
    con = _con(data_dir, bank)
    checks = {
        "legs of a transfer sum to zero": "SELECT count(*) FROM (SELECT transfer_id, sum(amount) s "
        "FROM transfer_legs GROUP BY 1) WHERE abs(s) > 0.001",
        "a balance is the sum of its transactions": "SELECT count(*) FROM accounts a LEFT JOIN "
        "(SELECT account_id, sum(amount) s FROM transactions GROUP BY 1) t USING (account_id) "
        "WHERE abs(a.balance - coalesce(t.s, 0)) > 0.001",
        "an account opens after its customer signs up": "SELECT count(*) FROM accounts "
        "JOIN customers USING (customer_id) WHERE opened_at <= signup_at",
        "transactions are booked in order": "SELECT count(*) FROM (SELECT booked_at, lag(booked_at) OVER "
        "(PARTITION BY account_id ORDER BY transaction_id) prev FROM transactions) WHERE booked_at <= prev",
    }
    for label, query in checks.items():
        assert con.execute(query).fetchone() == (0,), label
    assert con.execute("SELECT count(*) FROM transactions").fetchone()[0] > 500
    iot = generate(GenerationSpec(rows=200, seed=6, contract="iot"), "alice")
    con = _con(data_dir, iot)
    assert con.execute(
        "SELECT count(*) FROM (SELECT read_at, lag(read_at) OVER "
        "(PARTITION BY device_id ORDER BY reading_id) prev FROM readings) WHERE read_at <= prev"
    ).fetchone() == (0,)
    assert con.execute(
        "SELECT count(*) FROM devices d JOIN sites s USING (site_id) WHERE d.installed_at <= s.installed_at"
    ).fetchone() == (0,)
    assert con.execute(
        "SELECT count(*) FROM readings WHERE temperature < -40 OR temperature > 85"
    ).fetchone() == (0,)
    rates = json.loads((data_dir / bank.manifest_path).read_text())["error_rates"]
    assert rates["accounts"]["opened_at"]["out_of_order"]["count"] > 0
    assert rates["accounts"]["balance"]["arithmetic_mismatch"]["count"] > 0
    assert rates["transfer_legs"]["amount"]["arithmetic_mismatch"]["count"] > 0
    assert rates["transactions"]["booked_at"]["out_of_order"]["count"] > 0
    for name, result in (("bank", bank), ("iot", iot)):  # every kind its contract can receive
        kinds = set(
            pq.read_table(data_dir / result.answer_key_path, columns=["kind"]).column("kind").to_pylist()
        )
        assert kinds == set(catalogue.receivable(resolve(name, "alice").contract)), name
        assert "out_of_order" in kinds and not kinds & {"order_before_signup", "total_mismatch"}, name


def test_an_object_typed_column_is_generated_as_text_and_the_job_says_so(data_dir, tmp_path, capsys):
    path = tmp_path / "devices.yaml"
    path.write_text(OBJECT_TYPED, encoding="utf-8")
    result = generate(GenerationSpec(rows=50, seed=1, contract=str(path), error_rate=0), "alice")
    rows = raw_records(data_dir, result.tables["devices"].raw_path)
    assert all(isinstance(row["settings"], str) and row["settings"] for row in rows)
    assert all(len(row["serial"]) == 10 and row["serial"].isalnum() for row in rows)  # the fallback
    manifest = json.loads((data_dir / result.manifest_path).read_text())
    assert manifest["notes"] == list(result.notes)
    assert any("devices.settings is declared as object; it was generated as text" in n for n in result.notes)
    assert any("devices.serial: the pattern" in n and "too complex" in n for n in result.notes)
    assert (data_dir / manifest["contract"]["path"]).read_text() == OBJECT_TYPED
    assert main(["generate", "--user", "alice", "--rows", "20", "--contract", str(path)]) == 0
    assert "note: devices.settings is declared as object; it was generated as text" in capsys.readouterr().out


def test_codes_follow_their_pattern(data_dir):
    result = generate(GenerationSpec(rows=100, seed=2, contract="bank", error_rate=0), "alice")
    accounts = raw_records(data_dir, result.tables["accounts"].raw_path)
    assert all(re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{12}", row["iban"]) for row in accounts)
    transfers = raw_records(data_dir, result.tables["transfers"].raw_path)
    assert all(re.fullmatch(r"TR[0-9]{10}", row["reference"]) for row in transfers)
    assert result.notes == ()


def test_raw_of_another_contract_is_written_once(data_dir):
    first = generate(GenerationSpec(rows=50, seed=1, contract="iot"), "alice", job_id="g-iot-once-1")
    before = (data_dir / first.tables["readings"].raw_path).read_bytes()
    with pytest.raises(AlreadyExists):
        generate(GenerationSpec(rows=80, seed=2, contract="iot"), "alice", job_id="g-iot-once-1")
    assert (data_dir / first.tables["readings"].raw_path).read_bytes() == before


def test_a_spec_is_checked_against_its_contract_and_an_old_spec_means_the_shop():
    spec = GenerationSpec(rows=10, contract="iot", table_rates={"readings": 0.1})
    assert spec.tables == ("sites", "devices", "readings")
    with pytest.raises(InvalidInput) as err:
        GenerationSpec(rows=10, contract="iot", tables=("orders",))
    assert err.value.field == "tables" and "sites, devices, readings" in str(err.value)
    old = {k: v for k, v in GenerationSpec(rows=10).to_dict().items() if k != "contract"}
    assert GenerationSpec.from_dict(old).contract == "shop"
    assert GenerationSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_the_command_line_generates_from_a_built_in_contract(data_dir, capsys):
    code = main(
        [
            *("generate", "--user", "alice", "--rows", "40", "--contract", "bank", "--json"),
            *("--kind-rate", "missing=0.2", "--table-rate", "accounts=0"),
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["tables"]) == {"customers", "accounts", "transactions", "transfers", "transfer_legs"}
    manifest = json.loads((data_dir / printed["manifest"]).read_text())
    assert manifest["contract"]["id"] == "bank" and manifest["spec"]["contract"] == "bank"
    assert {k for column in manifest["error_rates"]["accounts"].values() for k in column} == {"missing"}
    assert (
        main(["generate", "--user", "alice", "--rows", "5", "--contract", "bank", "--tables", "orders"]) == 2
    )
