"""Reports of a run: self-contained HTML (plotly inlined once, opens offline), JSON, CSV and XLSX.

Samples never hold more than ``sample_rows`` rows. Values are data, never markup or formulas: escaped in HTML
(a product name holding ``<script>`` renders as text), stored as text in XLSX (a value starting with ``=`` is
no formula), and a CSV text cell a spreadsheet would run as a formula starts with ``'``. A report written to a
path appears whole or not at all.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import plotly.graph_objects as go
import plotly.io as pio
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from orchestrator.domain.rules import ERROR, WARNING
from orchestrator.errors import InvalidInput
from orchestrator.quality.compare import HEADINGS, Comparison
from orchestrator.quality.engine import check_sample_rows
from orchestrator.quality.model import DEFAULT_SAMPLE_ROWS, FAILED, QualityRun

FORMATS = ("json", "html", "csv", "xlsx")
SHEET_COLUMNS = (
    "section",
    "table",
    "name",
    "check",
    "severity",
    "status",
    "rows",
    "checked",
    "failed",
    "share",
    "present",
    "completeness",
    "distinct",
    "minimum",
    "maximum",
    "nulls",
)
SUMMARY_COLUMNS = ("rules", "rules_failing", "rules_skipped")  # of the summary rows, one per severity
CSV_COLUMNS = (*SHEET_COLUMNS, *SUMMARY_COLUMNS)
SCORE_COLUMNS = (
    "kind",
    "injected",
    "judgeable",
    "detected",
    "recall",
    "flagged",
    "correct_flags",
    "precision",
    "fixed",
    "nulled",
    "remaining",
    "quarantined",
    "dropped",
)
WORST_RULES = 15
# A spreadsheet runs a cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_MAX_CELL = 32_767  # characters Excel keeps in one cell


def report_dict(
    run: QualityRun, comparison: Comparison | None = None, sample_rows: int = DEFAULT_SAMPLE_ROWS
) -> dict:
    """The run's JSON with samples cut to ``sample_rows``, and the comparison if given."""
    data = run.to_dict()
    for rule in data["rules"]:
        rule["samples"] = rule["samples"][:sample_rows]
    data["sample_rows"] = min(sample_rows, run.sample_rows)
    data["comparison"] = comparison.to_dict() if comparison else None
    return data


def _summary_rows(data: dict) -> list[dict]:
    """One row per severity: the rules that ran, failed and were skipped, and the rows failing them."""
    return [
        {
            "section": "summary",
            "name": f"{severity} rules",
            "severity": severity,
            "failed": counts["failed_rows"],
            "rules": counts["rules"],
            "rules_failing": counts["failing"],
            "rules_skipped": counts["skipped"],
        }
        for severity, counts in data["summary"].items()
    ]


def _rule_rows(data: dict) -> list[dict]:
    rows = {t["table"]: t["rows"] for t in data["tables"]}
    return [
        {
            "section": "rule",
            "table": x["table"],
            "name": x["rule_id"],
            "check": x["check"],
            "severity": x["severity"],
            "status": x["status"],
            "rows": rows.get(x["table"]),
            "checked": x["checked"],
            "failed": x["failed"],
            "share": x["share"],
        }
        for x in data["rules"]
    ]


def _column_rows(data: dict) -> list[dict]:
    return [
        {
            "section": "column",
            "table": c["table"],
            "name": c["column"],
            "check": c["kind"],
            "rows": c["rows"],
            "present": c["present"],
            "completeness": c["completeness"],
            "distinct": c["distinct"],
            "minimum": c["minimum"],
            "maximum": c["maximum"],
            "nulls": c["nulls"],
        }
        for t in data["tables"]
        for c in t["columns"]
    ]


def _sample_rows(data: dict) -> list[dict]:
    return [
        {
            "rule_id": x["rule_id"],
            "table": x["table"],
            "line": s.get("line"),
            "key": s.get("key"),
            "values": json.dumps(
                {k: v for k, v in s.items() if k not in ("line", "key")}, ensure_ascii=False
            ),
        }
        for x in data["rules"]
        for s in x["samples"]
    ]


