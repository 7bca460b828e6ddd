"""Known answers of the constraint repairs (orchestrator/cleaning/constraints.py), one operation at a time, on
small contracts written here and raw tables built by hand: what each constraint kind fills, replaces, nulls
or quarantines, and the rule each repaired cell is blamed on. Every expected value is worked out by hand in
the test's text."""

from __future__ import annotations

import pyarrow as pa

from orchestrator.cleaning import engine
from orchestrator.domain import model as m
from orchestrator.domain.contract import parse_contract

AS_OF = 2_000_000_000  # 2033: every time below lies before it
HEAD = """\
apiVersion: v3.1.0
kind: DataContract
id: known
name: Known
version: 1.0.0
status: active
description: {purpose: Known answers of the constraint repairs}
schema:
"""
MONEY = "logicalType: number, logicalTypeOptions: {multipleOf: 0.01}"

# Line totals within a row (a product with an integer term), a cost with a one-decimal term, and a net
# amount that subtracts a fee (a sum).
LINES = f"""\
  - name: lines
    physicalType: table
    properties:
      - {{name: line_id, logicalType: integer, primaryKey: true, required: true}}
      - {{name: quantity, logicalType: integer}}
      - {{name: price, {MONEY}}}
      - {{name: line_total, {MONEY}}}
      - {{name: weight, logicalType: number, logicalTypeOptions: {{multipleOf: 0.1}}}}
      - {{name: rate, {MONEY}}}
      - {{name: cost, {MONEY}}}
      - {{name: gross, {MONEY}}}
      - {{name: fee, {MONEY}}}
      - {{name: net, {MONEY}}}
    customProperties:
      - property: constraints
        value:
          - {{id: line_is_quantity_times_price, kind: row, column: line_total, terms: [quantity, price]}}
          - {{id: cost_is_weight_times_rate, kind: row, column: cost, terms: [weight, rate]}}
          - {{id: net_is_gross_less_fee, kind: row, op: sum, column: net, terms: [gross, -fee]}}
"""

# Orders whose total is judged by the sum of their items (an aggregate) and by their payment (a row term
# in the parent row). The discount is declared before the total, but only the total is judged, so the
# total is repaired first and the discount then follows from it.
TILL = f"""\
  - name: orders
    physicalType: table
    properties:
      - {{name: order_id, logicalType: integer, primaryKey: true, required: true}}
      - {{name: discount, {MONEY}}}
      - {{name: total, {MONEY}}}
    customProperties:
      - property: constraints
        value:
          - {{id: total_is_items, kind: aggregate, column: total, via: order_id, other: items.line_total,
             complete_when: {{sequence: line_no}}}}
  - name: items
    physicalType: table
    properties:
      - {{name: item_id, logicalType: integer, primaryKey: true, required: true}}
      - name: order_id
        logicalType: integer
        relationships: [{{type: foreignKey, to: orders.order_id}}]
      - {{name: line_no, logicalType: integer}}
      - {{name: quantity, logicalType: integer}}
      - {{name: price, {MONEY}}}
      - {{name: line_total, {MONEY}}}
    customProperties:
      - {{property: parent, value: orders}}
      - property: constraints
        value:
          - {{id: line_is_quantity_times_price, kind: row, column: line_total, terms: [quantity, price]}}
  - name: payments
    physicalType: table
    properties:
      - {{name: payment_id, logicalType: integer, primaryKey: true, required: true}}
      - name: order_id
        logicalType: integer
        relationships: [{{type: foreignKey, to: orders.order_id}}]
      - {{name: amount, {MONEY}}}
    customProperties:
      - {{property: parent, value: orders}}
      - property: constraints
        value:
          - {{id: pays_the_order, kind: row, op: sum, column: amount,
             terms: [orders.total, -orders.discount]}}
"""

VISITS = """\
  - name: customers
    physicalType: table
    properties:
      - {name: customer_id, logicalType: integer, primaryKey: true, required: true}
      - {name: joined, logicalType: timestamp, required: true}
  - name: visits
    physicalType: table
    properties:
      - {name: visit_id, logicalType: integer, primaryKey: true, required: true}
      - name: customer_id
        logicalType: integer
        required: true
        relationships: [{type: foreignKey, to: customers.customer_id}]
      - name: arrived
        logicalType: timestamp
        required: true
        customProperties: [{property: essential, value: true}]
      - {name: noted, logicalType: timestamp}
    customProperties:
      - {property: parent, value: customers}
      - property: constraints
        value:
          - {id: arrived_after_joining, kind: after, column: arrived, via: customer_id,
             other: customers.joined}
          - {id: noted_after_joining, kind: after, column: noted, via: customer_id, other: customers.joined}
"""

