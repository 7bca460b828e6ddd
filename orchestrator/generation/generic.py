"""Clean rows of any contract's tables, as pure functions of (seed, table, column, row index).

Every value is computed from its row index (and the values it depends on, computed the same way), so a
table can be built in chunks of any size, and more rows never change the first ones. A table generated per
row of a parent draws its count per parent row; where the children of a parent row start is found through
block offsets kept for every few thousand parent rows, so nothing grows with the row count but those.
Constraints derive values: a ``row`` value is the product of its terms, an ``aggregate`` the sum of its
children, an ``after`` time follows the referenced one, the last row of a ``balance`` group cancels the
others, and a ``sequence`` rises within its group. A primary key that is not one integer column stays unique
because one of its columns is derived from the row number (a text key, or a column of a composite key).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchestrator.domain import model as m
from orchestrator.errors import InvalidInput
from orchestrator.generation.corrupt import NO_PREVIOUS, after_key, previous_key
from orchestrator.generation.rng import Stream
from orchestrator.generation.tables import DAY, Chunk, World, bounded, emails, expand, phones

KNOWN_TYPES = ("", "string", "integer", "number", "date", "timestamp")
TEXT_PHYSICAL = ("xml", "bytea", "uuid", "json", "jsonb")  # physical types generated as text
_LETTERS = pa.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
_HEX = pa.array(list("0123456789abcdef"))
PROVIDERS = ("first_name", "last_name", "full_name", "city", "company", "street", "word", "sentence")
SCALE = {m.MONEY: 100, m.DECIMAL1: 10}
MAX_AFTER = 90 * DAY  # the longest an ``after`` time follows the one it refers to
FALLBACK_CODE_LENGTH = 10
_UPPER_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_CLASS = {"d": "0123456789", "w": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"}
_QUANTIFIER = re.compile(r"\{(\d+)(?:,(\d+))?\}|[?*+]")


def pattern_atoms(pattern: str) -> list[tuple[str, int, int]] | None:
    """A simple regular expression as (alphabet, fewest, most) per atom; None when it is not simple
    (groups, alternation, negated classes, wildcards)."""
    text = pattern.removeprefix("^").removesuffix("$")
    atoms: list[tuple[str, int, int]] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            alphabet = _CLASS.get(text[i + 1], text[i + 1] if not text[i + 1].isalnum() else None)
            i += 2
        elif char == "[":
            end = text.find("]", i + 1)
            alphabet = _char_class(text[i + 1 : end]) if end > i + 1 else None
            i = end + 1
        elif char in "()|.^$*+?{}":
            return None
        else:
            alphabet, i = char, i + 1
        if not alphabet:
            return None
        low = high = 1
        quantifier = _QUANTIFIER.match(text, i)
        if quantifier:
            token = quantifier.group(0)
            if token[0] == "{":
                low = int(quantifier.group(1))
                high = int(quantifier.group(2)) if quantifier.group(2) else low
            else:
                low, high = {"?": (0, 1), "*": (0, 3), "+": (1, 3)}[token]
            i = quantifier.end()
        if high < low or high > 64:
            return None
        atoms.append((alphabet, low, high))
    return atoms or None


def _char_class(body: str) -> str | None:
    if body.startswith("^"):
        return None
    chars: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            chars.extend(_CLASS.get(body[i + 1], body[i + 1]))
            i += 2
        elif i + 2 < len(body) and body[i + 1] == "-":
            chars.extend(chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1))
            i += 3
        else:
            chars.append(body[i])
            i += 1
    return "".join(dict.fromkeys(chars)) or None


@dataclass(frozen=True)
class _Plan:
    """How many rows a table has: per row of ``per`` (low..high each), a share of the driving table, or
    ``fixed``."""

    per: str | None = None
    low: int = 1
    high: int = 1
    ratio: Fraction | None = None
    fixed: int = 0


class _Fanout:
    """Children per parent row, drawn per parent; the first child of every BLOCK-th parent is kept."""

    BLOCK = 4096

    def __init__(self, stream: Stream, low: int, high: int, parents: int) -> None:
        self.stream, self.low, self.high, self.parents = stream, low, high, parents
        starts = [0]
        for first in range(0, parents, self.BLOCK):
            block = np.arange(first, min(first + self.BLOCK, parents), dtype=np.int64)
            starts.append(starts[-1] + int(self.counts(block).sum()))
        self.starts = np.array(starts, dtype=np.int64)
        self.total = starts[-1]

    def counts(self, parent: np.ndarray) -> np.ndarray:
        return self.low + self.stream.integers(parent, self.high - self.low + 1)

    def _within(self, block: int) -> np.ndarray:
        """Children before each parent of a block, from its start (one more entry: the block's total)."""
        first = block * self.BLOCK
        parents = np.arange(first, min(first + self.BLOCK, self.parents), dtype=np.int64)
        return np.concatenate([[0], np.cumsum(self.counts(parents))])

    def first_child(self, parent: np.ndarray) -> np.ndarray:
        """The index of each parent row's first child (``parents`` gives the total)."""
        out = np.empty(len(parent), dtype=np.int64)
        block = parent // self.BLOCK
        for b in np.unique(block):
            at = block == b
            out[at] = self.starts[b] + self._within(int(b))[parent[at] - b * self.BLOCK]
        return out

    def parent_of(self, child: np.ndarray) -> np.ndarray:
        out = np.empty(len(child), dtype=np.int64)
        block = np.searchsorted(self.starts, child, side="right") - 1
        for b in np.unique(block):
            at = block == b
            ends = self._within(int(b))[1:]
            out[at] = b * self.BLOCK + np.searchsorted(ends, child[at] - self.starts[b], side="right")
        return out


class GenericBuilder:
    """The clean rows of a contract's tables for one spec; ``notes`` says what was generated otherwise than
    the contract asks (a column of a type generated as text, a pattern too complex to follow)."""

    def __init__(self, contract: m.Contract, world: World) -> None:
        self.contract = contract
        self.w = world
        self.spec = world.spec
        self.notes: list[str] = []
        self.plans = {name: self._plan(table) for name, table in contract.tables.items()}
        self._fanouts: dict[str, _Fanout] = {}
        self.rows = {name: self._count(name, ()) for name in contract.tables}
        self.constraints = {(c.table, c.column): c for c in contract.constraints}
        self._bound = {
            (c.table, name) for c in contract.constraints for name in (c.column, c.via, c.group, *c.terms)
        }
        self._bound |= {(c.other_table, c.other_column) for c in contract.constraints if c.other}
        self._codes: dict[tuple[str, str], list[tuple[str, int, int]]] = {}
        self._memo: dict[tuple[str, str], tuple[np.ndarray, object]] = {}
        # the key column of each table derived from the row number (see _distinct)
        self._row_keyed = {
            (name, column) for name in contract.tables if (column := self._distinct(name)) is not None
        }
        for table in contract.tables.values():
            for column in table.columns:
                self._check(table, column)

    # Row counts -----------------------------------------------------------------------------------------
    def _plan(self, table: m.Table) -> _Plan:
        volume = table.volume
        where = f"schema[{table.name}].customProperties.volume"
        if table.name == self.contract.driving_table:
            return _Plan(ratio=Fraction(1))
        per = volume.get("per") or (table.parent if not volume else None)
        if per:
            low = int(volume.get("min", 1))
            high = int(volume.get("max", low))
            if not 0 <= low <= high:
                raise InvalidInput(where, f"min {low} and max {high} must satisfy 0 <= min <= max")
            return _Plan(per=per, low=low, high=high)
        if "ratio" in volume:
            ratio = Fraction(str(volume["ratio"])).limit_denominator(1_000_000)
            if ratio <= 0:
                raise InvalidInput(where, "a ratio must be above 0")
            return _Plan(ratio=ratio)
        if "rows" in volume:
            return _Plan(fixed=max(int(volume["rows"]), 1))
        return _Plan(ratio=Fraction(1))

    def _count(self, name: str, seen: tuple[str, ...]) -> int:
        plan = self.plans[name]
        if plan.per is None:
            if plan.ratio is None:
                return plan.fixed
            return max(1, int(bounded(np.array([self.spec.rows - 1]), plan.ratio)[0]))
        if plan.per in seen:
            raise InvalidInput(
                f"schema[{name}].customProperties.volume.per", "tables are generated per each other"
            )
        if name not in self._fanouts:
            parents = self._count(plan.per, (*seen, name))
            stream = self.w.stream(name, "#count")
            self._fanouts[name] = _Fanout(stream, plan.low, plan.high, parents)
        return self._fanouts[name].total

    def _link(self, name: str) -> str | None:
        """The column of a table generated per parent row that holds its parent's key."""
        per = self.plans[name].per
        table = self.contract.tables[name]
        return next((c.name for c in table.columns if per and c.references == per), None)

    def _position(self, name: str, idx: np.ndarray) -> np.ndarray:
        """The driving table's row each row belongs with (0 for a table of fixed size)."""
        plan = self.plans[name]
        if plan.per:
            return self._position(plan.per, self._fanouts[name].parent_of(idx))
        if plan.ratio is None:
            return np.zeros(len(idx), dtype=np.int64)
        return idx * plan.ratio.denominator // plan.ratio.numerator

    def _available(self, name: str, position: np.ndarray) -> np.ndarray:
        """How many rows of a table exist for a driving row, whatever the total (so references to them stay
        put when more rows are generated)."""
        plan = self.plans[name]
        if plan.per:
            if plan.low < 1:
                raise InvalidInput(
                    f"schema[{name}].customProperties.volume.min",
                    "a table other tables refer to needs at least one row per parent row (min 1)",
                )
            return plan.low * self._available(plan.per, position)
        if plan.ratio is None:
            return np.full(len(position), plan.fixed, dtype=np.int64)
        return bounded(position, plan.ratio)

    def _covers(self, referred: str, name: str) -> bool:
        """Whether ``referred`` has a row of each row number of ``name``, whatever the row count: both count
        in shares of the driving table, ``referred`` by no smaller one."""
        own, other = self.plans[name], self.plans[referred]
        return (
            own.per is None
            and other.per is None
            and None not in (own.ratio, other.ratio)
            and (other.ratio >= own.ratio)
        )

    def _distinct(self, name: str) -> str | None:
        """The key column derived from the row number, which keeps a primary key that is not one integer
        column unique: a text key; for a composite key, the first of its columns referring to a table that
        has a row for each row number, else its first column that refers to none."""
        table = self.contract.tables[name]
        if table.key is not None:
            return None
        if table.sole_key is not None:
            return table.sole_key
        free = [
            column
            for column in (table.column(c) for c in table.primary_key)
            if (name, column.name) not in self._bound and column.name != self._link(name)
        ]
        for column in free:
            if column.references and self._covers(column.references, name):
                return column.name
        for column in free:
            if not column.references:
                return column.name
        self.notes.append(
            f"{name}: no column of its primary key ({', '.join(table.primary_key)}) can follow the row "
            "number, so the key may repeat"
        )
        return None

    # Checks ------------------------------------------------------------------------------------------
    def _check(self, table: m.Table, column: m.Column) -> None:
        where = f"{table.name}.{column.name}"
        physical = column.physical_type.lower()
        if column.declared_type not in KNOWN_TYPES:
            self.notes.append(f"{where} is declared as {column.declared_type}; it was generated as text")
        elif physical in TEXT_PHYSICAL and column.type in m.STRING_TYPES:
            shape = "a UUID" if physical == "uuid" else "text"
            self.notes.append(f"{where} is stored as {physical}; it was generated as {shape}")
        if column.type == m.CODE:
            atoms = pattern_atoms(column.pattern or "")
            if atoms is None:
                self.notes.append(
                    f"{where}: the pattern {column.pattern!r} is too complex to generate from; its values "
                    f"are {FALLBACK_CODE_LENGTH} upper-case letters and digits, which may not match it"
                )
                atoms = [(_UPPER_ALNUM, FALLBACK_CODE_LENGTH, FALLBACK_CODE_LENGTH)]
            self._codes[(table.name, column.name)] = atoms
        provider = column.generate.get("provider")
        if provider is not None and provider not in PROVIDERS:
            raise InvalidInput(where, f"provider {provider!r} is not one of {', '.join(PROVIDERS)}")
        constraint = self.constraints.get((table.name, column.name))
        if constraint is None:
            return
        grouped = constraint.kind in (m.BALANCE, m.SEQUENCE)
        if grouped and constraint.group != self._link(table.name) and constraint.kind == m.BALANCE:
            raise InvalidInput(
                f"{where}.{constraint.id}",
                "a balance group must be the column linking the table to its parent",
            )
        if constraint.kind == m.AGGREGATE and self._link(constraint.other_table) != constraint.via:
            raise InvalidInput(
                f"{where}.{constraint.id}",
                f"{constraint.other_table} must be generated per row of {table.name}, "
                f"linked by {constraint.via}",
            )

    # Values ------------------------------------------------------------------------------------------
    def chunks(self, name: str) -> Iterator[Chunk]:
        """The table's rows, chunk by chunk."""
        for first in range(0, self.rows[name], self.spec.chunk_rows):
            yield self.chunk(name, first, min(first + self.spec.chunk_rows, self.rows[name]))

    def chunk(self, name: str, first: int, stop: int) -> Chunk:
        """The table's rows [first, stop): a function of the rows alone, so any chunk is built on its own."""
        table = self.contract.tables[name]
        idx = np.arange(first, stop, dtype=np.int64)
        self._memo.clear()
        values, nulls, aux = {}, {}, {}
        for column in table.columns:
            value = self.value(name, column.name, idx)
            null = self._nulls(table, column, idx)
            if null is not None and isinstance(value, pa.Array):
                value = pc.if_else(pa.array(null), pa.scalar(None, pa.string()), value)
            elif null is not None:
                nulls[column.name] = null
            values[column.name] = value
            aux.update(self._aux(name, column.name, idx))
        return Chunk(table, idx, values, nulls, aux)

    def _nulls(self, table: m.Table, column: m.Column, idx: np.ndarray) -> np.ndarray | None:
        share = float(column.generate.get("nulls", 0))
        if not column.nullable or share <= 0 or (table.name, column.name) in self._bound:
            return None
        return self.w.stream(table.name, column.name, "#null").uniform(idx) < share

    def value(self, name: str, column_name: str, idx: np.ndarray) -> np.ndarray | pa.Array:
        """Clean values of a column at any rows (numbers held in their unit: cents, tenths, epoch seconds)."""
        memo = self._memo.get((name, column_name))
        if memo is not None and memo[0] is idx:
            return memo[1]
        out = self._compute(name, column_name, idx)
        self._memo[(name, column_name)] = (idx, out)
        return out

    def _compute(self, name: str, column_name: str, idx: np.ndarray) -> np.ndarray | pa.Array:
        column = self.contract.tables[name].column(column_name)
        constraint = self.constraints.get((name, column_name))
        if column.type == m.ID:
            return idx + 1
        if (name, column_name) in self._row_keyed:
            return self._row_key(column, idx)
        if constraint is not None:
            return getattr(self, f"_{constraint.kind}")(constraint, column, idx)
        if column.references:
            if column_name == self._link(name):
                return self._key_at(column.references, self._fanouts[name].parent_of(idx))
            available = self._available(column.references, self._position(name, idx))
            u = self.w.stream(name, column_name).uniform(idx)
            return self._key_at(
                column.references, np.minimum((u * available).astype(np.int64), available - 1)
            )
        return self._draw(name, column, idx)

    def _key_at(self, name: str, rows: np.ndarray) -> np.ndarray | pa.Array:
        """The primary key of a table's rows (row r of a table keyed by one integer has key r + 1)."""
        table = self.contract.tables[name]
        return rows + 1 if table.key is not None else self.value(name, table.sole_key, rows)

    def _row_key(self, column: m.Column, idx: np.ndarray) -> np.ndarray | pa.Array:
        """A key column's value that differs for every row number: the key of the referred row of the same
        number, the row number in letters (A, B, ..., Z, AA, ...) for text, or counted from the low end of
        its range for numbers and times."""
        if column.references:
            return self._key_at(column.references, idx)
        if column.type in m.STRING_TYPES:
            digits: list[pa.Array] = []
            rest = idx.copy()
            while (rest >= 0).any():
                letter = _LETTERS.take(np.maximum(rest, 0) % 26)
                digits.insert(0, pc.if_else(pa.array(rest >= 0), letter, ""))
                rest = np.where(rest >= 0, rest // 26 - 1, -1)
            return pc.binary_join_element_wise(*digits, "")
        return self._range(column)[0] + idx

    def _range(self, column: m.Column) -> tuple[int, int]:
        """The clean range of a number or time, in its held unit."""
        if column.type == m.TIMESTAMP:
            start, end = column.generate.get("start"), column.generate.get("end")
            low = _epoch(start) if start else self.w.start
            return low, (_epoch(end) + DAY if end else self.w.end) - 1
        scale = SCALE.get(column.type, 1)
        low = (
            round(column.minimum * scale)
            if column.minimum is not None
            else (1 if column.type == m.MONEY else 0)
        )
        high = round(column.maximum * scale) if column.maximum is not None else low + 1000 * scale
        return low, max(high, low)

    def _draw(self, name: str, column: m.Column, idx: np.ndarray) -> np.ndarray | pa.Array:
        stream = self.w.stream(name, column.name)
        kind = column.type
        if kind in (m.INT, m.MONEY, m.DECIMAL1, m.TIMESTAMP):
            return self._number(stream, column, idx)
        if kind == m.CATEGORY:
            weights = column.generate.get("weights") or [1.0] * len(column.categories)
            return pa.array(column.categories).take(stream.choice(idx, weights))
        loc = self.w.stream(name, "#locale").choice(idx, self.w.locale_weights)
        if kind == m.PHONE:
            return phones(self.w, stream, idx, loc)
        if kind == m.EMAIL:
            first = self.w.locale_values("first_name", loc, stream.uniform(idx, 5))
            last = self.w.locale_values("last_name", loc, stream.uniform(idx, 6))
            return emails(self.w, stream, idx, loc, first, last)
        if column.physical_type.lower() == "uuid":
            return _uuids(stream, idx)
        text = (
            self._code(stream, name, column, idx) if kind == m.CODE else self._text(stream, column, idx, loc)
        )
        case = {"lower": pc.utf8_lower, "upper": pc.utf8_upper, "title": pc.utf8_title}.get(column.case or "")
        return case(text) if case else text

    def _number(self, stream: Stream, column: m.Column, idx: np.ndarray) -> np.ndarray:
        low, high = self._range(column)
        hint = column.generate
        distribution = hint.get("distribution", "uniform")
        if distribution == "uniform":
            return low + stream.integers(idx, high - low + 1)
        scale = SCALE.get(column.type, 1)
        z = stream.normal(idx)
        if distribution == "lognormal":
            mean = float(hint.get("mean", max((low + high) / 2 / scale, 1)))
            drawn = np.exp(np.log(mean) + float(hint.get("sd", 0.5)) * z) * scale
        else:
            mean = float(hint.get("mean", (low + high) / 2 / scale))
            drawn = (mean + float(hint.get("sd", (high - low) / 6 / scale)) * z) * scale
        return np.clip(np.round(drawn), low, high).astype(np.int64)

    def _text(self, stream: Stream, column: m.Column, idx: np.ndarray, loc: np.ndarray) -> pa.Array:
        provider = column.generate.get("provider") or _provider(column.name)
        if provider == "full_name":
            first = self.w.locale_values("first_name", loc, stream.uniform(idx, 0))
            last = self.w.locale_values("last_name", loc, stream.uniform(idx, 1))
            return pc.binary_join_element_wise(first, last, " ")
        return self.w.locale_values(provider, loc, stream.uniform(idx))

    def _code(self, stream: Stream, name: str, column: m.Column, idx: np.ndarray) -> pa.Array:
        parts: list[pa.Array] = []
        lane = 0
        for alphabet, low, high in self._codes[(name, column.name)]:
            letters = pa.array(list(alphabet))
            count = low + stream.integers(idx, high - low + 1, lane)
            lane += 1
            for position in range(high):
                chars = letters.take(stream.integers(idx, len(alphabet), lane))
                lane += 1
                parts.append(chars if position < low else pc.if_else(pa.array(position < count), chars, ""))
        return pc.binary_join_element_wise(*parts, "")

    # Constraints ------------------------------------------------------------------------------------
    def _real(self, name: str, column_name: str, idx: np.ndarray) -> np.ndarray:
        scale = SCALE.get(self.contract.tables[name].column(column_name).type, 1)
        return np.asarray(self.value(name, column_name, idx), dtype=np.float64) / scale

    def _row(self, constraint: m.Constraint, column: m.Column, idx: np.ndarray) -> np.ndarray:
        total = np.zeros(len(idx)) if constraint.op == m.SUM else np.ones(len(idx))
        for term in constraint.participants[1:]:
            rows = idx
            if term.table != constraint.table:  # the parent its foreign key names (keys are rows + 1)
                _, via = self.contract.link(constraint.table, term.table)
                rows = np.asarray(self.value(constraint.table, via, idx)) - 1
            value = term.sign * self._real(term.table, term.column, rows)
            total = total + value if constraint.op == m.SUM else total * value
        return np.round(total * SCALE.get(column.type, 1)).astype(np.int64)

    def _aggregate(self, constraint: m.Constraint, column: m.Column, idx: np.ndarray) -> np.ndarray:
        fanout = self._fanouts[constraint.other_table]
        first = fanout.first_child(idx)
        counts = fanout.first_child(idx + 1) - first
        parent, number = expand(counts)
        children = first[parent] + number
        real = self._real(constraint.other_table, constraint.other_column, children)
        total = np.bincount(parent, weights=real, minlength=len(idx))
        return np.round(total * SCALE.get(column.type, 1)).astype(np.int64)

    def _reference(self, constraint: m.Constraint, idx: np.ndarray) -> np.ndarray:
        referred = np.asarray(self.value(constraint.table, constraint.via, idx)) - 1
        return np.asarray(self.value(constraint.other_table, constraint.other_column, referred))

    def _after(self, constraint: m.Constraint, column: m.Column, idx: np.ndarray) -> np.ndarray:
        reference = self._reference(constraint, idx)
        room = np.clip(self.w.end - 61 - reference, 1, MAX_AFTER)
        return reference + 60 + self.w.stream(constraint.table, column.name).integers(idx, room)

    def _balance(self, constraint: m.Constraint, column: m.Column, idx: np.ndarray) -> np.ndarray:
        fanout = self._fanouts[constraint.table]
        parent = fanout.parent_of(idx)
        last = fanout.first_child(parent + 1) - 1
        own = self._draw(constraint.table, column, idx)
        closing = np.flatnonzero(idx == last)
        if len(closing) == 0:
            return own
        first = fanout.first_child(parent[closing])
        group, number = expand(last[closing] - first)
        others = self._draw(constraint.table, column, first[group] + number)
        sums = np.bincount(group, weights=np.asarray(others, dtype=np.float64), minlength=len(closing))
        own[closing] = -np.round(sums).astype(np.int64)
        return own

    def _sequence(self, constraint: m.Constraint, column: m.Column, idx: np.ndarray) -> np.ndarray:
        low, high = self._range(column)
        stream = self.w.stream(constraint.table, column.name)
        jitter = stream.uniform(idx, 1)
        if constraint.group != self._link(constraint.table):
            step = 60 if column.type == m.TIMESTAMP else 1
            return low + idx * step + (jitter * 0.9 * step).astype(np.int64)
        fanout = self._fanouts[constraint.table]
        parent = fanout.parent_of(idx)
        number = idx - fanout.first_child(parent)
        base = low + (stream.uniform(parent, 2) * (high - low) / 2).astype(np.int64)
        step = np.maximum((high - base) // (fanout.high + 1), 1)
        return base + number * step + (jitter * 0.9 * step).astype(np.int64)

    def _aux(self, name: str, column_name: str, idx: np.ndarray) -> dict[str, np.ndarray]:
        """What a constraint's contradiction needs: the time an ``after`` value follows, the previous value
        of a ``sequence`` group."""
        constraint = self.constraints.get((name, column_name))
        if constraint is None:
            return {}
        if constraint.kind == m.AFTER:
            return {after_key(column_name): self._reference(constraint, idx)}
        if constraint.kind != m.SEQUENCE:
            return {}
        previous = np.full(len(idx), NO_PREVIOUS, dtype=np.int64)
        if constraint.group == self._link(name):
            fanout = self._fanouts[name]
            later = np.flatnonzero(idx > fanout.first_child(fanout.parent_of(idx)))
            previous[later] = self._compute(name, column_name, idx[later] - 1)
        return {previous_key(column_name): previous}


def _uuids(stream: Stream, idx: np.ndarray) -> pa.Array:
    """Random (version 4 shaped) UUIDs in their 8-4-4-4-12 hexadecimal text."""
    parts: list[pa.Array | str] = []
    for position in range(32):
        if position in (8, 12, 16, 20):
            parts.append("-")
        if position == 12:
            parts.append("4")
            continue
        parts.append(_HEX.take(stream.integers(idx, 16, position + 1)))
    return pc.binary_join_element_wise(*parts, "")


def _epoch(day: str) -> int:
    return int(np.datetime64(str(day), "D").astype("datetime64[s]").astype(np.int64))


def _provider(name: str) -> str:
    """The value pool a text column draws from when its contract names none, from the column's name."""
    name = name.lower()
    for words, provider in (
        (("first",), "first_name"),
        (("last", "surname"), "last_name"),
        (("city", "town"), "city"),
        (("company", "merchant", "vendor", "seller", "bank", "site"), "company"),
        (("street", "address"), "street"),
        (("description", "note", "comment", "memo", "body", "text", "message"), "sentence"),
        (("name", "holder", "owner"), "full_name"),
    ):
        if any(word in name for word in words):
            return provider
    return "word"
