"""Gold: the business aggregates a contract declares (customProperties ``gold``, docs/contracts.md), each one
read-only SELECT over the silver tables, run by DuckDB. Both engines call build_gold: the in-process pipeline
over its silver frames, the Spark job over the silver Parquet it published (streamed), so their gold is
identical.

A query sees each silver table by its name, with the contract's columns only, typed by their kind: keys and
integers BIGINT, money and one-decimal values exact DECIMALs, timestamps TIMESTAMPTZ in UTC, the rest
VARCHAR. It runs in a connection of its own that reaches no file, network or extension and whose settings
are locked, so a contract uploaded by anyone reads nothing but its silver. Its rows are kept sorted by their
columns from the left (the key first), and its columns are published with one Arrow type per kind of
value: whole numbers int64, decimals and floats float64, text string, timestamps to the second in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd
import pyarrow as pa

from orchestrator.domain import model as m

if TYPE_CHECKING:
    import pyarrow.dataset as ds

Silver = Mapping[str, "pd.DataFrame | pa.Table | ds.Scanner"]

SQL_TYPES = {
    m.ID: "BIGINT",
    m.FK: "BIGINT",
    m.INT: "BIGINT",
    m.MONEY: "DECIMAL(18,2)",
    m.DECIMAL1: "DECIMAL(18,1)",
    m.TIMESTAMP: "TIMESTAMPTZ",
}
_WHOLE = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER")
_TIME = pa.timestamp("s", tz="UTC")


class GoldError(Exception):
    """A gold query that does not run over the silver it was given."""


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sandbox(contract: m.Contract, silver: Silver) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection holding the silver tables as the contract types them, and nothing else it can
    reach: external access is off and the configuration locked once the tables are registered."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # dates and times of TIMESTAMPTZ values are those of UTC
    if not all(isinstance(frame, pd.DataFrame | pa.Table) for frame in silver.values()):
        # streamed silver is read on one thread: a second thread would not read faster, only hold a second
        # hash table of each aggregate (about 110 MB more for the customers of 5M orders)
        con.execute("SET threads = 1")
    for name, frame in silver.items():
        source = _quoted(f"_silver_{name}")
        con.register(f"_silver_{name}", frame)
        columns = ", ".join(
            f"CAST({_quoted(c.name)} AS {SQL_TYPES.get(c.type, 'VARCHAR')}) AS {_quoted(c.name)}"
            for c in contract.tables[name].columns
        )
        con.execute(f"CREATE VIEW {_quoted(name)} AS SELECT {columns} FROM {source}")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _published(relation: duckdb.DuckDBPyRelation) -> str:
    """The select list that gives each column of a query's result its published type."""
    columns = []
    for name, kind in zip(relation.columns, relation.types, strict=True):
        kind = str(kind)
        if kind in _WHOLE:
            kind = "BIGINT"
        elif kind.startswith(("DECIMAL", "FLOAT", "DOUBLE")):
            kind = "DOUBLE"
        elif kind.startswith("TIMESTAMP"):
            kind = "TIMESTAMPTZ"
        columns.append(f"CAST({_quoted(name)} AS {kind}) AS {_quoted(name)}")
    return ", ".join(columns)


def streamed(path: Path, columns: Sequence[str]) -> ds.Scanner:
    """Silver published as a Parquet file, as build_gold takes it without holding it: each query that reads
    the table scans ``columns`` anew, in batches of 16,384 rows on one thread (at 5M orders, 50 MB less
    held than batches of 131,072, for the same CPU time). Read whole, the silver of 5M orders held the Spark
    driver at about 1 GB."""
    import pyarrow.dataset as ds

    unbuffered = ds.ParquetFragmentScanOptions(pre_buffer=False)  # not every row group's bytes at once
    parquet = ds.ParquetFileFormat(default_fragment_scan_options=unbuffered)
    return ds.dataset(path, format=parquet).scanner(
        columns=list(columns), batch_size=1 << 14, batch_readahead=1, fragment_readahead=1, use_threads=False
    )


def run_query(con: duckdb.DuckDBPyConnection, gold: m.GoldTable) -> pa.Table:
    """One gold table: its query, which must be a single SELECT, its rows sorted and its columns typed."""
    statements = duckdb.extract_statements(gold.sql)
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise GoldError(f"gold {gold.name}: its sql must be one SELECT statement")
    try:
        query = con.sql(gold.sql)
        table = query.query("q", f"SELECT {_published(query)} FROM q ORDER BY ALL").to_arrow_table()
    except duckdb.Error as error:
        raise GoldError(f"gold {gold.name}: {str(error).splitlines()[0]}") from None
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(_TIME, safe=False))
    return table


def build_gold(contract: m.Contract, silver: Silver) -> dict[str, pa.Table]:
    """Every gold table the contract declares whose silver tables are all here (a job may clean only some
    of its tables), in the order declared."""
    wanted = [g for g in contract.gold if all(name in silver for name in g.reads)]
    if not wanted:
        return {}
    with sandbox(contract, silver) as con:
        return {gold.name: run_query(con, gold) for gold in wanted}
