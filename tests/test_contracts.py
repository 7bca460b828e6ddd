"""Data contracts (ODCS v3.1): every shipped contract is valid by the standard's own JSON Schema, the shop's
contract is the declaration the engines use, bad contracts are refused with the YAML path of what to change,
and a contract with standard fields only is understood."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import faker_commerce
import jsonschema
import pytest
import yaml

from orchestrator.domain import model as m
from orchestrator.domain import shop
from orchestrator.domain.contract import (
    BUILT_IN,
    ContractError,
    _standard_schema,
    built_in,
    built_in_names,
    dump_contract,
    parse_contract,
)
from orchestrator.generation.pools import LOCALES
from orchestrator.generation.spec import GenerationSpec
from orchestrator.service import generate_job
from orchestrator.storage import open_lake, paths

REPOSITORY = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path = REPOSITORY) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "contracts", *args],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("name", built_in_names())
def test_every_shipped_contract_is_valid_by_the_standards_json_schema(name):
    document = yaml.safe_load((BUILT_IN / f"{name}.yaml").read_text())
    jsonschema.Draft201909Validator(_standard_schema()).validate(document)
    assert document["apiVersion"] == "v3.1.0"
    source = built_in(name)
    again = parse_contract(dump_contract(source.contract))  # what the workbench writes is valid too
    assert again.contract == source.contract


def test_the_shop_contract_is_what_the_engines_use_and_agrees_with_the_generators_pools():
    assert "shop" in built_in_names()
    assert built_in("shop").contract == shop.CONTRACT
    assert shop.TABLE_NAMES == (
        "customers",
        "sellers",
        "products",
        "inventory",
        "coupons",
        "orders",
        "order_items",
        "payments",
        "shipments",
        "returns",
        "reviews",
        "events",
    )
    assert shop.CONTRACT.driving_table == "orders"
    assert tuple(sorted(info.country for info in LOCALES.values())) == shop.COUNTRIES
    assert tuple(sorted({info.currency for info in LOCALES.values()})) == shop.CURRENCIES
    assert tuple(sorted({c.lower() for c in faker_commerce.CATEGORIES})) == shop.PRODUCT_CATEGORIES
    total = shop.TABLES["orders"].column("total_amount")
    assert (total.type, total.minimum, total.maximum, total.is_required) == (m.MONEY, 0.01, 100_000, True)
    assert shop.TABLES["orders"].column("coupon_id").nullable
    assert {(c.id, c.kind) for c in shop.CONTRACT.constraints} == {
        ("order_after_signup", m.AFTER),
        ("total_matches_items", m.AGGREGATE),
        ("shipped_after_order", m.AFTER),
        ("line_total", m.ROW),
        ("pays_the_order", m.ROW),
        ("refund_is_line_total", m.ROW),
    }
    pays = next(c for c in shop.CONTRACT.constraints if c.id == "pays_the_order")
    assert (pays.op, [(t.table, t.column, t.sign) for t in pays.participants]) == (
        m.SUM,
        [("payments", "amount", 1), ("orders", "total_amount", 1), ("orders", "discount_amount", -1)],
    )


def test_the_domain_imports_no_engine_and_no_faker():
    code = (
        "import sys\n"
        "import orchestrator.domain.shop, orchestrator.domain.rules, orchestrator.domain.contract\n"
        "print(sorted(m for m in ('faker', 'faker_commerce', 'pandas', 'duckdb', 'pyspark', 'pyarrow') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


STANDARD_ONLY = """
apiVersion: v3.1.0
kind: DataContract
id: ledger
name: A ledger from elsewhere
version: 2.0.0
status: active
schema:
  - name: accounts
    properties:
      - {name: account_id, logicalType: integer, primaryKey: true}
      - {name: holder_email, logicalType: string, required: true}
      - {name: phone, logicalType: string}
      - {name: iban, logicalType: string, logicalTypeOptions: {pattern: "^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"}}
      - name: tier
        logicalType: string
        quality:
          - {metric: invalidValues, arguments: {validValues: [gold, silver]}, mustBe: 0}
      - {name: opened, logicalType: timestamp, required: true}
  - name: postings
    properties:
      - {name: posting_id, logicalType: integer, primaryKey: true}
      - name: account_id
        logicalType: integer
        required: true
        relationships: [{type: foreignKey, to: accounts.account_id}]
      - {name: amount, logicalType: number, logicalTypeOptions: {multipleOf: 0.01, minimum: -1000000}}
      - {name: note, logicalType: string}
