"""Vectorised corruptions. Each takes the clean cells chosen for one error kind and returns their dirty
JSON fragments plus a mask of the cells it really changed; a draw that leaves a value unchanged is
re-drawn on another lane, and a cell no attempt can change carries no error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchestrator.domain import model as m
from orchestrator.domain import shop as s
from orchestrator.domain.rules import closest_value
from orchestrator.generation import jsonfmt
from orchestrator.generation.rng import Stream

STR = np.dtypes.StringDType()
ATTEMPTS = 6
SCALE = {s.MONEY: 100, s.DECIMAL1: 10, s.INT: 1, s.FK: 1}
WRONG_TYPE_NUMBERS = ("N/A", "n/a", "unknown", "-", "TBD", "?", "none", "twelve")
WRONG_TYPE_DATES = ("N/A", "unknown", "yesterday", "TBD", "not set", "soon")
# Values outside the allowed sets, none of them a single typo away from an allowed value (that would be a
# repairable typo, not an unknown category).
UNKNOWN = {
    "country": ("XX", "ZZ", "QQ", "XY"),
    "currency": ("XXX", "ABC", "QQQ"),
    "warehouse": ("HAM9", "PAR2", "XXX1", "TMP"),
}
UNKNOWN_DEFAULT = ("other", "unknown", "legacy", "test", "pending_review", "on_hold", "archived", "misc")


@dataclass
class Cells:
    """The cells of one column picked for one kind: clean values, their fragments and their row draws."""

    table: s.Table
    column: s.Column
    idx: np.ndarray  # row indices (stream addresses)
    clean: np.ndarray | pa.Array  # clean values (numbers, epoch seconds or strings)
    fragments: pa.Array  # clean JSON fragments
    stream: Stream
    as_of: int
    aux: dict[str, np.ndarray]


Result = tuple[pa.Array, np.ndarray]


def _changed(cells: Cells, dirty: pa.Array) -> Result:
    return dirty, np.asarray(pc.not_equal(cells.fragments, dirty).fill_null(True))


CASES = {"lower": np.strings.lower, "upper": np.strings.upper, "title": np.strings.title}


def _case(values: np.ndarray, case: str | None) -> np.ndarray:
    return CASES[case](values) if case in CASES else values


def _retry(
    cells: Cells, variants: list[Callable[[np.ndarray, np.ndarray, int], np.ndarray]], accept=None
) -> Result:
    """Apply a string variant per cell, cycling to the next variant (and new positions) while unchanged."""
    text = np.asarray(cells.clean.to_numpy(zero_copy_only=False), dtype=STR)
    valid = ~pc.is_null(cells.clean).to_numpy(zero_copy_only=False)
    out = text.copy()
    done = np.zeros(len(text), dtype=bool)
    first = cells.stream.integers(cells.idx, len(variants))
    for attempt in range(ATTEMPTS):
        todo = np.flatnonzero(~done & valid)
        if len(todo) == 0:
            break
        variant = (first[todo] + attempt) % len(variants)
        for v, make in enumerate(variants):
            rows = todo[variant == v]
            if len(rows) == 0:
                continue
            candidate = make(text[rows], cells.idx[rows], attempt + 1)
            ok = candidate != text[rows]
            if accept is not None:
                ok &= accept(candidate, text[rows])
            out[rows[ok]] = candidate[ok]
            done[rows[ok]] = True
    return jsonfmt.quote(pa.array(out.astype(object), pa.string())), done


def _slice(text: np.ndarray, start, stop=None) -> np.ndarray:
    return np.strings.slice(text, start, np.iinfo(np.int64).max if stop is None else stop)


def _position(cells: Cells, text: np.ndarray, idx: np.ndarray, lane: int, margin: int) -> np.ndarray:
    length = np.strings.str_len(text)
    return cells.stream.integers(idx, np.maximum(length - margin, 1), lane)


def missing(cells: Cells) -> Result:
    empty = (cells.column.type in s.STRING_TYPES) & (cells.stream.uniform(cells.idx, 1) < 0.3)
    return _changed(cells, pa.array(np.where(empty, '""', jsonfmt.NULL).astype(object), pa.string()))


def whitespace(cells: Cells) -> Result:
    return _retry(
        cells,
        [
            lambda t, i, lane: " " + t,
            lambda t, i, lane: t + " ",
            lambda t, i, lane: "  " + t + " ",
            lambda t, i, lane: t + "\t",
            lambda t, i, lane: np.strings.replace(t, " ", "  ", 1),
        ],
    )


def case(cells: Cells) -> Result:
    return _retry(
        cells,
        [
            lambda t, i, lane: np.strings.upper(t),
            lambda t, i, lane: np.strings.lower(t),
            lambda t, i, lane: np.strings.swapcase(t),
        ],
    )


def typo(cells: Cells) -> Result:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"), dtype=STR)
    canonical = cells.column.categories

    def pos(t, i, lane, margin):
        return _position(cells, t, i, lane, margin)

    def swap(t, i, lane):
        p = pos(t, i, lane, 1)
        return _slice(t, 0, p) + _slice(t, p + 1, p + 2) + _slice(t, p, p + 1) + _slice(t, p + 2)

    def drop(t, i, lane):
        p = pos(t, i, lane, 0)
        return _slice(t, 0, p) + _slice(t, p + 1)

    def double(t, i, lane):
        p = pos(t, i, lane, 0)
        return _slice(t, 0, p + 1) + _slice(t, p)

    def replace(t, i, lane):
        p = pos(t, i, lane, 0)
        return _slice(t, 0, p) + letters[cells.stream.integers(i, 26, lane + 50)] + _slice(t, p + 1)

    def repairable(candidates: np.ndarray, originals: np.ndarray) -> np.ndarray:
        """A typo counts only if exactly one allowed value, the original, is one edit away (looked up once
        per distinct candidate: typos of a few categories repeat)."""
        distinct, inverse = np.unique(_case(candidates, cells.column.case), return_inverse=True)
        repaired = np.array([closest_value(value, canonical) for value in distinct.tolist()], dtype=object)
        return repaired[inverse] == originals.astype(object)

    return _retry(cells, [swap, drop, double, replace], accept=repairable)


def email_malformed(cells: Cells) -> Result:
    return _retry(
        cells,
        [
            lambda t, i, lane: np.strings.replace(t, "@", ""),
            lambda t, i, lane: np.strings.replace(t, "@", "@@"),
            lambda t, i, lane: np.strings.replace(t, "@", " at "),
            lambda t, i, lane: t + ".",
            lambda t, i, lane: _slice(t, 0, 1) + " " + _slice(t, 1),
        ],
    )


def phone_format(cells: Cells) -> Result:
    def grouped(sep: str):
        def make(t, i, lane):
            d = _slice(t, 1)
            return "+" + _slice(d, 0, 2) + sep + _slice(d, 2, 5) + sep + _slice(d, 5, 8) + sep + _slice(d, 8)

        return make

    return _retry(
        cells,
        [
            lambda t, i, lane: "00" + _slice(t, 1),
            grouped(" "),
            grouped("-"),
            lambda t, i, lane: "(+" + _slice(t, 1, 3) + ") " + _slice(t, 3),
        ],
    )


def phone_malformed(cells: Cells) -> Result:
    return _retry(
        cells,
        [
            lambda t, i, lane: _slice(t, 0, 5) + "xx" + _slice(t, 7),
            lambda t, i, lane: _slice(t, 0, 6),
            lambda t, i, lane: t + "99999999",
        ],
    )


def _pool(cells: Cells, values: tuple[str, ...]) -> Result:
    pick = cells.stream.integers(cells.idx, len(values), 1)
    return _changed(cells, jsonfmt.quote(pa.array(values).take(pick)))


def wrong_type(cells: Cells) -> Result:
    return _pool(cells, WRONG_TYPE_DATES if cells.column.type == s.TIMESTAMP else WRONG_TYPE_NUMBERS)


def unknown_category(cells: Cells) -> Result:
    allowed = cells.column.categories
    values = UNKNOWN.get(cells.column.name, UNKNOWN_DEFAULT)
    return _pool(cells, tuple(v for v in values if v not in allowed and closest_value(v, allowed) is None))


def _number(cells: Cells, values: np.ndarray) -> Result:
    if cells.column.type == s.MONEY:
        return _changed(cells, jsonfmt.scaled(values, 2))
    if cells.column.type == s.DECIMAL1:
        return _changed(cells, jsonfmt.scaled(values, 1))
    return _changed(cells, jsonfmt.integers(values))


def negative(cells: Cells) -> Result:
    clean = np.asarray(cells.clean)
    fallback = (1 + cells.stream.integers(cells.idx, 99, 1)) * SCALE[cells.column.type]
    return _number(cells, -np.where(clean != 0, np.abs(clean), fallback))


def zero(cells: Cells) -> Result:
    return _number(cells, np.zeros(len(cells.idx), dtype=np.int64))


def outlier(cells: Cells) -> Result:
    top = cells.column.maximum * SCALE[cells.column.type]
    return _number(cells, (top * (1.5 + 18.5 * cells.stream.uniform(cells.idx, 1))).astype(np.int64))


def orphan_fk(cells: Cells) -> Result:
    return _changed(cells, jsonfmt.integers(900_000_000 + cells.stream.integers(cells.idx, 99_999_999, 1)))


def total_mismatch(cells: Cells) -> Result:
    clean = np.asarray(cells.clean)
    u = cells.stream.uniform(cells.idx, 1)
    factor = 1 + np.where(u < 0.5, -1, 1) * (0.05 + 0.45 * cells.stream.uniform(cells.idx, 2))
    dirty = np.round(clean * factor).astype(np.int64)
    return _number(cells, np.where(dirty == clean, clean + 100, dirty))


def impossible_date(cells: Cells) -> Result:
    seconds = np.asarray(cells.clean)
    iso = np.asarray(jsonfmt.iso_text(seconds).to_numpy(zero_copy_only=False), dtype=STR)
    cells = Cells(**{**cells.__dict__, "clean": pa.array(iso.astype(object), pa.string())})

    def two(i, lane, low, span):
        return np.strings.zfill((low + cells.stream.integers(i, span, lane + 40)).astype(STR), 2)

    return _retry(
        cells,
        [
            lambda t, i, lane: _slice(t, 0, 5) + two(i, lane, 13, 7) + _slice(t, 7),
            lambda t, i, lane: _slice(t, 0, 5) + "02-" + two(i, lane, 30, 2) + _slice(t, 10),
            lambda t, i, lane: _slice(t, 0, 8) + two(i, lane, 32, 8) + _slice(t, 10),
            lambda t, i, lane: _slice(t, 0, 11) + two(i, lane, 24, 6) + _slice(t, 13),
        ],
    )


def future_date(cells: Cells) -> Result:
    later = cells.as_of + 86_400 + cells.stream.integers(cells.idx, 730 * 86_400, 1)
    return _changed(cells, jsonfmt.timestamps(later))


def _before(cells: Cells, reference: np.ndarray) -> Result:
    earlier = reference - 3600 - cells.stream.integers(cells.idx, 89 * 86_400, 1)
    return _changed(cells, jsonfmt.timestamps(earlier))


def order_before_signup(cells: Cells) -> Result:
    return _before(cells, cells.aux["signup"])


def after_key(column: str) -> str:
    """The aux entry holding, per row, the time ``column`` must follow (an ``after`` constraint)."""
    return f"after:{column}"


def previous_key(column: str) -> str:
    """The aux entry holding, per row, ``column`` of the previous row of its group (NO_PREVIOUS: none)."""
    return f"previous:{column}"


NO_PREVIOUS = np.iinfo(np.int64).min


def before_reference(cells: Cells) -> Result:
    """An ``after`` contradiction: a time before the one it must follow."""
    return _before(cells, cells.aux[after_key(cells.column.name)])


def out_of_sequence(cells: Cells) -> Result:
    """A ``sequence`` contradiction: a value below the previous one of its group (the first has none)."""
    previous = cells.aux[previous_key(cells.column.name)]
    has = previous != NO_PREVIOUS
    step = 1 + cells.stream.integers(cells.idx, 3600 if cells.column.type == s.TIMESTAMP else 10, 1)
    lower = np.where(has, previous, np.asarray(cells.clean)) - step * SCALE.get(cells.column.type, 1)
    if cells.column.type == s.TIMESTAMP:
        dirty, changed = _changed(cells, jsonfmt.timestamps(lower))
    else:
        dirty, changed = _number(cells, lower)
    return dirty, changed & has


CORRUPTIONS: dict[str, Callable[[Cells], Result]] = {
    "missing": missing,
    "whitespace": whitespace,
    "case": case,
    "typo": typo,
    "email_malformed": email_malformed,
    "phone_format": phone_format,
    "phone_malformed": phone_malformed,
    "wrong_type": wrong_type,
    "negative": negative,
    "zero": zero,
    "outlier": outlier,
    "impossible_date": impossible_date,
    "future_date": future_date,
    "unknown_category": unknown_category,
    "orphan_fk": orphan_fk,
    "order_before_signup": order_before_signup,
    "total_mismatch": total_mismatch,
}
# How a generic contract's constraint is contradicted, by constraint kind (the shop keeps CORRUPTIONS).
CONTRADICTIONS: dict[str, Callable[[Cells], Result]] = {
    m.AFTER: before_reference,
    m.AGGREGATE: total_mismatch,
    m.ROW: total_mismatch,
    m.BALANCE: total_mismatch,
    m.SEQUENCE: out_of_sequence,
}
