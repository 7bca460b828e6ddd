"""Column-level cleaning on Arrow arrays: normalise, validate and repair one column at a time.

Every function takes the raw text of a column (JSON values read as strings) and returns the typed clean
values plus, per cell, the id of the rule the raw value broke (null where the raw value was valid as is).
A cell whose value could be repaired keeps the repaired value; one that could not becomes null.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchestrator.domain import model as m
from orchestrator.domain import rules as r

NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"
INTEGER = r"^-?[0-9]+(\.0+)?$"
SCALE = {m.MONEY: 2, m.DECIMAL1: 1}


class Cleaned:
    """A cleaned column: typed values and the rule each raw cell broke.

    Rules are kept as a small code per cell (0: the cell broke none; k: the k-th rule blamed in this
    column), so blaming is a numpy assignment and rule ids become text only once, for the silver table.
    """

    def __init__(self, values: pa.Array) -> None:
        self.values = values
        self.codes = np.zeros(len(values), dtype=np.uint8)
        self.rules: list[str] = []

    def blame(self, mask: pa.Array | np.ndarray, rule_id: str) -> None:
        """Record ``rule_id`` for cells in ``mask`` that have no issue yet."""
        hit = as_mask(mask) & (self.codes == 0)
        if hit.any():
            if rule_id not in self.rules:
                self.rules.append(rule_id)
            self.codes[hit] = self.rules.index(rule_id) + 1

    def invalidate(self, mask: pa.Array | np.ndarray, rule_id: str) -> None:
        """Null the values in ``mask`` and blame ``rule_id`` for them."""
        mask = as_mask(mask)
        if not mask.any():
            return
        self.blame(mask & as_mask(pc.is_valid(self.values)), rule_id)
        self.values = pc.if_else(pa.array(mask), pa.scalar(None, self.values.type), self.values)

    def issues(self, rows: np.ndarray, default: str | None = None) -> np.ndarray:
        """The rule ids blamed for ``rows`` (``default`` where a row broke none), as a numpy object array."""
        return np.array([default, *self.rules], dtype=object)[self.codes[rows]]


def as_mask(mask: pa.Array | np.ndarray) -> np.ndarray:
    """A boolean mask as numpy, null counting as false."""
    if isinstance(mask, np.ndarray):
        return mask
    return mask.fill_null(False).to_numpy(zero_copy_only=False)


def _rule_id(table: str, column: str, check: str) -> str:
    return f"{table}.{column}.{check}"


def normalise_space(text: pa.Array) -> pa.Array:
    """Trim, and collapse inner runs of whitespace to one space (only where needed: regex is slow)."""
    trimmed = pc.utf8_trim_whitespace(text)
    needs = pc.or_(pc.match_substring(trimmed, "  "), pc.match_substring_regex(trimmed, r"[\t\n\r]"))
    if pc.any(needs).as_py():
        collapsed = pc.replace_substring_regex(trimmed.filter(needs), r"\s+", " ")
        trimmed = pc.replace_with_mask(trimmed, needs.fill_null(False), collapsed)
    return trimmed


def _case(text: pa.Array, case: str | None) -> pa.Array:
    if case == "lower":
        return pc.utf8_lower(text)
    if case == "upper":
        return pc.utf8_upper(text)
    if case == "title":
        return pc.utf8_title(text)
    return text


def _present(raw: pa.Array) -> pa.Array:
    """Text with empty and blank strings turned into nulls (both mean the value is missing)."""
    blank = pc.or_(pc.equal(raw, ""), pc.utf8_is_space(raw))
    if not pc.any(blank).as_py():
        return raw
    return pc.if_else(blank, pa.scalar(None, pa.string()), raw)


def clean_column(table: m.Table, column: m.Column, raw: pa.Array, as_of: int) -> Cleaned:
    """Clean one column of raw text into its typed silver values."""
    t, c = table.name, column.name
    present = _present(raw)
    missing = pc.and_(pc.is_null(present), pc.invert(pc.is_null(raw)))  # "" or blanks
    result = Cleaned(present)
    if not column.nullable:
        result.blame(pc.is_null(present), _rule_id(t, c, r.NOT_NULL))
    result.blame(missing, _rule_id(t, c, r.NOT_NULL))

    if column.type in (m.ID, m.FK, m.INT, m.MONEY, m.DECIMAL1):
        _numbers(result, t, column, present)
    elif column.type == m.TIMESTAMP:
        _timestamps(result, t, c, present, as_of)
    elif column.type == m.CATEGORY:
        _categories(result, t, column, present)
    elif column.type == m.TEXT:
        fixed = _case(normalise_space(present), column.case)
        result.blame(pc.not_equal(fixed, present), _rule_id(t, c, r.CANONICAL_TEXT))
        result.values = fixed
    else:  # email, phone and codes: normalise, then the pattern decides
        _patterned(result, t, column, present)
    return result


def _numbers(result: Cleaned, t: str, column: m.Column, text: pa.Array) -> None:
    c = column.name
    integral = column.type in (m.ID, m.FK, m.INT)
    ok = _plain_number(text, integral)
    result.invalidate(pc.invert(ok), _rule_id(t, c, r.NUMERIC))
    number = pc.cast(result.values, pa.float64())
    values = pc.cast(number, pa.int64()) if integral else pc.round(number, SCALE[column.type])
    result.values = values
    if column.minimum is not None or column.maximum is not None:
        low = column.minimum if column.minimum is not None else -np.inf
        high = column.maximum if column.maximum is not None else np.inf
        outside = pc.or_(pc.less(values, low), pc.greater(values, high))
        result.invalidate(outside, _rule_id(t, c, r.RANGE))


def _plain_number(text: pa.Array, integral: bool) -> pa.Array:
    """Whether each text is a number as the INTEGER or NUMBER pattern reads it. Most are plain digits (with
    one inner point for decimals), which a cheap test accepts; the pattern runs only on the rest."""
    if integral:
        plain = pc.ascii_is_decimal(text)
    else:
        edge_point = pc.or_(pc.starts_with(text, "."), pc.ends_with(text, "."))
        digits = pc.ascii_is_decimal(pc.replace_substring(text, ".", "", max_replacements=1))
        plain = pc.and_(digits, pc.invert(edge_point))
    doubt = pc.and_(pc.invert(plain), pc.is_valid(text)).fill_null(False)
    plain = plain.fill_null(False)
    if not pc.any(doubt).as_py():
        return plain
    pattern = INTEGER if integral else NUMBER
    return pc.replace_with_mask(plain, doubt, pc.match_substring_regex(text.filter(doubt), pattern))


def _timestamps(result: Cleaned, t: str, c: str, text: pa.Array, as_of: int) -> None:
    seconds, real = iso_seconds(text)
    result.invalidate(~real, _rule_id(t, c, r.TIMESTAMP))
    result.values = pa.array(seconds, pa.timestamp("s", tz="UTC"), mask=~real)
    result.invalidate(real & (seconds > as_of), _rule_id(t, c, r.NOT_FUTURE))


ISO_DIGITS = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18)
ISO_MARKS = {4: b"-", 7: b"-", 10: b"T", 13: b":", 16: b":", 19: b"Z"}
DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def iso_seconds(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds of each text that is a real timestamp in canonical ISO-8601 UTC form
    (``2024-03-05T14:22:10Z``), and whether it is one: any other shape, 30 February, 24:00:00 or a leap
    second is not. Read straight from the string buffer, 20 bytes at fixed positions per cell."""
    n = len(text)
    seconds, real = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    _, offsets, data = text.buffers()
    if data is None:
        return seconds, real
    width = np.int64 if pa.types.is_large_string(text.type) else np.int32
    offsets = np.frombuffer(offsets, dtype=width, count=text.offset + n + 1)[text.offset :]
    data = np.frombuffer(data, dtype=np.uint8)
    rows = np.flatnonzero((np.diff(offsets) == 20) & as_mask(pc.is_valid(text)))
    start = offsets[rows]
    digit = {i: data[start + i].astype(np.int64) - ord("0") for i in ISO_DIGITS}
    shape = np.logical_and.reduce(
        [(d >= 0) & (d <= 9) for d in digit.values()]
        + [data[start + i] == ord(mark) for i, mark in ISO_MARKS.items()]
    )

    def number(first: int, digits: int) -> np.ndarray:
        return sum(digit[first + k] * 10 ** (digits - 1 - k) for k in range(digits))

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    hour, minute, second = number(11, 2), number(14, 2), number(17, 2)
    month_ok = (month >= 1) & (month <= 12)
    month = np.where(month_ok, month, 1)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    last_day = DAYS_IN_MONTH[month] + (leap & (month == 2))
    real[rows] = (
        shape & month_ok & (day >= 1) & (day <= last_day) & (hour <= 23) & (minute <= 59) & (second <= 59)
    )
    month_start = ((year - 1970) * 12 + month - 1).astype("datetime64[M]").astype("datetime64[D]")
    days = month_start.astype(np.int64) + day - 1
    seconds[rows] = days * 86400 + hour * 3600 + minute * 60 + second
    return np.where(real, seconds, 0), real


