"""Vectorised JSON text: each column becomes an Arrow array of JSON fragments, rows are joined in C++."""

from __future__ import annotations

from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NULL = "null"


_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
_NEEDS_ESCAPE = r'[\\"\t\n\r]'


def quote(values: pa.Array, *, escape: bool = True) -> pa.Array:
    """JSON string literals; nulls become ``null``. Values never hold control characters other than tab,
    newline and carriage return. ``escape=False`` is for values known to need no escaping (pool values)."""
    if escape and pc.any(pc.match_substring_regex(values, _NEEDS_ESCAPE)).as_py():
        for raw, escaped in _ESCAPES:
            values = pc.replace_substring(values, raw, escaped)
    return pc.fill_null(pc.binary_join_element_wise('"', values, '"', ""), NULL)


def _nulls(text: pa.Array, null: np.ndarray | None) -> pa.Array:
    if null is not None and null.any():
        text = pc.if_else(pa.array(null), pa.scalar(None, pa.string()), text)
    return text


def integers(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return _nulls(pa.array(values, pa.int64()).cast(pa.string()), null).fill_null(NULL)


def scaled(values: np.ndarray, decimals: int, null: np.ndarray | None = None) -> pa.Array:
    """Fixed-point numbers stored as scaled integers (cents for money) rendered with exact decimals: the
    integers are laid out as 128-bit decimals of that scale, which Arrow writes as text in C++."""
    ints = np.asarray(values, dtype=np.int64)
    words = np.empty(2 * len(ints), dtype=np.int64)
    words[0::2], words[1::2] = ints, ints >> 63  # little-endian low word, then the sign extension
    decimal = pa.Array.from_buffers(pa.decimal128(38, decimals), len(ints), [None, pa.py_buffer(words)])
    return _nulls(decimal.cast(pa.string()), null).fill_null(NULL)


@cache
def _fractions(decimals: int) -> pa.Array:
    """ "00".."99" (or "0".."9"): the digits after the point, by lookup instead of formatting."""
    return pa.array([str(i).zfill(decimals) for i in range(10**decimals)])


@cache
def _times_of_day() -> pa.Array:
    """ "00:00:00".."23:59:59", written as digits into one buffer (formatting 86,400 strings one by one cost
    every generating process a tenth of a second)."""
    seconds = np.arange(86400)
    text = np.full((86400, 8), ord(":"), dtype=np.uint8)
    for column, part in ((0, seconds // 3600), (3, seconds // 60 % 60), (6, seconds % 60)):
        text[:, column], text[:, column + 1] = ord("0") + part // 10, ord("0") + part % 10
    offsets = np.arange(0, 8 * 86400 + 1, 8, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), 86400, [None, pa.py_buffer(offsets), pa.py_buffer(text)])


def iso_text(seconds: np.ndarray, quote: str = "") -> pa.Array:
    """ISO-8601 UTC text (``2024-03-05T14:22:10Z``) for epoch seconds, through day and time lookup tables;
    ``quote`` is put around each value (a JSON string literal needs no escaping here)."""
    seconds = np.asarray(seconds, dtype=np.int64)
    if len(seconds) == 0:
        return pa.array([], pa.string())
    days = seconds // 86400
    first = int(days.min())
    span = np.arange(first, int(days.max()) + 1).astype("datetime64[D]")
    day_text = pa.array(np.datetime_as_string(span).astype(object), pa.string())
    return pc.binary_join_element_wise(
        quote, day_text.take(days - first), "T", _times_of_day().take(seconds % 86400), "Z" + quote, ""
    )


def timestamps(seconds: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return _nulls(iso_text(seconds, quote='"'), null).fill_null(NULL)


def join_lines(names: list[str], fragments: list[pa.Array]) -> pa.Array:
    """One JSON object per row, newline-terminated, keys in schema order."""
    parts: list[pa.Array | str] = []
    for i, (name, fragment) in enumerate(zip(names, fragments, strict=True)):
        parts.append(("{" if i == 0 else ",") + f'"{name}":')
        parts.append(fragment)
    parts.append("}\n")
    return pc.binary_join_element_wise(*parts, "")


def to_bytes(lines: pa.Array) -> bytes | memoryview:
    """The concatenated text of a string array, read straight from its data buffer."""
    lines = pa.concat_arrays([lines]) if lines.offset else lines
    if len(lines) == 0:
        return b""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1)
    return memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]]
