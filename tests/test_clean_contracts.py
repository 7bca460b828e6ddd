"""Cleaning any contract end to end on the small path: the built-in bank and iot, a contract of standard
fields only and a third-party contract of dozens of tables, each generated dirty, cleaned through the job
store and compared with its clean truth: every row accounted for, raw unchanged, few wrong cells, the
repairable kinds restored, keys unique and references resolving in silver, and the contract's constraints
repaired from their witnesses."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from orchestrator import REPOSITORY
from orchestrator.contracts import resolve
from orchestrator.domain import model as m
from orchestrator.domain import rules as r
from orchestrator.domain import shop as s
from orchestrator.generation import catalogue
from orchestrator.generation.spec import GenerationSpec
from orchestrator.quality import profile_job
from orchestrator.quality.model import FAILED, SKIPPED
from orchestrator.service import execute_job, generate_job, job_outputs, launch_clean
from tests.test_contracts import STANDARD_ONLY
from tests.test_third_party_contracts import third_party_contract

REPAIRABLE = {k for k, kind in catalogue.KINDS.items() if kind.repairable and not kind.row_level}


# A row constraint that sums terms of its own row and of its parent's (op: sum, "-" subtracts).
INVOICES = """
apiVersion: v3.1.0
kind: DataContract
id: invoices
name: Invoices less their customer's credit
version: 1.0.0
status: active
schema:
  - name: customers
    properties:
      - {name: customer_id, logicalType: integer, primaryKey: true}
      - name: credit
        logicalType: number
        required: true
        logicalTypeOptions: {multipleOf: 0.01, minimum: 0, maximum: 100}
  - name: invoices
    properties:
      - {name: invoice_id, logicalType: integer, primaryKey: true}
      - name: customer_id
        logicalType: integer
        required: true
        relationships: [{type: foreignKey, to: customers.customer_id}]
      - name: net
        logicalType: number
        required: true
        logicalTypeOptions: {multipleOf: 0.01, minimum: 200, maximum: 1000}
      - name: due
        logicalType: number
        required: true
        logicalTypeOptions: {multipleOf: 0.01, minimum: 0, maximum: 1000}
    customProperties:
      - property: constraints
        value:
          - id: due_is_net_less_credit
            kind: row
            op: sum
            column: due
            terms: [net, -customers.credit]
            catches: [arithmetic_mismatch]