LEDGER = f"""\
  - name: legs
    physicalType: table
    properties:
      - {{name: leg_id, logicalType: integer, primaryKey: true, required: true}}
      - {{name: transfer, logicalType: integer}}
      - {{name: amount, {MONEY}}}
    customProperties:
      - property: constraints
        value:
          - {{id: legs_balance, kind: balance, column: amount, group: transfer}}
  - name: moves
    physicalType: table
    properties:
      - {{name: move_id, logicalType: integer, primaryKey: true, required: true}}
      - {{name: batch, logicalType: integer}}
      - {{name: units, logicalType: integer}}
    customProperties:
      - property: constraints
        value:
          - {{id: moves_balance, kind: balance, column: units, group: batch, severity: warning}}
"""

METER = """\
  - name: readings
    physicalType: table
    properties:
      - {name: reading_id, logicalType: integer, primaryKey: true, required: true}
      - {name: meter, logicalType: integer}
      - {name: count, logicalType: integer}
    customProperties:
      - property: constraints
        value:
          - {id: counts_rise, kind: sequence, column: count, group: meter}
"""


def _contract(tables: str) -> m.Contract:
    return parse_contract(HEAD + tables).contract


def _raw(contract: m.Contract, table: str, rows: list[dict[str, str | None]]) -> pa.Table:
    """Raw text of ``rows`` in the table's columns (a column a row leaves out is missing)."""
    return pa.table(
        {
            c.name: pa.array([row.get(c.name) for row in rows], pa.string())
            for c in contract.tables[table].columns
        }
    )


def _clean(contract: m.Contract, rows: dict[str, list[dict[str, str | None]]]) -> dict:
    return engine.clean(contract, {t: _raw(contract, t, r) for t, r in rows.items()}, AS_OF)


def _silver(result: engine.TableResult, *names: str) -> dict:
    """Per key of the kept rows: the values of ``names`` and the rules blamed (``_issues``)."""
    table = pa.Table.from_pandas(result.silver, preserve_index=False).to_pylist()
    key = result.silver.columns[0]
    return {row[key]: tuple(row[name] for name in (*names, engine.ISSUES)) for row in table}


def _quarantined(result: engine.TableResult) -> dict:
    """Per key (as raw text) of the quarantined rows: the rule that rejected it (``_rule``)."""
    table = pa.Table.from_pandas(result.quarantine, preserve_index=False).to_pylist()
    key = result.quarantine.columns[0]
    return {row[key]: row[engine.RULE] for row in table}


# 1. Within a row ----------------------------------------------------------------------------------
def test_a_product_within_a_row_fills_its_value_and_each_term_and_replaces_a_contradicted_value():
    """line_total = quantity x price: a missing total is the product (not_null); a contradicting total is
    replaced by it (the constraint's rule); a missing price is total / quantity at cents (10 / 3 = 3.33);
    a missing quantity only where whole (10 / 2.50 = 4, but 10 / 3.00 is left missing); two missing
    values give nothing."""
    contract = _contract(LINES)
    rows = [
        {"line_id": "1", "quantity": "3", "price": "2.50"},
        {"line_id": "2", "quantity": "3", "price": "2.50", "line_total": "8.00"},
        {"line_id": "3", "price": "2.50", "line_total": "10.00"},
        {"line_id": "4", "price": "3.00", "line_total": "10.00"},
        {"line_id": "5", "quantity": "3", "line_total": "10.00"},
        {"line_id": "6", "quantity": "3", "price": "2.50", "line_total": "7.50"},
        {"line_id": "7", "line_total": "10.00"},
        {"line_id": "8", "quantity": "2", "price": "0.10", "line_total": "0.20"},
    ]
    result = _clean(contract, {"lines": rows})["lines"]
    assert pa.types.is_integer(result.silver["quantity"].dtype.pyarrow_dtype)  # a filled 4 is no 4.0
    got = _silver(result, "quantity", "price", "line_total")
    assert got == {
        1: (3, 2.5, 7.5, "lines.line_total.not_null"),
        2: (3, 2.5, 7.5, "lines.line_total.line_is_quantity_times_price"),
        3: (4, 2.5, 10.0, "lines.quantity.not_null"),
        4: (None, 3.0, 10.0, None),
        5: (3, 3.33, 10.0, "lines.price.not_null"),
        6: (3, 2.5, 7.5, None),
        7: (None, None, 10.0, None),
        8: (2, 0.1, 0.2, None),
    }


