"""Scoring against the generator's truth, which no other data-quality tool has.

Raw: an injected error is detected when a rule whose ``kinds`` hold its kind flags its cell (row kinds:
the key-uniqueness rule flags the duplicate line). Recall is over the errors some targeting rule could
judge (a cross-table rule judges only rows whose inputs are valid; ``judgeable / injected`` is reported
as coverage). Precision: of the cells a rule flags, the share carrying an injected error of a kind the rule
targets. Lines that repeat an earlier row (the duplicate map) are scored only by the uniqueness rule: they
copy their source line's errors, which are scored there.

Silver: every cell is compared with the clean truth by primary key; each injected error is fixed (its row
reached silver with the clean value), remaining (still different, or its duplicate still present),
quarantined (its row was set aside) or dropped (its row is gone).
"""

from __future__ import annotations

from orchestrator.domain import model as m
from orchestrator.domain import rules as r
from orchestrator.generation import catalogue
from orchestrator.quality.checks import tolerance
from orchestrator.quality.engine import Session
from orchestrator.quality.layers import NUMBER, TIME, LoadedTable, lit, q
from orchestrator.quality.model import KindScore, Score, ratio
from orchestrator.storage import paths


def _kind_order(kind: str) -> tuple[int, str]:
    """Error kinds in the catalogue's order; a kind the catalogue does not know (yet) after them."""
    known = list(catalogue.KINDS)
    return (known.index(kind), "") if kind in known else (len(known), kind)


def _answer_key(session: Session) -> None:
    files = session.files
    for name, path in (
        ("__ak", paths.answer_key(files.user, files.source_job_id)),
        ("__dups", paths.duplicate_map(files.user, files.source_job_id)),
    ):
        session.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS "
            f"SELECT * FROM read_parquet({lit(session.local_path(path))})"
        )


def score_raw_session(session: Session) -> Score:
    """Recall and precision of the rules per error kind, against the answer key."""
    con = session.con
    _answer_key(session)
    runnable, _ = session.rule_lines()
    scored = [x for x in runnable if x.rule.kinds]
    con.execute("CREATE OR REPLACE TEMP TABLE __flags (rule_id VARCHAR, line BIGINT)")
    con.execute("CREATE OR REPLACE TEMP TABLE __judged (rule_id VARCHAR, line BIGINT)")
    targets = []
    for x in scored:
        con.execute(f"INSERT INTO __flags SELECT {lit(x.rule.id)}, __line FROM ({x.failed})")
        cross = x.rule.check in m.CONSTRAINT_KINDS
        if cross:
            con.execute(f"INSERT INTO __judged SELECT {lit(x.rule.id)}, __line FROM ({x.judged})")
        targets += [
            (x.rule.id, x.rule.table, x.rule.column, k, x.rule.check == r.UNIQUE, cross) for k in x.rule.kinds
        ]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __targets "
        "(rule_id VARCHAR, tbl VARCHAR, col VARCHAR, kind VARCHAR, row_rule BOOLEAN, cross_table BOOLEAN)"
    )
    if targets:
        con.executemany("INSERT INTO __targets VALUES (?, ?, ?, ?, ?, ?)", targets)
    row_kinds = ", ".join(lit(k) for k in catalogue.ROW_KINDS)
    # every injected error, once: cell errors by cell, duplicates by line
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __errors AS "
        f'SELECT "table" AS tbl, line, "column" AS col, kind, FALSE AS row_kind FROM __ak '
        f"WHERE kind NOT IN ({row_kinds}) "
        f'UNION ALL SELECT "table", line, NULL, kind, TRUE FROM __dups'
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __scored AS "
        "SELECT e.kind, e.tbl, "
        "bool_or(t.rule_id IS NOT NULL AND (NOT t.cross_table OR j.line IS NOT NULL)) AS judgeable, "
        "bool_or(f.rule_id IS NOT NULL) AS detected "
        "FROM __errors e LEFT JOIN __targets t ON t.tbl = e.tbl AND t.kind = e.kind "
        "AND (t.col = e.col OR (e.row_kind AND t.row_rule)) "
        "LEFT JOIN __flags f ON f.rule_id = t.rule_id AND f.line = e.line "
        "LEFT JOIN __judged j ON j.rule_id = t.rule_id AND j.line = e.line "
        "GROUP BY e.kind, e.tbl, e.line, e.col"
    )
    # every flag, judged against the errors of the kinds its rule targets (copies scored by uniqueness only)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __flag_truth AS "
        "SELECT f.rule_id, any_value(t.tbl) AS tbl, f.line, bool_or(e.kind IS NOT NULL) AS correct, "
        "list(DISTINCT t.kind) AS kinds "
        "FROM __flags f JOIN __targets t ON t.rule_id = f.rule_id "
        "LEFT JOIN __errors e ON e.tbl = t.tbl AND e.line = f.line AND e.kind = t.kind "
        "AND (e.col = t.col OR (e.row_kind AND t.row_rule)) "
        'WHERE t.row_rule OR NOT EXISTS (SELECT 1 FROM __dups d WHERE d."table" = t.tbl AND d.line = f.line) '
        "GROUP BY f.rule_id, f.line"
    )
    kinds = []
    counts = con.execute(
        "SELECT kind, count(*), count(*) FILTER (WHERE judgeable), count(*) FILTER (WHERE detected) "
        "FROM __scored GROUP BY kind"
    ).fetchall()
    flags = {
        k: (n, c)
        for k, n, c in con.execute(
            "SELECT k, count(*), count(*) FILTER (WHERE correct) "
            "FROM __flag_truth, unnest(kinds) AS u(k) GROUP BY k"
        ).fetchall()
    }
    for kind, injected, judgeable, detected in sorted(counts, key=lambda c: _kind_order(c[0])):
        flagged, correct = flags.get(kind, (0, 0))
        kinds.append(
            KindScore(
                kind,
                injected,
                judgeable=judgeable,
                detected=detected,
                recall=ratio(detected, judgeable) if judgeable else None,
                flagged=flagged,
                correct_flags=correct,
                precision=ratio(correct, flagged) if flagged else None,
            )
        )
    rules = [
        {"rule_id": rule_id, "flagged": n, "correct_flags": c, "precision": ratio(c, n)}
        for rule_id, n, c in con.execute(
            "SELECT rule_id, count(*), count(*) FILTER (WHERE correct) FROM __flag_truth GROUP BY rule_id "
            "ORDER BY rule_id"
        ).fetchall()
    ]
    injected, judgeable, detected = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE judgeable), count(*) FILTER (WHERE detected) FROM __scored"
    ).fetchone()
    flagged, correct = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE correct) FROM __flag_truth"
    ).fetchone()
    totals = {
        "injected": injected,
        "judgeable": judgeable,
        "coverage": ratio(judgeable, injected),
        "detected": detected,
        "recall": ratio(detected, judgeable),
        "flagged": flagged,
        "correct_flags": correct,
        "precision": ratio(correct, flagged),
    }
    return Score("raw", kinds, rules, totals)