"""


def _contract_ref(name: str, folder: Path) -> str:
    if name == "invoices":
        path = folder / "invoices.yaml"
        path.write_text(INVOICES, encoding="utf-8")
        return str(path)
    if name == "standard_only":
        path = folder / "ledger.yaml"
        path.write_text(STANDARD_ONLY, encoding="utf-8")
        return str(path)
    if name == "published":
        return str(third_party_contract(folder / "sales-database.yaml"))
    return name


@pytest.fixture(scope="module", params=["bank", "iot", "invoices", "standard_only", "published"])
def cleaned(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ORCHESTRATOR_DATA_DIR", str(root))
        mp.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "1000000")
        ref = _contract_ref(request.param, root)
        generated = generate_job(GenerationSpec(rows=400, seed=9, contract=ref, error_rate=0.3), "alice")
        raw = {name: _sha256(root / t.raw_path) for name, t in generated.tables.items()}
        job = execute_job(launch_clean("alice", generated.job_id).job.job_id)
        contract = resolve(ref, "alice").contract
        outputs = job_outputs(job)
    return root, generated, job, outputs, contract, raw


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _compared(root: Path, generated, outputs: dict, contract: m.Contract) -> pd.DataFrame:
    """Every silver cell beside its truth (by primary key), with the error kind the answer key recorded
    for it (None where the generator left it clean)."""
    key = pq.read_table(root / generated.answer_key_path).to_pandas()
    parts = []
    for name, table in contract.tables.items():
        pk = list(table.primary_key)
        silver = pq.read_table(root / outputs["silver"][name]).to_pandas()
        truth = pq.read_table(root / generated.tables[name].truth_path).to_pandas()
        for column in pk:  # the same instant, whichever unit each file holds it in
            if pd.api.types.is_datetime64_any_dtype(truth[column]):
                silver[column] = silver[column].astype("datetime64[ms, UTC]")
                truth[column] = truth[column].astype("datetime64[ms, UTC]")
        both = silver.merge(truth, on=pk, suffixes=("", "__truth"), how="left", indicator=True)
        assert (both["_merge"] == "both").all(), f"{name}: silver holds a row the truth does not"
        kinds = key[key["table"] == name]
        for column in table.column_names:
            if column in pk:
                continue
            cells = pd.DataFrame(
                {"table": name, "column": column, "silver": both[column], "truth": both[f"{column}__truth"]}
            )
            if len(pk) == 1:
                recorded = kinds[kinds["column"] == column].drop_duplicates("key").set_index("key")["kind"]
                cells["kind"] = both[pk[0]].map(recorded).to_numpy()
            else:
                cells["kind"] = None
            parts.append(cells)
    return pd.concat(parts, ignore_index=True)


def _equal(silver, truth) -> bool:
    if pd.isna(silver) or pd.isna(truth):
        return bool(pd.isna(silver) and pd.isna(truth))
    if isinstance(silver, pd.Timestamp) and isinstance(truth, pd.Timestamp):
        return silver.timestamp() == truth.timestamp()
    if isinstance(silver, int | float | np.number) and isinstance(truth, int | float | np.number):
        return abs(float(silver) - float(truth)) < 0.005
    return silver == truth


def test_the_job_succeeds_and_accounts_for_every_row_of_every_table(cleaned):
    root, generated, job, outputs, contract, _raw = cleaned
    assert job.state == "succeeded", job.error
    assert set(outputs["silver"]) == set(contract.tables) == set(generated.tables)
    for name, counts in outputs["tables"].items():
        lines = (root / generated.tables[name].raw_path).read_bytes().count(b"\n")
        silver = pq.read_metadata(root / outputs["silver"][name]).num_rows
        quarantined = pq.read_metadata(root / outputs["quarantine"][name]).num_rows
        assert (counts["rows_in"], counts["rows_out"], counts["quarantined"]) == (lines, silver, quarantined)
        assert lines == silver + quarantined + counts["duplicates_removed"], name


def test_raw_files_are_unchanged(cleaned):
    root, generated, _job, _outputs, _contract, raw = cleaned
    assert {name: _sha256(root / t.raw_path) for name, t in generated.tables.items()} == raw


def test_silver_holds_few_wrong_cells_and_restores_the_repairable_kinds(cleaned):
    root, generated, _job, outputs, contract, _raw = cleaned
    cells = _compared(root, generated, outputs, contract)
    same = cells.apply(lambda row: _equal(row["silver"], row["truth"]), axis=1)
    wrong = ~same & cells["silver"].notna()
    assert wrong.mean() <= 0.005, cells[wrong].groupby(["table", "column", "kind"], dropna=False).size()
    repairable = cells["kind"].isin(REPAIRABLE)
    if repairable.sum() >= 20:
        restored = same[repairable].groupby(cells["kind"][repairable]).mean()
        assert (restored >= 0.99).all(), restored.to_dict()


@pytest.mark.parametrize("cleaned", ["invoices"], indirect=True)
def test_a_due_contradicting_its_net_and_credit_is_restored_where_both_are_intact(cleaned):
    """The invoices' row constraint (due = net - the customer's credit): every contradicted due whose net and
    credit the generator left intact is restored to its clean value."""
    root, generated, _job, outputs, contract, _raw = cleaned
    key = pq.read_table(root / generated.answer_key_path).to_pandas()
    truth = pq.read_table(root / generated.tables["invoices"].truth_path).to_pandas()
    damaged_credit = set(key[(key["table"] == "customers") & (key["column"] == "credit")]["key"])
    damaged_net = set(key[(key["table"] == "invoices") & (key["column"] == "net")]["key"])
    intact = truth[~truth["invoice_id"].isin(damaged_net) & ~truth["customer_id"].isin(damaged_credit)]
    cells = _compared(root, generated, outputs, contract)
    due = cells[(cells["table"] == "invoices") & (cells["column"] == "due")]
    contradicted = key[(key["table"] == "invoices") & (key["kind"] == "arithmetic_mismatch")]["key"]
    silver = pq.read_table(root / outputs["silver"]["invoices"]).to_pandas()["invoice_id"]
    judged = due[silver.isin(set(contradicted) & set(intact["invoice_id"])).to_numpy()]
    assert len(judged) >= 5
    assert judged.apply(lambda row: _equal(row["silver"], row["truth"]), axis=1).all()


def test_silver_keys_are_unique_and_references_resolve(cleaned):
    root, _generated, _job, outputs, contract, _raw = cleaned
    silver = {name: pq.read_table(root / path).to_pandas() for name, path in outputs["silver"].items()}
    for name, table in contract.tables.items():
        frame = silver[name]
        assert not frame.duplicated(list(table.primary_key)).any(), name
        for column in table.columns:
            if column.is_required:
                assert frame[column.name].notna().all(), (name, column.name)
            if column.references:
                parent = silver[column.references][contract.tables[column.references].sole_key]
                assert frame[column.name].dropna().isin(parent).all(), (name, column.name)


def test_quarantined_rows_name_a_rule_of_their_contract(cleaned):
    root, _generated, _job, outputs, contract, _raw = cleaned
    rules = r.rules_of(contract)
    for name, path in outputs["quarantine"].items():
        named = pq.read_table(root / path).to_pandas()["_rule"]
        assert named.notna().all() and set(named) <= {rule.id for rule in rules[name]}, name


# The shop's own generator (its contract names it: generator: shop) is the one place its names belong.
SHOP_GENERATOR = {
    "orchestrator/domain/shop.py",
    "orchestrator/generation/tables.py",
    "orchestrator/generation/spec.py",
}
# Names of the shop's columns that are also plain words of the code (a column "name", a setting "amount")
COMMON_WORDS = {
    "name",
    "email",
    "phone",
    "country",
    "city",
    "status",
    "category",
    "price",
    "currency",
    "title",
}
COMMON_WORDS |= {"rating", "method", "reason", "device", "sku", "quantity", "amount", "warehouse", "code"}
COMMON_WORDS |= {"body", "created_at", "updated_at", "event_id", "first_name", "last_name"}


def test_no_code_outside_the_shops_generator_names_a_table_or_column_of_the_shop():
    """Cleaning, quality, loading, the pages and the notebooks follow whichever contract a job has."""
    names = (set(s.TABLE_NAMES) | {c.name for t in s.TABLES.values() for c in t.columns}) - COMMON_WORDS
    alternatives = "|".join(sorted(names, key=len, reverse=True))
    quoted = re.compile(f"[\"']({alternatives})[\"']")
    found = {}
    for folder in ("orchestrator", "notebooks", "pages"):
        for path in sorted(REPOSITORY.joinpath(folder).rglob("*.py")):
            relative = path.relative_to(REPOSITORY).as_posix()
            hits = sorted({m.group(1) for m in quoted.finditer(path.read_text(encoding="utf-8"))})
            if hits and relative not in SHOP_GENERATOR:
                found[relative] = hits
    assert found == {}


@pytest.mark.parametrize("cleaned", ["bank"], indirect=True)
def test_silver_passes_its_contracts_error_rules_and_a_sum_is_judged_only_where_its_rows_are_whole(cleaned):
    """The bank's balance is the sum of its transactions, without complete_when: judged on raw, where every
    row is there; on silver, where quarantined transactions leave sums short, it is skipped with the reason.
    Every other error rule of the contract passes on silver."""
    root, generated, job, _outputs, _contract, _raw = cleaned
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ORCHESTRATOR_DATA_DIR", str(root))
        raw = profile_job("alice", generated.job_id, "raw", save=False)
        silver = profile_job("alice", job.job_id, "silver", save=False)
    rule = "accounts.balance.balance_is_the_sum_of_transactions"
    assert raw.rule(rule).status == FAILED and raw.rule(rule).checked > 0
    assert silver.rule(rule).status == SKIPPED and "judged on raw only" in silver.rule(rule).note
    failing = [r.rule_id for r in silver.rules if r.severity == "error" and r.status == FAILED]
    assert failing == []