def test_a_product_with_a_one_decimal_term_rounds_the_money_to_cents_and_the_term_to_tenths():
    """cost = weight x rate: 1.3 x 0.77 = 1.001 is 1.00; 2.00 / 0.30 = 6.67 is weight 6.7; a cost a cent
    off (1.01 for 2.0 x 0.50) is replaced by 1.00."""
    contract = _contract(LINES)
    rows = [
        {"line_id": "1", "weight": "1.3", "rate": "0.77"},
        {"line_id": "2", "rate": "0.30", "cost": "2.00"},
        {"line_id": "3", "weight": "2.0", "rate": "0.50", "cost": "1.01"},
        {"line_id": "4", "weight": "2.0", "cost": "1.00"},
    ]
    got = _silver(_clean(contract, {"lines": rows})["lines"], "weight", "rate", "cost")
    assert got == {
        1: (1.3, 0.77, 1.0, "lines.cost.not_null"),
        2: (6.7, 0.3, 2.0, "lines.weight.not_null"),
        3: (2.0, 0.5, 1.0, "lines.cost.cost_is_weight_times_rate"),
        4: (2.0, 0.5, 1.0, "lines.rate.not_null"),
    }


def test_a_sum_within_a_row_with_a_subtracted_term_fills_each_term_from_the_others():
    """net = gross - fee: net 100 - 2.50 = 97.50; gross 97.50 + 2.50 = 100; fee 100 - 97.50 = 2.50; a net
    of 90 is replaced by 97.50 and blamed on the constraint."""
    contract = _contract(LINES)
    rows = [
        {"line_id": "1", "gross": "100", "fee": "2.50"},
        {"line_id": "2", "fee": "2.50", "net": "97.50"},
        {"line_id": "3", "gross": "100", "net": "97.50"},
        {"line_id": "4", "gross": "100", "fee": "2.50", "net": "90"},
        {"line_id": "5", "gross": "100", "fee": "2.50", "net": "97.50"},
    ]
    got = _silver(_clean(contract, {"lines": rows})["lines"], "gross", "fee", "net")
    assert got == {
        1: (100.0, 2.5, 97.5, "lines.net.not_null"),
        2: (100.0, 2.5, 97.5, "lines.gross.not_null"),
        3: (100.0, 2.5, 97.5, "lines.fee.not_null"),
        4: (100.0, 2.5, 97.5, "lines.net.net_is_gross_less_fee"),
        5: (100.0, 2.5, 97.5, None),
    }


# 2. After -------------------------------------------------------------------------------------------
def test_a_time_before_the_one_it_must_follow_is_nulled_and_a_required_one_quarantines_its_row():
    """Customer 1 joined on 1 May (its repeated row, joined in January, is a duplicate and says nothing);
    customer 2 on 1 March. A note of 15 April on customer 1 is nulled and blamed; an arrival of 1 April is
    nulled, and the arrival is essential (a row needs it), so the row is quarantined with the after rule;
    a time equal to the joining, or after it, is kept."""
    contract = _contract(VISITS)
    customers = [
        {"customer_id": "1", "joined": "2024-05-01T00:00:00Z"},
        {"customer_id": "2", "joined": "2024-03-01T00:00:00Z"},
        {"customer_id": "1", "joined": "2024-01-01T00:00:00Z"},
    ]
    visits = [
        {
            "visit_id": "1",
            "customer_id": "1",
            "arrived": "2024-05-02T00:00:00Z",
            "noted": "2024-04-15T00:00:00Z",
        },
        {"visit_id": "2", "customer_id": "1", "arrived": "2024-04-01T00:00:00Z"},
        {
            "visit_id": "3",
            "customer_id": "1",
            "arrived": "2024-05-01T00:00:00Z",
            "noted": "2024-05-01T00:00:00Z",
        },
        {
            "visit_id": "4",
            "customer_id": "2",
            "arrived": "2024-04-01T00:00:00Z",
            "noted": "2024-04-01T00:00:00Z",
        },
    ]
    result = _clean(contract, {"customers": customers, "visits": visits})["visits"]
    got = {key: (noted is None, issues) for key, (noted, issues) in _silver(result, "noted").items()}
    assert got == {
        1: (True, "visits.noted.noted_after_joining"),
        3: (False, None),
        4: (False, None),
    }
    assert _quarantined(result) == {"2": "visits.arrived.arrived_after_joining"}


