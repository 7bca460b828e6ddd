"""Column-level cleaning on Arrow arrays: normalise, validate and repair one column at a time.

Every function takes the raw text of a column (JSON values read as strings) and returns the typed clean
values plus, per cell, the id of the rule the raw value broke (null where the raw value was valid as is).
A cell whose value could be repaired keeps the repaired value; one that could not becomes null.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchestrator import rules as r
from orchestrator.generation import schema as s
from orchestrator.generation.jsonfmt import iso_text

NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"
INTEGER = r"^-?[0-9]+(\.0+)?$"
SCALE = {s.MONEY: 2, s.DECIMAL1: 1}


@dataclass
class Cleaned:
    """A cleaned column: typed values and the rule each raw cell broke (null: it broke none)."""

    values: pa.Array
    issue: pa.Array

    def blame(self, mask: pa.Array | np.ndarray, rule_id: str) -> None:
        """Record ``rule_id`` for cells in ``mask`` that have no issue yet."""
        mask = pa.array(mask) if isinstance(mask, np.ndarray) else mask.fill_null(False)
        self.issue = pc.if_else(pc.and_(mask, pc.is_null(self.issue)), pa.scalar(rule_id), self.issue)

    def invalidate(self, mask: pa.Array | np.ndarray, rule_id: str) -> None:
        """Null the values in ``mask`` and blame ``rule_id`` for them."""
        mask = pa.array(mask) if isinstance(mask, np.ndarray) else mask.fill_null(False)
        self.blame(pc.and_(mask, pc.is_valid(self.values)), rule_id)
        self.values = pc.if_else(mask, pa.scalar(None, self.values.type), self.values)


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
    blank = pc.equal(pc.utf8_trim_whitespace(raw), "")
    return pc.if_else(blank, pa.scalar(None, pa.string()), raw)


def clean_column(table: s.Table, column: s.Column, raw: pa.Array, as_of: int) -> Cleaned:
    """Clean one column of raw text into its typed silver values."""
    t, c = table.name, column.name
    present = _present(raw)
    missing = pc.and_(pc.is_null(present), pc.invert(pc.is_null(raw)))  # "" or blanks
    result = Cleaned(present, pa.nulls(len(raw), pa.string()))
    if not column.nullable:
        result.blame(pc.is_null(present), _rule_id(t, c, r.NOT_NULL))
    result.blame(missing, _rule_id(t, c, r.NOT_NULL))

    if column.type in (s.ID, s.FK, s.INT, s.MONEY, s.DECIMAL1):
        _numbers(result, t, column, present)
    elif column.type == s.TIMESTAMP:
        _timestamps(result, t, c, present, as_of)
    elif column.type == s.CATEGORY:
        _categories(result, t, column, present)
    elif column.type == s.TEXT:
        fixed = _case(normalise_space(present), column.case)
        result.blame(pc.not_equal(fixed, present), _rule_id(t, c, r.CANONICAL_TEXT))
        result.values = fixed
    else:  # email, phone and codes: normalise, then the pattern decides
        _patterned(result, t, column, present)
    return result


def _numbers(result: Cleaned, t: str, column: s.Column, text: pa.Array) -> None:
    c = column.name
    integral = column.type in (s.ID, s.FK, s.INT)
    ok = pc.match_substring_regex(text, INTEGER if integral else NUMBER)
    result.invalidate(pc.invert(ok), _rule_id(t, c, r.NUMERIC))
    number = pc.cast(result.values, pa.float64())
    values = pc.cast(number, pa.int64()) if integral else pc.round(number, SCALE[column.type])
    result.values = values
    if column.minimum is not None or column.maximum is not None:
        low = column.minimum if column.minimum is not None else -np.inf
        high = column.maximum if column.maximum is not None else np.inf
        outside = pc.or_(pc.less(values, low), pc.greater(values, high))
        result.invalidate(outside, _rule_id(t, c, r.RANGE))


def _timestamps(result: Cleaned, t: str, c: str, text: pa.Array, as_of: int) -> None:
    parsed = pc.strptime(text, format="%Y-%m-%dT%H:%M:%SZ", unit="s", error_is_null=True)
    seconds = pc.cast(parsed, pa.int64())
    # strptime rolls 30 February over to 1 March and accepts loose shapes: a real, canonical timestamp is
    # one that writes back to exactly its own text.
    written = iso_text(seconds.fill_null(0).to_numpy(zero_copy_only=False))
    real = pc.and_(pc.is_valid(parsed), pc.equal(written, text)).fill_null(False)
    result.invalidate(pc.invert(real), _rule_id(t, c, r.TIMESTAMP))
    stamped = pc.cast(pc.if_else(real, parsed, pa.scalar(None, parsed.type)), pa.timestamp("s", tz="UTC"))
    result.values = stamped
    result.invalidate(pc.greater(seconds, as_of), _rule_id(t, c, r.NOT_FUTURE))


def _repair_suspects(text: pa.Array, valid: pa.Array, repair) -> pa.Array:
    """Run ``repair`` only on the cells that are not already valid (most are), and put the results back."""
    suspect = pc.and_(pc.invert(valid), pc.is_valid(text)).fill_null(False)
    if not pc.any(suspect).as_py():
        return text
    return pc.replace_with_mask(text, suspect, repair(text.filter(suspect)))


def _categories(result: Cleaned, t: str, column: s.Column, text: pa.Array) -> None:
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


def _patterned(result: Cleaned, t: str, column: s.Column, text: pa.Array) -> None:
    rule_id = _rule_id(t, column.name, r.PATTERN)
    valid = pc.match_substring_regex(text, column.pattern)
    result.blame(pc.and_(pc.invert(valid), pc.is_valid(text)), rule_id)

    def repair(bad: pa.Array) -> pa.Array:
        fixed = _case(pc.utf8_trim_whitespace(bad), column.case)
        if column.type == s.PHONE:
            fixed = pc.replace_substring_regex(
                pc.replace_substring_regex(fixed, r"[\s\-()]", ""), r"^00", "+"
            )
        return pc.if_else(
            pc.match_substring_regex(fixed, column.pattern), fixed, pa.scalar(None, pa.string())
        )

    result.values = _repair_suspects(text, valid, repair)
