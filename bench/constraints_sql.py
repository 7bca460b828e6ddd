"""One SQL implementation of the cross-table operations for both engines, measured against the engine's own.

The heaviest constraint operation, the aggregate witness (the shop's order totals from their items: items
ordered by key, a lost order reference given back to its neighbours' order when the line numbers prove it,
unsure orders left out), is run two ways over the same cleaned columns of a shop job of ``--orders``
orders, best of ``--repeat``:
- numpy/pandas: ``constraints.Repairs.aggregate``, as the pandas engine runs it;
- SQL: the same operation as one query of window functions, run by DuckDB over the same columns as Arrow
  (the form a single implementation for DuckDB and Spark SQL would take).
Both results are checked equal. Prints seconds and the SQL/numpy ratio. Run from the repository root:
``.venv/bin/python bench/constraints_sql.py [--orders 500000]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import tempfile
import time
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa

from orchestrator.cleaning.columns import clean_column
from orchestrator.cleaning.constraints import Repairs
from orchestrator.cleaning.engine import Work, _mark_key_duplicates
from orchestrator.cleaning.pipeline import read_manifest, read_raw
from orchestrator.config import Settings
from orchestrator.contracts import job_contract
from orchestrator.domain import model as m
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec
from orchestrator.storage import LocalLake

USER = "bench"

# The aggregate witness as one query: ``children`` (key, ref, line, value of the rows not repeating a key)
# and ``parents`` (k); the sums of the parents whose referring rows are provably all there and valid.
SQL = """
WITH c AS (
    SELECT key, CASE WHEN ref IN (SELECT k FROM parents) THEN ref END AS known, line, value FROM children
), n AS (
    SELECT *,
        lag(line) OVER w AS prev_line, lead(line) OVER w AS next_line,
        lag(known) OVER w AS prev_known, lead(known) OVER w AS next_known,
        last_value(known IGNORE NULLS) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ffill,
        first_value(known IGNORE NULLS) OVER (w ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS bfill,
        first_value(CASE WHEN known IS NOT NULL THEN coalesce(line, 0) END IGNORE NULLS)
            OVER (w ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS next_known_line
    FROM c WINDOW w AS (ORDER BY key)
), o AS (
    SELECT *, coalesce(
        known,
        CASE WHEN line > 1 AND prev_line = line - 1 THEN prev_known END,
        CASE WHEN line = 1 AND next_line = 2 THEN next_known END
    ) AS owner FROM n
), unsure AS (
    SELECT ffill AS p FROM o WHERE owner IS NULL AND line IS DISTINCT FROM 1 AND ffill IS NOT NULL
    UNION SELECT bfill FROM o WHERE owner IS NULL AND next_known_line IS DISTINCT FROM 1 AND bfill IS NOT NULL
), g AS (
    SELECT owner, sum(value) AS total, count(*) FILTER (WHERE value IS NULL) AS bad,
        count(*) FILTER (WHERE line IS NULL) AS unnumbered, count(DISTINCT line) AS lines, count(*) AS rows
    FROM o WHERE owner IS NOT NULL GROUP BY owner
)
SELECT owner, total FROM g
WHERE bad = 0 AND lines + unnumbered = rows AND owner NOT IN (SELECT p FROM unsure WHERE p IS NOT NULL)
"""


def _best(repeat: int, run) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-constraints-") as folder:
        settings = Settings(data_dir=Path(folder))
        spec = GenerationSpec(rows=args.orders, seed=3, tables=("orders", "order_items"))
        job = generate(spec, USER, settings=settings).job_id
        lake = LocalLake(settings.data_dir)
        manifest = read_manifest(lake, USER, job)
        contract = job_contract(lake, USER, job).contract
        raw = read_raw(lake, manifest, contract)
        as_of = int(datetime.fromisoformat(manifest["as_of"]).timestamp())
        work = {}
        for name in ("orders", "order_items"):
            table = contract.tables[name]
            text = {c.name: raw[name].column(c.name).combine_chunks() for c in table.columns}
            cols = {c.name: clean_column(table, c, text[c.name], as_of) for c in table.columns}
            work[name] = Work(table, raw[name], cols)
            _mark_key_duplicates(work[name])
    [constraint] = [c for c in contract.constraints if c.kind == m.AGGREGATE]
    repairs = Repairs(contract, work)
    numpy_seconds, sums = _best(args.repeat, lambda: repairs.aggregate(constraint))

    items, orders = work[constraint.other_table], work[constraint.table]
    keep = ~items.duplicate
    columns = {
        "key": items.numpy(items.table.key),
        "ref": items.numpy(constraint.via),
        "line": items.numpy(constraint.complete_when["sequence"]),
        "value": items.numpy(constraint.other_column),
    }
    # NaN as SQL NULL, as the engine's pandas reads NaN
    children = pa.table({name: pa.array(values[keep], from_pandas=True) for name, values in columns.items()})
    parent_keys = orders.numpy(orders.table.key)
    parents = pa.table({"k": pa.array(parent_keys[~np.isnan(parent_keys)])})
    con = duckdb.connect()
    con.register("children", children)
    con.register("parents", parents)
    sql_seconds, table = _best(args.repeat, lambda: con.sql(SQL).to_arrow_table())

    by_sql = dict(zip(table.column("owner").to_pylist(), table.column("total").to_pylist(), strict=True))
    by_numpy = {k: v for k, v in zip(parent_keys.tolist(), sums.tolist(), strict=True) if not np.isnan(v)}
    same = by_sql.keys() == by_numpy.keys() and all(abs(by_sql[k] - by_numpy[k]) < 1e-6 for k in by_numpy)
    rows = len(children)
    print(f"aggregate witness over {rows:,} items of {args.orders:,} orders, best of {args.repeat}")
    print(f"  numpy/pandas (the engine's) {numpy_seconds:7.3f} s")
    ratio = sql_seconds / numpy_seconds
    print(f"  one SQL query in DuckDB     {sql_seconds:7.3f} s   SQL/numpy {ratio:.2f}x")
    print(f"  same sums: {'yes' if same else 'NO'} ({len(by_numpy):,} complete orders)")


if __name__ == "__main__":
    main()