# 3. Witnesses across tables -------------------------------------------------------------------------
def _item(key: int, order: int | None, line: int | None, amount: str) -> dict[str, str | None]:
    return {
        "item_id": str(key),
        "order_id": None if order is None else str(order),
        "line_no": None if line is None else str(line),
        "quantity": "1",
        "price": amount,
        "line_total": amount,
    }


def test_a_judged_total_is_kept_when_any_witness_confirms_it_and_else_takes_the_first():
    """Order 1's total 20 disagrees with its items (15) but its payment (20 + 0) confirms it: kept. Order
    2's 99 has no witness for it: it takes the first, the items' 30, blamed on the aggregate, and the
    payment of 25 is then replaced by 30 - 0. Order 3's items repeat line 1 (not provably complete), so
    its missing total comes from the payment: 12.50 + 0. Order 4 misses its total and its discount: the
    judged total is repaired first (items: 2 x 20 = 40), and the discount follows from it (40 - 35 = 5).
    Order 5's missing payment is its total less its discount (10 - 0). (Payment n + 100 pays order n.)"""
    contract = _contract(TILL)
    orders = [
        {"order_id": "1", "discount": "0", "total": "20"},
        {"order_id": "2", "discount": "0", "total": "99"},
        {"order_id": "3", "discount": "0"},
        {"order_id": "4"},
        {"order_id": "5", "discount": "0", "total": "10"},
    ]
    items = [
        _item(10, 1, 1, "15"),
        _item(20, 2, 1, "30"),
        _item(30, 3, 1, "5"),
        _item(31, 3, 1, "5"),
        {**_item(40, 4, 1, "20"), "quantity": "2", "line_total": "40"},
        _item(50, 5, 1, "10"),
    ]
    payments = [
        {"payment_id": str(100 + n), "order_id": str(n), "amount": amount}
        for n, amount in ((1, "20"), (2, "25"), (3, "12.50"), (4, "35"), (5, None))
    ]
    result = _clean(contract, {"orders": orders, "items": items, "payments": payments})
    assert _silver(result["orders"], "discount", "total") == {
        1: (0.0, 20.0, None),
        2: (0.0, 30.0, "orders.total.total_is_items"),
        3: (0.0, 12.5, "orders.total.not_null"),
        4: (5.0, 40.0, "orders.discount.not_null;orders.total.not_null"),
        5: (0.0, 10.0, None),
    }
    assert _silver(result["payments"], "amount") == {
        101: (20.0, None),
        102: (30.0, "payments.amount.pays_the_order"),
        103: (12.5, None),
        104: (35.0, None),
        105: (10.0, "payments.amount.not_null"),
    }


def test_a_value_from_a_linked_row_reads_the_first_live_row_of_the_other_table():
    """Payment 7 repeats payment 1's key (a duplicate) and names order 2 before order 2's own payment 2:
    order 2's missing discount comes from payment 2 (30 - 25 = 5), not from the duplicate (30 - 1)."""
    contract = _contract(TILL)
    orders = [{"order_id": "1", "discount": "0", "total": "20"}, {"order_id": "2", "total": "30"}]
    payments = [
        {"payment_id": "1", "order_id": "1", "amount": "20"},
        {"payment_id": "1", "order_id": "2", "amount": "1"},
        {"payment_id": "2", "order_id": "2", "amount": "25"},
    ]
    result = _clean(contract, {"orders": orders, "payments": payments})
    assert _silver(result["orders"], "discount", "total") == {
        1: (0.0, 20.0, None),
        2: (5.0, 30.0, "orders.discount.not_null"),
    }