def _silver_value(table: LoadedTable, col: m.Column) -> str:
    """SQL: the typed value of ``col`` in silver row ``v``."""
    info = table.columns[col.name]
    return f"v.{info.value if info.kind in (NUMBER, TIME) else info.text}"


def _differs(table: LoadedTable, col: m.Column) -> str:
    """SQL: silver row ``v`` holds another value than truth row ``t`` in ``col``."""
    info = table.columns[col.name]
    truth = q(col.name)
    if info.kind == NUMBER:
        # equal within the tolerance, or both null; a value on one side only differs (a nulled number too)
        tol = tolerance(col)
        both_null = f"v.{info.value} IS NULL AND t.{truth} IS NULL"
        return f"NOT coalesce(abs(v.{info.value} - t.{truth}) <= {tol}, {both_null})"
    if info.kind == TIME:
        return f"v.{info.value} IS DISTINCT FROM CAST(t.{truth} AS TIMESTAMP)"
    return f"v.{info.text} IS DISTINCT FROM t.{truth}"


def score_silver_session(session: Session) -> Score:
    """Cells of silver still different from the clean truth, per injected error kind."""
    con, files = session.con, session.files
    _answer_key(session)
    con.execute("CREATE OR REPLACE TEMP TABLE __diff (tbl VARCHAR, key DOUBLE, col VARCHAR, nulled BOOLEAN)")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __rows (tbl VARCHAR, key DOUBLE, silver BIGINT, quarantined BOOLEAN)"
    )
    compared = 0
    for name, table in session.tables.items():
        truth_path = paths.truth_table(files.user, files.source_job_id, name)
        if table.schema is None or table.key is None:
            continue
        truth = f"__truth_{name}"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {q(truth)} AS "
            f"SELECT * FROM read_parquet({lit(session.local_path(truth_path))})"
        )
        key, tkey = table.key.value, q(table.schema.key)
        quarantined = "FALSE"
        if name in files.quarantine:
            qpath = lit(session.local_path(files.quarantine[name]))
            quarantined = f"t.{tkey} IN (SELECT TRY_CAST({tkey} AS DOUBLE) FROM read_parquet({qpath}))"
        con.execute(
            f"INSERT INTO __rows SELECT {lit(name)}, t.{tkey}, count(v.__line), {quarantined} "
            f"FROM {q(truth)} t LEFT JOIN {q(table.relation)} v ON v.{key} = t.{tkey} GROUP BY t.{tkey}"
        )
        cols = [c for c in table.schema.columns if c.name in table.columns and c.name != table.schema.key]
        first = (
            f"SELECT * FROM {q(table.relation)} "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY __line) = 1"
        )
        for col in cols:
            con.execute(
                f"INSERT INTO __diff SELECT {lit(name)}, t.{tkey}, {lit(col.name)}, "
                f"{_silver_value(table, col)} IS NULL FROM {q(truth)} t "
                f"JOIN ({first}) v ON v.{key} = t.{tkey} WHERE {_differs(table, col)}"
            )
        compared += con.execute(
            f"SELECT count(*) FROM {q(truth)} t JOIN (SELECT DISTINCT {key} FROM {q(table.relation)}) v "
            f"ON v.{key} = t.{tkey}"
        ).fetchone()[0] * len(cols)
    row_kinds = ", ".join(lit(k) for k in catalogue.ROW_KINDS)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __outcome AS "
        "SELECT e.kind, CASE WHEN r.silver = 0 "
        "THEN (CASE WHEN r.quarantined THEN 'quarantined' ELSE 'dropped' END) "
        "WHEN e.row_kind THEN (CASE WHEN r.silver > 1 THEN 'remaining' ELSE 'fixed' END) "
        "WHEN d.key IS NOT NULL THEN (CASE WHEN d.nulled THEN 'nulled' ELSE 'remaining' END) "
        "ELSE 'fixed' END AS outcome "
        f'FROM (SELECT "table" AS tbl, key, "column" AS col, kind, FALSE AS row_kind FROM __ak '
        f"WHERE kind NOT IN ({row_kinds}) "
        f'UNION ALL SELECT "table", key, NULL, kind, TRUE FROM __dups) e '
        "JOIN __rows r ON r.tbl = e.tbl AND r.key = e.key "
        "LEFT JOIN __diff d ON d.tbl = e.tbl AND d.key = e.key AND d.col = e.col"
    )
    kinds = [
        KindScore(kind, n, fixed=fixed, nulled=nulled, remaining=remaining, quarantined=quar, dropped=dropped)
        for kind, n, fixed, nulled, remaining, quar, dropped in sorted(
            con.execute(
                "SELECT kind, count(*), count(*) FILTER (WHERE outcome = 'fixed'), "
                "count(*) FILTER (WHERE outcome = 'nulled'), count(*) FILTER (WHERE outcome = 'remaining'), "
                "count(*) FILTER (WHERE outcome = 'quarantined'), "
                "count(*) FILTER (WHERE outcome = 'dropped') FROM __outcome GROUP BY kind"
            ).fetchall(),
            key=lambda c: _kind_order(c[0]),
        )
    ]
    differing, damaged = con.execute(
        'SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM __ak a WHERE a."table" = d.tbl '
        'AND a.key = d.key AND a."column" = d.col)) FROM __diff d'
    ).fetchone()
    truth_rows, silver_rows, quar, missing = con.execute(
        "SELECT count(*), sum(silver), count(*) FILTER (WHERE silver = 0 AND quarantined), "
        "count(*) FILTER (WHERE silver = 0 AND NOT quarantined) FROM __rows"
    ).fetchone()
    totals = {
        "truth_rows": truth_rows,
        "silver_rows_matched": int(silver_rows or 0),
        "rows_quarantined": quar,
        "rows_dropped": missing,
        "cells_compared": compared,
        "cells_differing": differing,
        "cell_accuracy": round(1 - differing / compared, 6) if compared else None,
        "cells_damaged": damaged,  # differing cells without an injected error: a good value was changed
        "injected": sum(k.injected for k in kinds),
        "fixed": sum(k.fixed for k in kinds),
        "nulled": sum(k.nulled for k in kinds),
        "remaining": sum(k.remaining for k in kinds),
    }
    return Score("silver", kinds, [], totals)
