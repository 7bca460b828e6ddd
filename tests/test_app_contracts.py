"""The Contracts page and the Generate page's contract choice, through AppTest: the contracts a user may see,
a contract uploaded or edited and saved only once valid, its diagram, the link to generate from it; and the
Generate page's tables following the contract chosen."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator import contracts
from orchestrator.cleaning.pipeline import read_manifest
from orchestrator.config import get_settings
from orchestrator.contract_views import contract_diagram
from orchestrator.domain import model as m
from orchestrator.domain.contract import built_in, built_in_names
from orchestrator.domain.shop import TABLE_NAMES
from orchestrator.storage import open_lake
from tests import test_app_pages
from tests.test_app_pages import generate_button, generation_ended, signed_in, texts
from tests.test_user_contracts import MISTYPED, ORDERS

data_dir = test_app_pages.data_dir  # alice (an administrator) and bob in a data root of this module's own


def graphviz(at) -> list[str]:
    """The DOT text of every Graphviz chart on the page."""
    return [chart.proto.spec for chart in at.get("graphviz_chart")]


def saved(data_dir: Path) -> list[str]:
    folder = data_dir / "contracts"
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def listed(at) -> list[str]:
    return at.dataframe[0].value["contract"].tolist()


def test_the_page_lists_the_built_ins_and_shows_the_shop_with_its_diagram_and_tables():
    at = signed_in("bob", "pages/contracts.py")
    assert listed(at) == list(built_in_names())
    assert at.selectbox[0].value == "shop" and at.query_params["contract"] == "shop"
    assert texts(at.subheader)[0] == "Online shop (shop 1.0.0)"
    [diagram] = graphviz(at)
    shop = built_in("shop").contract
    for table in shop.tables.values():
        assert f'"{table.name}" [label="{table.name}\\nkey: {table.key}\\nrows: ' in diagram
    assert '"orders" [label="orders\\nkey: order_id\\nrows: the rows asked for"' in diagram
    assert '"order_items" -> "orders" [label="order_id"];' in diagram
    assert diagram.count(" -> ") == sum(1 for t in shop.tables.values() for c in t.columns if c.references)
    assert [e.label for e in at.expander][:2] == [
        "customers: key customer_id, rows 0.25 × orders",
        "sellers: key seller_id, rows 0.01 × orders",
    ]
    [link] = at.page_link
    assert (link.label, link.proto.page, link.proto.query_string) == (
        "Generate from this contract",
        "generation",
        "contract=shop",
    )
    assert at.get("download_button")[0].proto.label == "Download YAML"
    assert "delete_contract" not in [b.key for b in at.button]  # a built-in cannot be deleted


def test_an_uploaded_contract_is_saved_as_the_users_own_and_the_generate_link_names_it(data_dir):
    at = signed_in("bob", "pages/contracts.py")
    at.file_uploader(key="contract_upload").set_value(
        ("Orders.yaml", ORDERS.encode(), "application/yaml")
    ).run()
    assert at.text_area(key="contract_text_shop").value == ORDERS  # the upload is in the editor
    assert at.text_input(key="contract_name_shop").value == "orders"
    at.button(key="save_contract").click().run()
    assert texts(at.success) == ["Saved as `bob/orders`: a valid contract of 2 tables."]
    assert listed(at) == [*built_in_names(), "bob/orders"]
    assert at.selectbox[0].value == "bob/orders" and at.query_params["contract"] == "bob/orders"
    [diagram] = graphviz(at)
    assert '"order_items" -> "orders" [label="order_id"];' in diagram
    assert '"orders" [label="orders\\nkey: order_id\\nrows: the rows asked for"' in diagram
    [link] = at.page_link
    assert link.proto.query_string == "contract=bob%2Forders"
    assert contracts.resolve("bob/orders", "bob").text == ORDERS
    assert "bob/orders.yaml" in saved(data_dir)

    at.button(key="delete_contract").click().run()
    assert texts(at.success) == ["Contract `bob/orders` deleted."]
    assert listed(at) == list(built_in_names()) and at.selectbox[0].value == "shop"
    assert "bob/orders.yaml" not in saved(data_dir)


def test_an_invalid_contract_shows_where_to_change_it_and_stores_nothing(data_dir):
    at = signed_in("bob", "pages/contracts.py")
    before = saved(data_dir) if (data_dir / "contracts").exists() else []
    at.text_area(key="contract_text_shop").input(MISTYPED)
    at.text_input(key="contract_name_shop").input("mistyped")
    at.button(key="save_contract").click().run()
    [error] = texts(at.error)
    assert error.startswith(
        "Nothing saved. At `schema[orders].properties[total_amount].logicalType`: 'nmber' is not one of"
    )
    assert listed(at) == list(built_in_names())
    assert (saved(data_dir) if (data_dir / "contracts").exists() else []) == before
    assert at.text_area(key="contract_text_shop").value == MISTYPED  # kept to be corrected

    at.text_area(key="contract_text_shop").input(ORDERS)
    at.text_input(key="contract_name_shop").input("Bad Name")
    at.button(key="save_contract").click().run()
    assert texts(at.error) == [
        "Nothing saved. At `name`: 'Bad Name' is not a contract name; use 1-48 lower-case letters, digits, _ "
        "or -"
    ]


def test_a_user_sees_only_their_own_contracts_and_an_administrator_everyones():
    contracts.save("alice", "ledger", ORDERS)
    bob = signed_in("bob", "pages/contracts.py", contract="alice/ledger")
    assert "alice/ledger" not in listed(bob)
    assert bob.selectbox[0].value == "shop"  # another user's reference opens nothing of theirs

    alice = signed_in("alice", "pages/contracts.py", contract="alice/ledger")
    assert "alice/ledger" in listed(alice)
    assert alice.selectbox[0].value == "alice/ledger"
    contracts.save("bob", "invoices", ORDERS)
    admin = signed_in("alice", "pages/contracts.py", contract="bob/invoices")
    frame = admin.dataframe[0].value.set_index("contract")
    assert frame.loc["bob/invoices", "owner"] == "bob" and frame.loc["shop", "owner"] == "built in"
    assert admin.selectbox[0].value == "bob/invoices"
    assert "Owner: bob." in texts(admin.caption)[1]
    assert not admin.page_link  # a job follows its owner's contracts: alice generates from a copy of her own
    assert "bob's own: save a copy as yours to generate from it." in texts(admin.caption)
    assert "delete_contract" not in [b.key for b in admin.button]  # an administrator deletes only their own


def test_a_contract_that_no_longer_validates_is_listed_with_its_error_and_only_deleted(data_dir):
    contracts.save("bob", "stale", ORDERS)
    (data_dir / "contracts" / "bob" / "stale.yaml").write_text(MISTYPED)  # an older version of the rules
    told = "`bob/stale` no longer validates, so it cannot be shown, generated from or copied. At "
    where = "`schema[orders].properties[total_amount].logicalType`: 'nmber' is not one of"

    admin = signed_in("alice", "pages/contracts.py")  # every other contract stays usable
    frame = admin.dataframe[0].value.set_index("contract")
    assert frame.loc["bob/stale", "error"].startswith(where.replace("`", ""))
    assert frame.loc["bob/stale", ["name", "tables"]].isna().all() and frame["error"].notna().sum() == 1
    assert admin.subheader and not admin.error
    admin.selectbox[0].set_value("bob/stale").run()
    assert [e.startswith(told + where) for e in texts(admin.error)] == [True]
    assert not admin.main.button and not admin.subheader  # an administrator deletes only their own

    bob = signed_in("bob", "pages/contracts.py", contract="bob/stale")
    assert bob.selectbox[0].value == "bob/stale" and not graphviz(bob)
    assert texts(bob.error)[0].startswith(told + where) and not bob.text_area and not bob.page_link
    assert [b.key for b in bob.main.button] == ["delete_contract"]
    offered = signed_in("bob", "pages/generate.py").selectbox(key="contract").options
    assert not [o for o in offered if o.startswith("bob/stale")]
    bob.button(key="delete_contract").click().run()
    assert texts(bob.success) == ["Contract `bob/stale` deleted."]
    assert "bob/stale" not in listed(bob) and not (data_dir / "contracts" / "bob" / "stale.yaml").exists()


def test_generate_offers_the_contracts_and_the_query_parameter_preselects_one():
    contracts.save("alice", "lines", ORDERS)
    at = signed_in("alice", "pages/generate.py")
    picker = at.selectbox(key="contract")
    assert picker.value == "shop" and "alice/lines: Orders and their lines (alice's)" in picker.options
    assert at.multiselect(key="tables_shop").value == list(TABLE_NAMES)

    chosen = signed_in("alice", "pages/generate.py", contract="alice/lines")
    assert chosen.selectbox(key="contract").value == "alice/lines"
    tables = chosen.multiselect(key="tables_alice/lines")
    assert (tables.options, tables.value) == (["orders", "order_items"], ["orders", "order_items"])
    assert [s.label for s in chosen.slider if s.key.startswith("table_")] == ["orders", "order_items"]
    assert chosen.number_input[0].label == "Rows of orders"
    assert chosen.selectbox(key="preview_table").options == ["orders", "order_items"]
    assert list(chosen.dataframe[0].value.columns) == ["order_id", "total_amount"]  # the preview follows it

    bob = signed_in("bob", "pages/generate.py", contract="alice/lines")  # another user's: not offered
    assert texts(bob.warning) == ["There is no contract alice/lines you may use; choose one below."]
    assert bob.selectbox(key="contract").value == "shop"
    assert "alice/lines" not in " ".join(bob.selectbox(key="contract").options)


@pytest.mark.parametrize("name", built_in_names())
def test_generate_makes_a_job_of_every_built_in_contract(name):
    contract = built_in(name).contract
    at = signed_in("alice", "pages/generate.py", contract=name)
    assert at.number_input[0].label == f"Rows of {contract.driving_table}"
    at.number_input[0].set_value(30).run()
    assert at.selectbox(key="preview_table").options == list(contract.table_names)
    generate_button(at).click().run()
    job_id = re.search(r"Generated job `(g-[^`]+)`", generation_ended(at).success[0].value)[1]
    manifest = read_manifest(open_lake(get_settings()), "alice", job_id)
    assert manifest["contract"]["id"] == contract.id
    assert sorted(manifest["tables"]) == sorted(contract.table_names)
    assert manifest["tables"][contract.driving_table]["rows"] >= 30


def test_generate_keeps_a_tables_rate_to_its_contract():
    contracts.save("alice", "items", ORDERS)
    at = signed_in("alice", "pages/generate.py")
    at.slider(key="table_shop:orders").set_value(0.0).run()  # moved by hand
    at.selectbox(key="contract").set_value("alice/items").run()
    assert at.query_params["contract"] == "alice/items"
    assert at.slider(key="table_alice/items:orders").value == 0.3  # the shop's orders rate is not carried
    at.slider(key="error_rate").set_value(0.5).run()
    assert at.slider(key="table_alice/items:orders").value == 0.5
    at.selectbox(key="contract").set_value("shop").run()
    assert at.slider(key="table_shop:orders").value == 0.5  # left behind with its contract: follows again
    assert at.multiselect(key="tables_shop").value == list(TABLE_NAMES)


def test_the_diagram_escapes_names_that_dot_would_read_as_syntax():
    odd = 'say "hi"\\n'  # a quote and a backslash-n that DOT would read as a line break
    column = m.Column(name="ref", type=m.FK, references=odd)
    tables = {
        odd: m.Table(name=odd, columns=(m.Column(name="id", type=m.ID),), business_key=("id",)),
        "b": m.Table(name="b", columns=(m.Column(name="id", type=m.ID), column), business_key=("id",)),
    }
    diagram = contract_diagram(m.Contract("c", "c", "1", tables, driving_table=odd))
    assert '"say \\"hi\\"\\\\n" [label="say \\"hi\\"\\\\n\\nkey: id\\nrows: the rows asked for"' in diagram
    assert '"b" -> "say \\"hi\\"\\\\n" [label="ref"];' in diagram