def _write_json(data: dict, out: IO[str]) -> None:
    json.dump(data, out, indent=2, ensure_ascii=False)


def _write_csv(data: dict, out: IO[str]) -> None:
    writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in (*_summary_rows(data), *_rule_rows(data), *_column_rows(data)):
        writer.writerow({k: csv_cell(v) for k, v in row.items()})


def csv_cell(value: object) -> object:
    """Text a spreadsheet would run as a formula gets a leading ``'``, so it opens as text; numbers stay."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def _xlsx_text(value: str) -> str:
    """Text as a cell can hold it: each control character openpyxl refuses becomes a visible escape (BEL is
    the four characters ``\\x07``), and text over Excel's cell limit is cut, ending with its full length."""
    text = ILLEGAL_CHARACTERS_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    if len(text) > XLSX_MAX_CELL:
        note = f"… [cut from {len(value):,} characters]"
        text = text[: XLSX_MAX_CELL - len(note)] + note
    return text


def _sheet(book: Workbook, title: str, header: Iterable[str], rows: Iterable[Iterable]) -> None:
    sheet = book.create_sheet(title)
    sheet.append(list(header))
    for row in rows:
        sheet.append([v if v is None or isinstance(v, int | float) else _xlsx_text(str(v)) for v in row])
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text, never a formula


def _write_xlsx(data: dict, out: IO[bytes]) -> None:
    book = Workbook()
    book.remove(book.active)
    summary = [
        (k, data[k])
        for k in (
            "run_id",
            "user",
            "job_id",
            "layer",
            "source_job_id",
            "created_at",
            "as_of",
            "seconds",
            "sample_rows",
            "schema_version",
        )
    ]
    for severity, counts in data["summary"].items():
        summary += [
            (f"{severity} rules run", counts["rules"]),
            (f"{severity} rules failing", counts["failing"]),
            (f"{severity} rules skipped", counts["skipped"]),
            (f"rows failing {severity} rules", counts["failed_rows"]),
        ]
    summary += [(f"rows: {t['table']}", t["rows"]) for t in data["tables"]]
    _sheet(book, "Summary", ("item", "value"), summary)
    _sheet(book, "Rules", SHEET_COLUMNS, ([r.get(c) for c in SHEET_COLUMNS] for r in _rule_rows(data)))
    _sheet(book, "Columns", SHEET_COLUMNS, ([r.get(c) for c in SHEET_COLUMNS] for r in _column_rows(data)))
    samples = _sample_rows(data)
    _sheet(
        book, "Samples", ("rule_id", "table", "line", "key", "values"), (list(s.values()) for s in samples)
    )
    if data["score"]:
        _sheet(
            book, "Score", SCORE_COLUMNS, ([k.get(c) for c in SCORE_COLUMNS] for k in data["score"]["kinds"])
        )
    if data["comparison"]:
        for title, part in (("Comparison", "rules"), ("Comparison columns", "columns")):
            rows = data["comparison"][part]
            fields = list(rows[0]) if rows else ["table"]
            _sheet(book, title, [HEADINGS.get(f, f) for f in fields], ([r[f] for f in fields] for r in rows))
    book.save(out)