"""


def test_a_contract_with_standard_fields_only_is_understood():
    contract = parse_contract(STANDARD_ONLY).contract
    accounts, postings = contract.tables["accounts"], contract.tables["postings"]
    kinds = {c.name: c.type for c in (*accounts.columns, *postings.columns)}
    assert kinds == {
        "account_id": m.FK,  # the postings' column wins the name; the accounts' key is an id (below)
        "holder_email": m.EMAIL,
        "phone": m.PHONE,
        "iban": m.CODE,
        "tier": m.CATEGORY,
        "opened": m.TIMESTAMP,
        "posting_id": m.ID,
        "amount": m.MONEY,
        "note": m.TEXT,
    }
    assert accounts.column("account_id").type == m.ID
    assert postings.column("account_id").references == "accounts"
    assert accounts.column("tier").categories == ("gold", "silver")
    assert accounts.column("phone").nullable and not accounts.column("opened").nullable
    assert postings.column("amount").minimum == -1_000_000
    assert (contract.driving_table, accounts.business_key) == ("accounts", ("account_id",))


def _broken(change: str) -> str:
    """The standard-only contract with one line replaced (``old => new``)."""
    old, new = change.split(" => ")
    assert old in STANDARD_ONLY
    return STANDARD_ONLY.replace(old, new)


@pytest.mark.parametrize(
    ("change", "path", "says"),
    [
        (
            "logicalType: timestamp, => logicalType: timestmp,",
            "schema[accounts].properties[opened]",
            "timestmp",
        ),
        (
            "posting_id, logicalType: integer, primaryKey: true} => posting_id, logicalType: integer}",
            "schema[postings].properties",
            "primary key",
        ),
        (
            "to: accounts.account_id => to: ledgers.account_id",
            "schema[postings].properties[account_id]",
            "ledgers",
        ),
        (
            "quality:\n          - {metric: invalidValues, arguments: {validValues: [gold, silver]}, "
            "mustBe: 0} => customProperties: [{property: kind, value: category}]",
            "schema[accounts].properties[tier].quality",
            "allowed values",
        ),
        ("id: ledger => id: [ledger]", "id", "is not of type 'string'"),
        ("  - name: postings => - name: postings", "line", "not valid YAML"),
    ],
)
def test_a_bad_contract_is_refused_with_the_path_of_what_to_change(change, path, says):
    with pytest.raises(ContractError) as refused:
        parse_contract(_broken(change))
    assert refused.value.field.startswith(path), refused.value.field
    assert says in str(refused.value)


def test_a_constraint_or_key_naming_no_column_is_refused():
    declared = _broken(
        "  - name: postings\n => "
        "  - name: postings\n    customProperties:\n"
        "      - {property: businessKey, value: [account_id, posted_on]}\n"
    )
    with pytest.raises(ContractError, match="'posted_on' is not a column") as refused:
        parse_contract(declared)
    assert refused.value.field == "schema[postings].customProperties.businessKey"
    constraint = _broken(
        "  - name: postings\n => "
        "  - name: postings\n    customProperties:\n      - property: constraints\n        value:\n"
        "          - {id: balance, kind: aggregate, column: amount, via: account_id,\n"
        "             other: accounts.balance}\n"
    )
    with pytest.raises(ContractError, match=r"accounts\.balance is not a column") as refused:
        parse_contract(constraint)
    assert refused.value.field == "schema[postings].customProperties.constraints[balance]"


def test_the_command_line_lists_shows_validates_and_exports_contracts(tmp_path):
    listed = _cli("list")
    assert listed.returncode == 0 and listed.stdout.splitlines()[:3] == [
        "bank         Bank ledger 1.0.0: 5 tables, 26 columns",
        "iot          IoT telemetry 1.0.0: 3 tables, 20 columns",
        "shop         Online shop 1.0.0: 12 tables, 82 columns",
    ]
    shown = _cli("show", "shop")
    assert "orders: key order_id, business key order_id" in shown.stdout
    assert "constraint total_matches_items (aggregate, error)" in shown.stdout

    exported = tmp_path / "shop.yaml"
    assert _cli("export", "shop", "-o", str(exported)).returncode == 0
    assert exported.read_text() == (BUILT_IN / "shop.yaml").read_text()
    again = _cli("export", "shop", "-o", str(exported))
    assert again.returncode == 2 and "exists already; add --force" in again.stderr
    assert _cli("validate", str(exported)).stdout.startswith(f"{exported}: a valid ODCS contract, shop 1.0.0")

    bad = tmp_path / "bad.yaml"
    bad.write_text(_broken("timestamp, => timestmp,"))
    refused = _cli("validate", str(bad))
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: schema[accounts].properties[opened].logicalType: 'timestmp'")
    unknown = _cli("show", "bank-of-nowhere")
    assert (
        unknown.returncode == 2
        and "is not a built-in contract; choose one of bank, iot, shop" in unknown.stderr
    )


def test_a_generation_keeps_the_contract_it_followed_beside_its_manifest(data_dir):
    job = generate_job(GenerationSpec(rows=10, tables=("customers", "orders")), "alice")
    lake = open_lake()
    with lake.open_read(paths.raw_manifest("alice", job.job_id)) as handle:
        recorded = json.load(handle)["contract"]
    with lake.open_read(recorded["path"]) as handle:
        copy = handle.read().decode()
    assert copy == (BUILT_IN / "shop.yaml").read_text()
    assert recorded == {
        "id": "shop",
        "version": "1.0.0",
        "path": paths.raw_contract("alice", job.job_id),
        "sha256": built_in("shop").sha256,
    }


def test_the_worked_example_of_the_vocabulary_is_a_valid_contract():
    text = (REPOSITORY / "docs" / "contracts.md").read_text()
    example = text.split("## A worked example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    contract = parse_contract(example).contract
    assert contract.tables["order_items"].parent == "orders"
    assert contract.tables["orders"].column("total_amount").is_required
    [constraint] = contract.constraints
    assert (constraint.kind, constraint.other_table) == (m.AGGREGATE, "order_items")
    assert constraint.via == "order_id"


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ("op: sum", "op: difference", "'difference' is not one of product, sum"),
        ("op: sum", "op: product", "-customers.credit: only a sum subtracts"),
        ("-customers.credit]", "-accounts.credit]", "invoices has no single foreign key to 'accounts'"),
        ("terms: [net, -customers.credit]", "terms: []", "is missing: name the columns"),
        (
            "name: net\n        logicalType: number",
            "name: net\n        logicalType: string",
            "net is not a number",
        ),
    ],
    ids=["unknown op", "minus in a product", "no foreign key", "no terms", "text term"],
)
def test_a_row_constraint_that_cannot_be_computed_is_refused_with_its_path(old, new, says):
    from tests.test_clean_contracts import INVOICES

    assert old in INVOICES
    with pytest.raises(ContractError) as refused:
        parse_contract(INVOICES.replace(old, new))
    assert refused.value.field.startswith(
        "schema[invoices].customProperties.constraints[due_is_net_less_credit]"
    )
    assert says in str(refused.value)