def test_an_aggregate_gives_back_lost_references_only_where_the_sequence_numbers_prove_it():
    """Every total is missing, so each shows the items' sum where it is taken (items in key order; the raw
    lines are reversed, and a repeated item key comes last). 1: line 2 lost right after its line 1 is its
    own (1 + 2). 2: line 1 lost right before its line 2 (4 + 8). 3 and 4: a lost line 1 between a parent
    and one starting at 1 belongs to neither (16; 64). 5: line 1 twice: not complete. 6: an item whose
    line total is no number: not complete. 7 and 8: a lost row without a number after 7 may be 7's, not
    8's (which starts at 1): 7 unsure, 8 is 7. 9: a lost line 1 before an item of 9 without a number
    (the number cannot say where 9 starts): unsure. 10: a number missing but no row lost (1 + 2). 11 and
    12: a lost line 3 after 11's line 1 is not its line 2: 11 unsure, 12 is 4. 13 and 14: a lost line 1
    continues no parent, even one numbered from 0 (1; 4). 15 and 16: a lost line 1 after 15's line 1 and
    before 16's line 2 starts 16 (2 + 4). 17: lines 1 and 3, nothing lost: line 2 is missing, not complete.
    18: lines 2 and 3 only: line 1 is missing, not complete. 19: one item whose number was lost, nothing
    lost around it: complete (5)."""
    contract = _contract(TILL)
    items = [
        _item(10, 1, 1, "1"),
        _item(11, None, 2, "2"),
        _item(20, None, 1, "4"),
        _item(21, 2, 2, "8"),
        _item(30, 3, 1, "16"),
        _item(31, None, 1, "32"),
        _item(40, 4, 1, "64"),
        _item(50, 5, 1, "1"),
        _item(51, 5, 1, "2"),
        _item(60, 6, 1, "1"),
        {**_item(61, 6, 2, "1"), "quantity": None, "price": None, "line_total": "abc"},
        _item(70, 7, 1, "5"),
        _item(71, None, None, "6"),
        _item(72, 8, 1, "7"),
        _item(90, None, 1, "1"),
        _item(91, 9, None, "2"),
        _item(100, 10, 1, "1"),
        _item(101, 10, None, "2"),
        _item(110, 11, 1, "1"),
        _item(111, None, 3, "2"),
        _item(120, 12, 1, "4"),
        _item(130, 13, 0, "1"),
        _item(131, None, 1, "2"),
        _item(140, 14, 1, "4"),
        _item(150, 15, 1, "1"),
        _item(160, None, 1, "2"),
        _item(161, 16, 2, "4"),
        _item(170, 17, 1, "1"),
        _item(171, 17, 3, "2"),
        _item(180, 18, 2, "4"),
        _item(181, 18, 3, "8"),
        _item(190, 19, None, "5"),
    ]
    raw = [*reversed(items), _item(10, 1, 3, "100")]
    orders = [{"order_id": str(n), "discount": "0"} for n in range(1, 20)]
    result = _clean(contract, {"orders": orders, "items": raw})
    totals = {key: total for key, (total, _) in _silver(result["orders"], "total").items()}
    assert totals == {
        1: 3.0,
        2: 12.0,
        3: 16.0,
        4: 64.0,
        5: None,
        6: None,
        7: None,
        8: 7.0,
        9: None,
        10: 3.0,
        11: None,
        12: 4.0,
        13: 1.0,
        14: 4.0,
        15: 1.0,
        16: 6.0,
        17: None,
        18: None,
        19: 5.0,
    }


def test_without_sequence_numbers_a_lost_reference_makes_both_neighbours_unsure():
    """Without complete_when the line numbers say nothing: item 11 lost between orders 1 and 2 leaves
    both without a sum; order 3's items are all there (8 + 16)."""
    contract = _contract(TILL.replace(",\n             complete_when: {sequence: line_no}", ""))
    items = [
        _item(10, 1, 1, "1"),
        _item(11, None, 2, "2"),
        _item(20, 2, 1, "4"),
        _item(30, 3, 1, "8"),
        _item(31, 3, 2, "16"),
    ]
    orders = [{"order_id": str(n), "discount": "0"} for n in range(1, 4)]
    result = _clean(contract, {"orders": orders, "items": items})
    totals = {key: total for key, (total, _) in _silver(result["orders"], "total").items()}
    assert totals == {1: None, 2: None, 3: 24.0}