def _table(header: Iterable[str], rows: Iterable[Iterable]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _Charts:
    """Plotly figures as HTML fragments; the library is inlined in the first one only."""

    def __init__(self) -> None:
        self._first = True

    def __call__(self, figure: go.Figure) -> str:
        bars = {y for trace in figure.data for y in trace.y or []}
        figure.update_layout(
            height=max(320, 24 * len(bars)),
            margin={"l": 260, "r": 20, "t": 40, "b": 40},
        )
        fragment = pio.to_html(figure, full_html=False, include_plotlyjs=self._first)
        self._first = False
        return fragment


_SEVERITY_TITLES = {ERROR: "Errors failing", WARNING: "Warnings failing"}
SEVERITY_COLOURS = {ERROR: "#c62828", WARNING: "#ef8f00"}


def _failing_section(severity: str, failing: list[dict], chart: _Charts) -> list[str]:
    """The failing rules of one severity, most rows failing first: a chart of the worst and a table."""
    parts = [f"<h2>{_SEVERITY_TITLES[severity]}</h2>"]
    if not failing:
        return [*parts, f"<p>No {severity} rule fails.</p>"]
    worst = failing[:WORST_RULES][::-1]
    bar = go.Bar(
        x=[x["failed"] for x in worst],
        y=[x["rule_id"] for x in worst],
        text=[f"{x['failed']:,} ({x['share']:.1%})" for x in worst],
        textposition="outside",
        cliponaxis=False,
        orientation="h",
        marker_color=SEVERITY_COLOURS[severity],
    )
    parts.append(chart(go.Figure(bar, layout_title_text=f"rows failing, {severity} rules")))
    rows = [(x["rule_id"], x["checked"], x["failed"], f"{x['share']:.2%}", x["description"]) for x in failing]
    parts.append(_table(("rule", "rows checked", "rows failing", "share", "description"), rows))
    return parts


def _write_html(data: dict, out: IO[str]) -> None:
    chart = _Charts()
    e = html.escape
    summary = data["summary"]
    order = list(summary)  # errors first
    failing = sorted(
        (x for x in data["rules"] if x["status"] == FAILED),
        key=lambda x: (order.index(x["severity"]), -x["failed"]),
    )
    parts = [
        f"<h1>Data quality: {e(data['job_id'])} ({e(data['layer'])})</h1>",
        "<h2>Summary</h2>",
        _table(
            ("user", "job", "layer", "source job", "run", "created", "as of", "tables"),
            [
                (
                    data["user"],
                    data["job_id"],
                    data["layer"],
                    data["source_job_id"],
                    data["run_id"],
                    data["created_at"],
                    data["as_of"],
                    len(data["tables"]),
                )
            ],
        ),
        _table(
            ("severity", "rules failing", "rows failing", "rules skipped"),
            [
                (
                    severity,
                    f"{counts['failing']:,} of {counts['rules']:,}",
                    f"{counts['failed_rows']:,}",
                    counts["skipped"],
                )
                for severity, counts in summary.items()
            ],
        ),
        _table(
            ("table", "rows", "exact duplicate rows", "near duplicate rows"),
            [
                (t["table"], t["rows"], t["exact_duplicate_rows"], t["near_duplicate_rows"])
                for t in data["tables"]
            ],
        ),
    ]
    for severity in summary:
        parts += _failing_section(severity, [x for x in failing if x["severity"] == severity], chart)
    score = data["score"]
    if score:
        parts.append(f"<h2>Score against the truth ({e(score['layer'])})</h2>")
        kinds = score["kinds"]
        if score["layer"] == "raw":
            parts.append(
                chart(
                    go.Figure(
                        [
                            go.Bar(
                                name="recall", x=[k["kind"] for k in kinds], y=[k["recall"] for k in kinds]
                            ),
                            go.Bar(
                                name="precision",
                                x=[k["kind"] for k in kinds],
                                y=[k["precision"] for k in kinds],
                            ),
                        ],
                        layout_title_text="detection per error kind",
                    )
                )
            )
        parts.append(_table(SCORE_COLUMNS, ([k.get(c) for c in SCORE_COLUMNS] for k in kinds)))
        parts.append(_table(("total", "value"), score["totals"].items()))
    parts.append("<h2>Columns</h2>")
    parts.append(
        _table(
            (
                "table",
                "column",
                "kind",
                "rows",
                "completeness",
                "a missing value is",
                "distinct",
                "min",
                "max",
                "top values",
            ),
            [
                (
                    c["table"],
                    c["column"],
                    c["kind"],
                    c["rows"],
                    f"{c['completeness']:.2%}",
                    c["nulls"],
                    c["distinct"],
                    c["minimum"],
                    c["maximum"],
                    ", ".join(f"{t['value']} ({t['count']})" for t in c["top"]),
                )
                for t in data["tables"]
                for c in t["columns"]
            ],
        )
    )
    parts.append(f"<h2>Failing samples (at most {data['sample_rows']} rows per rule; line is 0-based)</h2>")
    for x in failing:
        if x["samples"]:
            columns = [k for k in x["samples"][0] if k not in ("line", "key")]
            parts.append(f"<h3>{e(x['rule_id'])}</h3><p>{e(x['severity'])}: {e(x['description'])}</p>")
            parts.append(
                _table(
                    ("line", "key", *columns),
                    ([s.get("line"), s.get("key"), *(s.get(c) for c in columns)] for s in x["samples"]),
                )
            )
    comparison = data["comparison"]
    if comparison:
        a, b = comparison["run_a"], comparison["run_b"]
        parts.append(
            f"<h2>Before / after: {e(a['job_id'])} {e(a['layer'])} → {e(b['job_id'])} {e(b['layer'])}</h2>"
        )
        changed = [x for x in comparison["rules"] if x["failed_a"] or x["failed_b"]]
        parts.append(
            chart(
                go.Figure(
                    [
                        go.Bar(
                            name="before",
                            y=[x["rule_id"] for x in changed],
                            x=[x["failed_a"] for x in changed],
                            orientation="h",
                        ),
                        go.Bar(
                            name="after",
                            y=[x["rule_id"] for x in changed],
                            x=[x["failed_b"] for x in changed],
                            orientation="h",
                        ),
                    ],
                    layout_title_text="failing rows per rule",
                )
            )
        )
        parts.append(
            _table(
                (
                    "rule",
                    "severity",
                    "failing before",
                    "failing after",
                    "change",
                    "status before",
                    "status after",
                ),
                [
                    (
                        x["rule_id"],
                        x["severity"],
                        x["failed_a"],
                        x["failed_b"],
                        x["change"],
                        x["status_a"],
                        x["status_b"],
                    )
                    for x in changed
                ],
            )
        )
        parts.append(
            _table(
                (
                    "table",
                    "column",
                    "completeness before",
                    "completeness after",
                    "distinct before",
                    "distinct after",
                ),
                [
                    (
                        c["table"],
                        c["column"],
                        c["completeness_a"],
                        c["completeness_b"],
                        c["distinct_a"],
                        c["distinct_b"],
                    )
                    for c in comparison["columns"]
                ],
            )
        )
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}th{background:#f3f3f3}"
    )
    out.write(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Data quality {e(data['job_id'])}</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )


