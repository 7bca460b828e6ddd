"""Bringing a state database made by an earlier version up to date: columns added since are added where
missing, safely while other processes open the same database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def add_missing_columns(cur: Any, table: str, columns: Sequence[tuple[str, str]]) -> None:
    """Add each ``(column, sql_type)`` that ``table`` lacks, through a DB-API cursor (SQLite or MySQL)."""

    def present() -> set[str]:
        cur.execute(f"SELECT * FROM {table} WHERE 1 = 0")
        cur.fetchall()
        return {description[0] for description in cur.description}

    for column, sql_type in columns:
        if column in present():
            continue
        try:
            cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
        except Exception:
            if column not in present():  # not a concurrent upgrade that added it first
                raise
