"""SQL of each rule check of orchestrator.domain.rules over a loaded layer.

A column check is a pair of row expressions (judged, failed). A set check (keys, references and the
constraints across rows and tables) is a pair of queries returning the ``__line`` of the rows it judged and
of those that failed. Every check judges only values that are present and parsable: a missing or malformed
value is the business of the not_null, numeric and timestamp rules alone, so one bad cell is reported once.
A constraint is checked by the one operation of its kind, judged only where every value it involves passes
its own column rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orchestrator.domain import model as m
from orchestrator.domain import rules as r
from orchestrator.quality.layers import ColumnInfo, LoadedTable, lit, q

_STRAY_SPACE = r"^\s|\s$|\s\s|\t"
_TOLERANCE = {m.MONEY: 0.005, m.DECIMAL1: 0.05}  # half the step a value is held in


def tolerance(column: m.Column | None) -> float:
    """How far two values of a column may lie apart and still be equal: half its step (0 for integers)."""
    return _TOLERANCE.get(column.type, 0) if column else 0


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
    for rule in r.table_rules(table.schema) if table.schema else ():
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
    if rule.check == m.ROW:
        c: m.Constraint = rule.params["constraint"]
        judged = " AND ".join(_valid(table, name, as_of) for name in rule.columns)
        contradicts = _contradicts(c, table, lambda term: _column(table, term.column).value)
        return ColumnCheck(judged, f"{judged} AND {contradicts}")
    raise Skipped(f"check {rule.check} is not a column check")


def _contradicts(c: m.Constraint, table: LoadedTable, value_of) -> str:
    """SQL: a ROW constraint's value differs from what its terms give (``value_of``: SQL of a term)."""
    value, *terms = c.participants
    if c.op == m.SUM:
        follows = " + ".join(f"{'-' if term.sign < 0 else ''}{value_of(term)}" for term in terms)
    else:
        follows = " * ".join(value_of(term) for term in terms)
    return f"abs(({follows}) - {value_of(value)}) > {tolerance(table.columns[c.column].schema)}"


def is_linked_row(rule: r.Rule) -> bool:
    """A ROW rule with a term in another table (checked as a set check, over the linked rows)."""
    if rule.check != m.ROW:
        return False
    c: m.Constraint = rule.params["constraint"]
    return any(term.table != c.table for term in c.participants)


def _by_key(
    table: LoadedTable, columns: list[str], where: str = "TRUE", ok: str = "TRUE", key: str = ""
) -> str:
    """SELECT each key of ``table`` (or each value of its column ``key``) once, as ``__k``, with ``columns``
    from its first line among the rows matching ``where``, and ``__ok``: whether ``ok`` holds on every one of
    those lines."""
    key = _column(table, key or table.schema.sole_key).value
    cols = ", ".join(f"arg_min({_column(table, c).value}, __line) AS {q(c)}" for c in columns)
    return (
        f"SELECT {key} AS __k, {cols}, bool_and({ok}) AS __ok FROM {q(table.relation)} "
        f"WHERE {key} IS NOT NULL AND {where} GROUP BY {key}"
    )


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
    key = _column(other, other.schema.sole_key).value
    judged = f"SELECT __line FROM {q(table.relation)} WHERE {info.present} AND {info.value} IS NOT NULL"
    failed = (
        f"{judged} AND {info.value} NOT IN (SELECT {key} FROM {q(other.relation)} WHERE {key} IS NOT NULL)"
    )
    return SetCheck(judged, failed)


def _after(rule: r.Rule, table: LoadedTable, tables: dict[str, LoadedTable], as_of) -> SetCheck:
    """``column`` lies after the other table's column in the row its foreign key ``via`` refers to."""
    c: m.Constraint = rule.params["constraint"]
    other = _other(tables, c.other_table)
    value, via = _column(table, c.column), _column(table, c.via)
    firsts = _by_key(other, [c.other_column], _valid(other, c.other_column, as_of))
    base = (
        f"FROM {q(table.relation)} x JOIN ({firsts}) y ON y.__k = x.{via.value} "
        f"WHERE {_valid(table, c.column, as_of)}"
    )
    return SetCheck(
        f"SELECT x.__line {base}", f"SELECT x.__line {base} AND x.{value.value} < y.{q(c.other_column)}"
    )


def _aggregate(rule: r.Rule, table: LoadedTable, tables: dict[str, LoadedTable], as_of) -> SetCheck:
    """``column`` equals the sum of the other table's column over its rows whose ``via`` refers to this row;
    judged where the value and every referring row pass their own rules. With ``complete_when: {sequence:
    COLUMN}`` only where those rows are known complete: numbered 1..n without a gap, and the next key of the
    other table starts another row's numbering (or they end the table), so none was lost to a bad ``via``
    (raw) or set aside in quarantine (silver, where a quarantined row leaves a gap)."""
    c: m.Constraint = rule.params["constraint"]
    other = _other(tables, c.other_table)
    value, key = _column(table, c.column), _column(table, table.schema.key)
    sequence = c.complete_when.get("sequence")
    if not sequence and not other.whole:
        raise Skipped(
            f"judged on raw only: {c.other_table} rows set aside in quarantine would leave sums short, and "
            "without complete_when nothing shows which rows are missing"
        )
    read = [c.via, c.other_column, *([sequence] if sequence else [])]
    children = _by_key(other, read, ok=" AND ".join(_valid(other, name, as_of) for name in read))
    via, summed = q(c.via), q(c.other_column)
    sums = (
        f"SELECT {via} AS ref, sum({summed}) AS total, bool_and(__ok) AS ok, count(*) AS n, "
        f"max({q(sequence) if sequence else 'NULL'}) AS last_no, max(__k) AS last_k "
        f"FROM children WHERE {via} IS NOT NULL GROUP BY {via}"
    )
    complete, following = "", ""
    if sequence:
        following = "LEFT JOIN children nx ON nx.__k = s.last_k + 1 "
        complete = (
            f"AND s.n = s.last_no AND (coalesce(nx.{q(sequence)} = 1, FALSE) "
            "OR (nx.__k IS NULL AND s.last_k = (SELECT max(__k) FROM children)))"
        )
    judged = (
        f"WITH children AS ({children}) "
        f"SELECT x.__line, abs(x.{value.value} - s.total) > {tolerance(value.schema)} AS bad "
        f"FROM {q(table.relation)} x JOIN ({sums}) s ON s.ref = x.{key.value} {following}"
        f"WHERE {_valid(table, c.column, as_of)} AND s.ok {complete}"
    )
    return SetCheck(f"SELECT __line FROM ({judged})", f"SELECT __line FROM ({judged}) WHERE bad")