# 4. Balance -----------------------------------------------------------------------------------------
def test_a_balance_fills_the_one_missing_leg_and_quarantines_a_group_that_does_not_sum_to_zero():
    """Transfer 1 misses one leg: -100 (a repeat of leg 1 is a duplicate and not a leg). Transfer 2 sums
    to 10: both legs quarantined with the rule. A one-leg transfer is not judged, nor filled; two
    missing legs are not filled; 0.10 + 0.20 - 0.30 is zero within half a cent, but 10.00 - 9.99 is a
    cent off: quarantined; a leg of no transfer is not judged. The warning-severity moves fill a missing
    leg (-4) but quarantine nothing."""
    contract = _contract(LEDGER)
    legs = [
        {"leg_id": "1", "transfer": "1", "amount": "100"},
        {"leg_id": "2", "transfer": "1"},
        {"leg_id": "3", "transfer": "2", "amount": "50"},
        {"leg_id": "4", "transfer": "2", "amount": "-40"},
        {"leg_id": "5", "transfer": "3", "amount": "25"},
        {"leg_id": "6", "transfer": "4"},
        {"leg_id": "7", "transfer": "5", "amount": "10"},
        {"leg_id": "8", "transfer": "5"},
        {"leg_id": "9", "transfer": "5"},
        {"leg_id": "10", "transfer": "6", "amount": "0.10"},
        {"leg_id": "11", "transfer": "6", "amount": "0.20"},
        {"leg_id": "12", "transfer": "6", "amount": "-0.30"},
        {"leg_id": "13", "amount": "5"},
        {"leg_id": "14", "transfer": "7", "amount": "10.00"},
        {"leg_id": "15", "transfer": "7", "amount": "-9.99"},
        {"leg_id": "1", "transfer": "1", "amount": "100"},
    ]
    moves = [
        {"move_id": "1", "batch": "1", "units": "5"},
        {"move_id": "2", "batch": "1", "units": "-3"},
        {"move_id": "3", "batch": "2", "units": "4"},
        {"move_id": "4", "batch": "2"},
    ]
    result = _clean(contract, {"legs": legs, "moves": moves})
    assert _silver(result["legs"], "amount") == {
        1: (100.0, None),
        2: (-100.0, "legs.amount.not_null"),
        5: (25.0, None),
        6: (None, None),
        7: (10.0, None),
        8: (None, None),
        9: (None, None),
        10: (0.1, None),
        11: (0.2, None),
        12: (-0.3, None),
        13: (5.0, None),
    }
    rule = "legs.amount.legs_balance"
    assert _quarantined(result["legs"]) == {"3": rule, "4": rule, "14": rule, "15": rule}
    assert _silver(result["moves"], "units") == {
        1: (5, None),
        2: (-3, None),
        3: (4, None),
        4: (-4, "moves.units.not_null"),
    }
    assert _quarantined(result["moves"]) == {}


# 5. Sequence ----------------------------------------------------------------------------------------
def test_a_value_below_the_previous_one_of_its_group_in_key_order_is_nulled():
    """Meter 1 in key order (raw lines are not): 10, 5, 30, 20: 5 and 20 fall and are nulled (each against
    the raw value before it). Meter 2: 1, 1, missing, 0: equal is no fall, the missing value is skipped,
    and 0 falls below 1. Meter 2's first value (1) is below meter 1's last: groups are independent. A
    reading of no meter is not judged; a repeated key (a duplicate) is no reading."""
    contract = _contract(METER)
    rows = [
        {"reading_id": "3", "meter": "1", "count": "30"},
        {"reading_id": "1", "meter": "1", "count": "10"},
        {"reading_id": "2", "meter": "1", "count": "5"},
        {"reading_id": "4", "meter": "1", "count": "20"},
        {"reading_id": "5", "meter": "2", "count": "1"},
        {"reading_id": "6", "meter": "2", "count": "1"},
        {"reading_id": "7", "meter": "2"},
        {"reading_id": "8", "meter": "2", "count": "0"},
        {"reading_id": "9", "count": "0"},
        {"reading_id": "1", "meter": "1", "count": "1"},
    ]
    got = _silver(_clean(contract, {"readings": rows})["readings"], "count")
    fell = "readings.count.counts_rise"
    assert got == {
        3: (30, None),
        1: (10, None),
        2: (None, fell),
        4: (None, fell),
        5: (1, None),
        6: (1, None),
        7: (None, None),
        8: (None, fell),
        9: (0, None),
    }


def test_a_constraint_with_a_term_in_a_table_outside_the_job_is_not_applied():
    """Payments cleaned without their orders: the payment's terms (the order's total and discount) are not
    there, so its amount is neither judged nor filled."""
    contract = _contract(TILL)
    payments = [
        {"payment_id": "101", "order_id": "1", "amount": "20"},
        {"payment_id": "102", "order_id": "2"},
    ]
    result = _clean(contract, {"payments": payments})
    assert _silver(result["payments"], "amount") == {101: (20.0, None), 102: (None, None)}
