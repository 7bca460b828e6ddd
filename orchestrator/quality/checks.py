"""SQL of each rule check of orchestrator.domain.rules over a loaded layer.

A column check is a pair of row expressions (judged, failed). A set check (keys, references and the
cross-table rules) is a pair of queries returning the ``__line`` of the rows it judged and of those that
failed. Every check judges only values that are present and parsable: a missing or malformed value is
the business of the not_null, numeric and timestamp rules alone, so one bad cell is reported once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orchestrator.domain import rules as r
from orchestrator.quality.layers import ColumnInfo, LoadedTable, lit, q

_STRAY_SPACE = r"^\s|\s$|\s\s|\t"
_MONEY_TOLERANCE = 0.005


@dataclass(frozen=True)
class ColumnCheck:
    judged: str
    failed: str


@dataclass(frozen=True)
class SetCheck:
    judged: str  # SELECT __line of the judged rows
    failed: str  # SELECT __line of the failing rows


class Skipped(Exception):
    """The rule cannot run on this layer (a column or the other table is absent); the message says why."""


def _column(table: LoadedTable, name: str) -> ColumnInfo:
    info = table.columns.get(name)
    if info is None:
        raise Skipped(f"column {name} is absent from {table.name}")
    return info


def _other(tables: dict[str, LoadedTable], name: str) -> LoadedTable:
    if name not in tables:
        raise Skipped(f"table {name} is not part of this layer")
    return tables[name]


def _valid(table: LoadedTable, name: str, as_of: datetime | None) -> str:
    """SQL: the column's value passes its own column rules (present, parsable, in range, allowed)."""
    parts = []
    for rule in r.rules_for(table.name):
        if rule.columns == (name,) and rule.check not in _SET_CHECKS:
            try:
                parts.append(f"({column_check(rule, table, as_of).failed}) IS NOT TRUE")
            except Skipped:
                continue
    info = _column(table, name)
    return " AND ".join([info.present, f"{info.value} IS NOT NULL", *parts])


def _case_violation(text: str, case: str | None) -> str:
    if case == "lower":
        return f"{text} <> lower({text})"
    if case == "upper":
        return f"{text} <> upper({text})"
    if case == "title":
        return f"regexp_matches({text}, {lit(r.TITLE_CASE_VIOLATION)})"
    return "FALSE"


def column_check(rule: r.Rule, table: LoadedTable, as_of: datetime | None) -> ColumnCheck:
    """(judged, failed) row expressions of a one-column rule."""
    info = _column(table, rule.column)
    text, value, there = info.text, info.value, info.present
    p = rule.params
    if rule.check == r.NOT_NULL:
        return ColumnCheck("TRUE", f"NOT {there}")
    if rule.check in (r.NUMERIC, r.TIMESTAMP):
        return ColumnCheck(there, f"{there} AND {value} IS NULL")
    if rule.check == r.RANGE:
        bounds = [f"{value} < {lit(p['minimum'])}" if p.get("minimum") is not None else None]
        bounds.append(f"{value} > {lit(p['maximum'])}" if p.get("maximum") is not None else None)
        return ColumnCheck(f"{value} IS NOT NULL", " OR ".join(b for b in bounds if b) or "FALSE")
    if rule.check == r.NOT_FUTURE:
        if as_of is None:
            raise Skipped("the data set's as-of time is unknown")
        limit = f"TIMESTAMP {lit(as_of.strftime('%Y-%m-%d %H:%M:%S'))}"
        return ColumnCheck(f"{value} IS NOT NULL", f"{value} > {limit}")
    if rule.check == r.PATTERN:
        return ColumnCheck(there, f"{there} AND NOT regexp_matches({text}, {lit(p['pattern'])})")
    if rule.check == r.IN_SET:
        allowed = ", ".join(lit(v) for v in p["values"])
        return ColumnCheck(there, f"{there} AND {text} NOT IN ({allowed})")
    if rule.check == r.CANONICAL_TEXT:
        bad = f"regexp_matches({text}, {lit(_STRAY_SPACE)}) OR {_case_violation(text, p.get('case'))}"
        return ColumnCheck(there, f"{there} AND ({bad})")
    if rule.check == r.LINE_TOTAL:
        total, qty, price = (_column(table, c).value for c in rule.columns)
        judged = " AND ".join(_valid(table, c, as_of) for c in rule.columns)
        return ColumnCheck(judged, f"{judged} AND abs({qty} * {price} - {total}) > {_MONEY_TOLERANCE}")
    raise Skipped(f"check {rule.check} is not a column check")


def _first_rows(table: LoadedTable, columns: list[str], where: str) -> str:
    """SELECT the first line of each key of ``table`` with ``columns``, among rows matching ``where``."""
    key = table.key
    cols = ", ".join(f"arg_min({_column(table, c).value}, __line) AS {q(c)}" for c in columns)
    return f"SELECT {key.value} AS k, {cols} FROM {q(table.relation)} WHERE {where} GROUP BY {key.value}"


def _unique(rule: r.Rule, table: LoadedTable) -> SetCheck:
    infos = [_column(table, c) for c in rule.columns]
    values = [i.value for i in infos]
    there = " AND ".join(f"{i.present} AND {i.value} IS NOT NULL" for i in infos)
    judged = f"SELECT __line FROM {q(table.relation)} WHERE {there}"
    failed = f"{judged} QUALIFY row_number() OVER (PARTITION BY {', '.join(values)} ORDER BY __line) > 1"
    return SetCheck(judged, failed)


