"""A user's own data contracts: saved only once valid, seen by their owner (and administrators), resolved from
every form of reference, deleted by their owner only; and the contract a job followed."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import contracts
from orchestrator.domain.contract import ContractError, built_in, built_in_names
from orchestrator.errors import InvalidInput, NotFound
from orchestrator.storage import open_lake, paths

ORDERS = """apiVersion: v3.1.0
kind: DataContract
id: orders
name: Orders and their lines
version: 1.0.0
status: active
schema:
  - name: orders
    properties:
      - {name: order_id, logicalType: integer, primaryKey: true, required: true}
      - {name: total_amount, logicalType: number, required: true, logicalTypeOptions: {multipleOf: 0.01}}
  - name: order_items
    properties:
      - {name: item_id, logicalType: integer, primaryKey: true, required: true}
      - name: order_id
        logicalType: integer
        required: true
        relationships: [{type: foreignKey, to: orders.order_id}]
"""
MISTYPED = ORDERS.replace("logicalType: number", "logicalType: nmber")


def stored(data_dir: Path) -> list[str]:
    """Every file under the contracts folder, hidden ones too, relative to it."""
    folder = data_dir / "contracts"
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def refs(entries: list[contracts.ContractEntry]) -> list[str]:
    return [entry.ref for entry in entries]


def test_save_validates_and_keeps_the_users_contract_as_written(data_dir):
    entry = contracts.save("alice", "orders", ORDERS)
    assert (entry.ref, entry.owner) == ("alice/orders", "alice")
    assert list(entry.source.contract.tables) == ["orders", "order_items"]
    assert stored(data_dir) == ["alice/orders.yaml"]
    assert contracts.resolve("alice/orders", "alice").text == ORDERS

    newer = ORDERS.replace("version: 1.0.0", "version: 1.1.0")
    contracts.save("alice", "orders", newer)  # the same name replaces it
    assert contracts.resolve("alice/orders", "alice").contract.version == "1.1.0"
    assert stored(data_dir) == ["alice/orders.yaml"]


def test_a_contract_that_does_not_validate_stores_nothing_and_names_the_yaml_path(data_dir):
    with pytest.raises(ContractError) as refused:
        contracts.save("alice", "orders", MISTYPED)
    assert refused.value.field == "schema[orders].properties[total_amount].logicalType"
    assert str(refused.value).startswith(
        "schema[orders].properties[total_amount].logicalType: 'nmber' is not one of"
    )
    assert not (data_dir / "contracts").exists()
    assert refs(contracts.listed("alice")) == list(built_in_names())

    contracts.save("alice", "orders", ORDERS)
    with pytest.raises(ContractError, match=r"^line 2, column 5: is not valid YAML"):
        contracts.save("alice", "orders", "id: [\nkind")
    assert contracts.resolve("alice/orders", "alice").text == ORDERS  # the earlier one stays
    assert stored(data_dir) == ["alice/orders.yaml"]


@pytest.mark.parametrize(
    "name", ["", "Orders", "-orders", "_orders", "a" * 49, "my orders", "a/b", "../bob", "o.yaml", "o\n"]
)
def test_a_name_that_is_not_a_contract_name_is_refused(data_dir, name):
    with pytest.raises(ContractError, match=r"^name: .* is not a contract name; use 1-48 lower-case"):
        contracts.save("alice", name, ORDERS)
    assert not (data_dir / "contracts").exists()


def test_a_built_in_contracts_name_is_refused(data_dir):
    with pytest.raises(ContractError, match=r"^name: 'shop' is a built-in contract's name; choose another"):
        contracts.save("alice", "shop", ORDERS)
    with pytest.raises(InvalidInput, match=r"^user: "):
        contracts.save("../bob", "orders", ORDERS)
    assert not (data_dir / "contracts").exists()


def test_a_user_sees_the_built_ins_and_their_own_and_an_administrator_everyones(data_dir):
    contracts.save("alice", "orders", ORDERS)
    contracts.save("bob", "orders", ORDERS)
    contracts.save("bob", "lines", ORDERS)
    built_ins = list(built_in_names())
    assert "shop" in built_ins

    assert refs(contracts.listed("alice")) == [*built_ins, "alice/orders"]
    assert refs(contracts.listed("bob")) == [*built_ins, "bob/lines", "bob/orders"]
    assert refs(contracts.listed("carol")) == built_ins
    everyone = contracts.listed("carol", is_admin=True)
    assert refs(everyone) == [*built_ins, "alice/orders", "bob/lines", "bob/orders"]
    assert [entry.owner for entry in everyone] == [None] * len(built_ins) + ["alice", "bob", "bob"]
    assert everyone[0].source == built_in(built_ins[0])


def test_a_stored_contract_that_no_longer_validates_is_listed_with_its_error(data_dir):
    contracts.save("bob", "lines", ORDERS)
    contracts.save("bob", "orders", ORDERS)
    (data_dir / "contracts" / "bob" / "orders.yaml").write_text(MISTYPED)  # a hand edit
    built_ins = list(built_in_names())
    for entries in (contracts.listed("bob"), contracts.listed("alice", is_admin=True)):
        assert refs(entries) == [*built_ins, "bob/lines", "bob/orders"]
        lines, orders = entries[-2:]
        assert (lines.source.contract.name, lines.error) == ("Orders and their lines", None)
        assert orders.source is None and orders.owner == "bob"
        assert orders.error.field == "schema[orders].properties[total_amount].logicalType"
        assert "'nmber' is not one of" in str(orders.error)
    contracts.delete("bob/orders", "bob")
    assert refs(contracts.listed("bob")) == [*built_ins, "bob/lines"]


def test_resolve_names_a_built_in_a_users_own_or_a_file(data_dir, tmp_path):
    contracts.save("alice", "orders", ORDERS)
    assert contracts.resolve("shop", "bob") == built_in("shop")
    assert contracts.resolve("alice/orders", "alice").contract.id == "orders"
    assert contracts.resolve("alice/orders", "carol", is_admin=True).text == ORDERS
    with pytest.raises(NotFound, match=r"^contract alice/orders does not exist$"):
        contracts.resolve("alice/orders", "bob")  # another user's: as if it were not there
    with pytest.raises(NotFound, match=r"^contract alice/invoices does not exist$"):
        contracts.resolve("alice/invoices", "alice")
    for escape in ("bob/../alice/orders", "bob/../../contracts/alice/orders"):
        with pytest.raises(ContractError, match=r"^contract: .* is neither a built-in contract"):
            contracts.resolve(escape, "bob")

    mine = tmp_path / "mine.yaml"
    mine.write_text(ORDERS, encoding="utf-8")
    assert contracts.resolve(str(mine), "bob").text == ORDERS
    mine.write_text(MISTYPED, encoding="utf-8")
    with pytest.raises(ContractError, match=r"^schema\[orders\]\.properties\[total_amount\]\.logicalType: "):
        contracts.resolve(str(mine), "bob")
    with pytest.raises(
        ContractError, match=r"^contract: 'bank-x' is neither a built-in contract \(bank, iot, shop\)"
    ):
        contracts.resolve("bank-x", "bob")


def test_a_user_deletes_their_own_contract_only(data_dir):
    contracts.save("alice", "orders", ORDERS)
    contracts.save("bob", "orders", ORDERS)
    for ref in ("alice/orders", "bob/../alice/orders", "bob/orders/../../alice/orders"):
        with pytest.raises(NotFound, match=r"^contract .* does not exist$"):
            contracts.delete(ref, "bob")
    with pytest.raises(ContractError, match=r"^contract: 'shop' is built in; only your own contracts can be"):
        contracts.delete("shop", "alice", is_admin=True)
    assert stored(data_dir) == ["alice/orders.yaml", "bob/orders.yaml"]

    contracts.delete("alice/orders", "alice")
    assert refs(contracts.listed("alice")) == list(built_in_names())
    with pytest.raises(NotFound, match=r"^contract alice/orders does not exist$"):
        contracts.delete("alice/orders", "alice")
    contracts.delete("bob/orders", "alice", is_admin=True)  # an administrator reaches everyone's
    assert stored(data_dir) == []


def test_a_job_follows_the_copy_beside_its_raw_files_or_else_the_shop(settings):
    lake = open_lake(settings)
    assert contracts.job_contract(lake, "alice", "g-older") == built_in("shop")
    with lake.open_write(paths.raw_contract("alice", "g-newer")) as handle:
        handle.write(ORDERS.encode())
    followed = contracts.job_contract(lake, "alice", "g-newer")
    assert (followed.text, list(followed.contract.tables)) == (ORDERS, ["orders", "order_items"])