def write_report(
    run: QualityRun,
    format: str,
    target: str | Path | IO,
    comparison: Comparison | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> None:
    """Write a run (and optionally a comparison) as ``format`` to a file path or an open file/buffer."""
    if format not in FORMATS:
        raise InvalidInput("format", f"{format!r} is not a report format; choose from {', '.join(FORMATS)}")
    data = report_dict(run, comparison, check_sample_rows(sample_rows))
    if isinstance(target, str | Path):
        _write_file(data, format, Path(target))
        return
    if format != "xlsx" and isinstance(target, io.BufferedIOBase | io.RawIOBase):
        text = io.TextIOWrapper(target, encoding="utf-8", newline="")
        _WRITERS[format](data, text)
        text.flush()
        text.detach()  # the caller's buffer stays open
        return
    _WRITERS[format](data, target)


def _write_file(data: dict, format: str, path: Path) -> None:
    """Write into a new file beside ``path``, then rename it over ``path``: a failure leaves an earlier report
    whole, and no reader ever sees a partial one."""
    binary = format == "xlsx"
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(
            temp, "xb" if binary else "x", **({} if binary else {"encoding": "utf-8", "newline": ""})
        ) as out:
            _WRITERS[format](data, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


_WRITERS = {"json": _write_json, "csv": _write_csv, "xlsx": _write_xlsx, "html": _write_html}