def _foreign_key(rule: r.Rule, table: LoadedTable, tables: dict[str, LoadedTable]) -> SetCheck:
    info = _column(table, rule.column)
    other = _other(tables, rule.params["references"])
    judged = f"SELECT __line FROM {q(table.relation)} WHERE {info.value} IS NOT NULL"
    failed = (
        f"{judged} AND {info.value} NOT IN "
        f"(SELECT {other.key.value} FROM {q(other.relation)} WHERE {other.key.value} IS NOT NULL)"
    )
    return SetCheck(judged, failed)


def _order_after_signup(rule, orders: LoadedTable, tables, as_of) -> SetCheck:
    customers = _other(tables, rule.params["other"])
    ts, cust = _column(orders, rule.column), _column(orders, "customer_id")
    signups = _first_rows(customers, ["signup_at"], _valid(customers, "signup_at", as_of))
    base = (
        f"FROM {q(orders.relation)} o JOIN ({signups}) c ON c.k = o.{cust.value} "
        f"WHERE {_valid(orders, rule.column, as_of)}"
    )
    return SetCheck(f"SELECT o.__line {base}", f"SELECT o.__line {base} AND o.{ts.value} < c.signup_at")


def _shipped_after_order(rule, shipments: LoadedTable, tables, as_of) -> SetCheck:
    orders = _other(tables, rule.params["other"])
    ts, order = _column(shipments, rule.column), _column(shipments, "order_id")
    placed = _first_rows(orders, ["order_ts"], _valid(orders, "order_ts", as_of))
    base = (
        f"FROM {q(shipments.relation)} s JOIN ({placed}) o ON o.k = s.{order.value} "
        f"WHERE {_valid(shipments, rule.column, as_of)}"
    )
    return SetCheck(f"SELECT s.__line {base}", f"SELECT s.__line {base} AND s.{ts.value} < o.order_ts")


def _total_matches_items(rule, orders: LoadedTable, tables, as_of) -> SetCheck:
    """Judged only for orders whose items are all valid and known complete: line numbers 1..n without a gap,
    and the next item id starts another order (or the order's items end the table), so no item was lost to
    a bad order_id (raw) or set aside in quarantine (silver, where a quarantined line leaves a gap)."""
    items = _other(tables, rule.params["other"])
    total, key = _column(orders, rule.column).value, _column(orders, "order_id").value
    item_id, order_id, line_no, line_total = (
        _column(items, c).value for c in ("item_id", "order_id", "line_no", "line_total")
    )
    valid_item = " AND ".join(_valid(items, c, as_of) for c in ("order_id", "line_no", "line_total"))
    item_rows = (
        f"SELECT {item_id} AS item, arg_min({order_id}, __line) AS order_key, "
        f"arg_min({line_no}, __line) AS line_no, arg_min({line_total}, __line) AS line_total, "
        f"bool_and({valid_item}) AS ok FROM {q(items.relation)} "
        f"WHERE {item_id} IS NOT NULL GROUP BY {item_id}"
    )
    sums = (
        "SELECT i.order_key, sum(i.line_total) AS total, bool_and(i.ok) AS ok, count(*) AS n, "
        "max(i.line_no) AS last_no, max(i.item) AS last_item "
        "FROM item_rows i WHERE i.order_key IS NOT NULL GROUP BY i.order_key"
    )
    judged = (
        f"WITH item_rows AS ({item_rows}) "
        f"SELECT o.__line, abs(o.{total} - s.total) > {_MONEY_TOLERANCE} AS bad "
        f"FROM {q(orders.relation)} o JOIN ({sums}) s ON s.order_key = o.{key} "
        f"LEFT JOIN item_rows nx ON nx.item = s.last_item + 1 "
        f"WHERE {_valid(orders, rule.column, as_of)} AND s.ok AND s.n = s.last_no "
        f"AND (coalesce(nx.line_no = 1, FALSE) "
        f"OR (nx.item IS NULL AND s.last_item = (SELECT max(item) FROM item_rows)))"
    )
    return SetCheck(f"SELECT __line FROM ({judged})", f"SELECT __line FROM ({judged}) WHERE bad")


_SET_CHECKS = {
    r.UNIQUE: lambda rule, t, tables, as_of: _unique(rule, t),
    r.FOREIGN_KEY: lambda rule, t, tables, as_of: _foreign_key(rule, t, tables),
    r.ORDER_AFTER_SIGNUP: _order_after_signup,
    r.SHIPPED_AFTER_ORDER: _shipped_after_order,
    r.TOTAL_MATCHES_ITEMS: _total_matches_items,
}


def is_set_check(rule: r.Rule) -> bool:
    return rule.check in _SET_CHECKS


def set_check(
    rule: r.Rule, table: LoadedTable, tables: dict[str, LoadedTable], as_of: datetime | None
) -> SetCheck:
    """(judged, failed) queries of a key, reference or cross-table rule."""
    for name in rule.columns:
        _column(table, name)
    return _SET_CHECKS[rule.check](rule, table, tables, as_of)