def _repair_suspects(text: pa.Array, valid: pa.Array, repair) -> pa.Array:
    """Run ``repair`` only on the cells that are not already valid (most are), and put the results back."""
    suspect = pc.and_(pc.invert(valid), pc.is_valid(text)).fill_null(False)
    if not pc.any(suspect).as_py():
        return text
    return pc.replace_with_mask(text, suspect, repair(text.filter(suspect)))


def _categories(result: Cleaned, t: str, column: m.Column, text: pa.Array) -> None:
    allowed = pa.array(column.categories)
    valid = pc.is_in(text, allowed)
    result.blame(pc.and_(pc.invert(valid), pc.is_valid(text)), _rule_id(t, column.name, r.IN_SET))

    def repair(bad: pa.Array) -> pa.Array:
        fixed = _case(normalise_space(bad), column.case)
        # Typos: the one allowed value a single edit away, looked up once per distinct value.
        distinct = pc.unique(fixed)
        repairs = pa.array([r.closest_value(v, column.categories) for v in distinct.to_pylist()], pa.string())
        return pc.take(repairs, pc.index_in(fixed, distinct))

    result.values = _repair_suspects(text, valid, repair)


def _patterned(result: Cleaned, t: str, column: m.Column, text: pa.Array) -> None:
    rule_id = _rule_id(t, column.name, r.PATTERN)
    valid = pc.match_substring_regex(text, column.pattern)
    result.blame(pc.and_(pc.invert(valid), pc.is_valid(text)), rule_id)

    def repair(bad: pa.Array) -> pa.Array:
        fixed = _case(pc.utf8_trim_whitespace(bad), column.case)
        if column.type == m.PHONE:
            fixed = pc.replace_substring_regex(
                pc.replace_substring_regex(fixed, r"[\s\-()]", ""), r"^00", "+"
            )
        return pc.if_else(
            pc.match_substring_regex(fixed, column.pattern), fixed, pa.scalar(None, pa.string())
        )

    result.values = _repair_suspects(text, valid, repair)