def _linked_row(rule: r.Rule, table: LoadedTable, tables: dict[str, LoadedTable], as_of) -> SetCheck:
    """A ROW constraint whose terms reach the one row of another table its row is linked to (the parent
    its foreign key names, or the first row referring to it); judged where every value passes its rules."""
    c: m.Constraint = rule.params["constraint"]
    other_name = next(term.table for term in c.participants if term.table != c.table)
    other = _other(tables, other_name)
    direction, via = rule.params["link"]
    theirs = [term.column for term in c.participants if term.table == other_name]
    valid = " AND ".join(_valid(other, name, as_of) for name in theirs)
    if direction == m.PARENT:
        firsts, mine = _by_key(other, theirs, valid), _column(table, via).value
    else:
        firsts, mine = _by_key(other, theirs, valid, key=via), _column(table, table.schema.sole_key).value

    def value_of(term: m.Term) -> str:
        return f"y.{q(term.column)}" if term.table == other_name else f"x.{_column(table, term.column).value}"

    ours = " AND ".join(_valid(table, name, as_of) for name in rule.columns)
    base = f"FROM {q(table.relation)} x JOIN ({firsts}) y ON y.__k = x.{mine} WHERE {ours}"
    failed = f"SELECT x.__line {base} AND {_contradicts(c, table, value_of)}"
    return SetCheck(f"SELECT x.__line {base}", failed)


def _grouped(rule: r.Rule, table: LoadedTable, as_of, verdict: str) -> SetCheck:
    """The lines of the keys a verdict on groups judges. ``verdict`` reads ``keyed`` (each key once:
    ``__k``, the constraint's column and group, ``__ok`` where the key, column and group pass their own
    rules) and returns ``__k`` and ``bad`` of the keys it judges."""
    c: m.Constraint = rule.params["constraint"]
    read = [c.column, c.group]
    ok = " AND ".join(_valid(table, name, as_of) for name in (table.schema.key, *read))
    judged = (
        f"WITH keyed AS ({_by_key(table, read, ok=ok)}) SELECT x.__line, v.bad FROM {q(table.relation)} x "
        f"JOIN ({verdict}) v ON v.__k = x.{_column(table, table.schema.key).value}"
    )
    return SetCheck(f"SELECT __line FROM ({judged})", f"SELECT __line FROM ({judged}) WHERE bad")


def _balance(rule: r.Rule, table: LoadedTable, tables: dict[str, LoadedTable], as_of) -> SetCheck:
    """The ``column`` values of the rows sharing ``group`` sum to zero; judged for groups of two rows or
    more whose every value and group pass their own rules, each key counted once. Every row of a group
    that does not balance fails."""
    c: m.Constraint = rule.params["constraint"]
    window = f"OVER (PARTITION BY {q(c.group)})"
    verdict = (
        f"SELECT __k, abs(sum({q(c.column)}) {window}) > {tolerance(table.columns[c.column].schema)} AS bad "
        f"FROM keyed QUALIFY bool_and(__ok) {window} AND count(*) {window} > 1"
    )
    return _grouped(rule, table, as_of, verdict)


def _sequence(rule: r.Rule, table: LoadedTable, tables: dict[str, LoadedTable], as_of) -> SetCheck:
    """Within each ``group``, ``column`` does not fall as the key rises: a row fails where its value lies
    below the previous row's of its group; judged where the key, value and group pass their own rules, each
    key counted once."""
    c: m.Constraint = rule.params["constraint"]
    column, window = q(c.column), f"OVER (PARTITION BY {q(c.group)} ORDER BY __k)"
    verdict = f"SELECT __k, coalesce({column} < lag({column}) {window}, FALSE) AS bad FROM keyed WHERE __ok"
    return _grouped(rule, table, as_of, verdict)


_SET_CHECKS = {
    r.UNIQUE: lambda rule, t, tables, as_of: _unique(rule, t),
    r.FOREIGN_KEY: lambda rule, t, tables, as_of: _foreign_key(rule, t, tables),
    m.AFTER: _after,
    m.AGGREGATE: _aggregate,
    m.BALANCE: _balance,
    m.SEQUENCE: _sequence,
}


def is_set_check(rule: r.Rule) -> bool:
    return rule.check in _SET_CHECKS or is_linked_row(rule)


def set_check(
    rule: r.Rule, table: LoadedTable, tables: dict[str, LoadedTable], as_of: datetime | None
) -> SetCheck:
    """(judged, failed) queries of a key, reference or cross-table rule."""
    for name in rule.columns:
        _column(table, name)
    if is_linked_row(rule):
        return _linked_row(rule, table, tables, as_of)
    return _SET_CHECKS[rule.check](rule, table, tables, as_of)
