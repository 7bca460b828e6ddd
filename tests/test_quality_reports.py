"""Reports open and hold the JSON's numbers; values are escaped; samples are capped; the command line."""

from __future__ import annotations

import csv
import html
import io
import json

import openpyxl
import pytest

from orchestrator.cli import main
from orchestrator.quality import QualityRun, compare, profile_job, write_report
from orchestrator.storage import LocalLake
from tests.test_quality_rules import shop_with, write_raw_job

JOB = "g-report-1"
NASTY = "<script>alert(1)</script>"


@pytest.fixture
def run(settings):
    shop = shop_with(
        products={0: {"name": NASTY}},
        customers={0: {"segment": "=1+1"}, 1: {"segment": "gold", "city": None}},
        orders={0: {"total_amount": "N/A"}},
    )
    write_raw_job(LocalLake(settings.data_dir), "alice", JOB, shop)
    return profile_job("alice", JOB, "raw", settings, sample_rows=10)


def test_json_report_is_the_versioned_run_with_capped_samples(run, tmp_path):
    write_report(run, "json", tmp_path / "r.json", sample_rows=1)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["schema_version"] == 3
    assert data["sample_rows"] == 1
    segment = next(x for x in data["rules"] if x["rule_id"] == "customers.segment.in_set")
    assert (segment["failed"], len(segment["samples"])) == (2, 1)


def test_json_report_counts_errors_apart_from_warnings(run, tmp_path):
    write_report(run, "json", tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    errors = [x for x in data["rules"] if x["severity"] == "error" and x["status"] != "skipped"]
    assert data["summary"]["error"] == {
        "rules": len(errors),
        "failing": 3,  # the product name, the segment (two rows), the total
        "skipped": sum(x["severity"] == "error" and x["status"] == "skipped" for x in data["rules"]),
        "failed_rows": sum(x["failed"] for x in errors),
    }
    assert (data["summary"]["warning"]["failing"], data["summary"]["warning"]["failed_rows"]) == (1, 1)
    nulls = {(c["table"], c["column"]): c["nulls"] for t in data["tables"] for c in t["columns"]}
    assert nulls["customers", "customer_id"] == "error"  # a row without its key is unusable
    assert nulls["customers", "city"] == "warning"  # incomplete
    assert nulls["orders", "coupon_id"] == "allowed"  # most orders have no coupon, by design


def test_a_run_stored_under_the_previous_schema_reads_back_with_the_new_fields(run):
    stored = run.to_dict()
    del stored["summary"]
    for table in stored["tables"]:
        for column in table["columns"]:
            del column["nulls"]
    stored["schema_version"] = 2
    read = QualityRun.from_dict(json.loads(json.dumps(stored)))
    assert read == run
    assert read.to_dict()["summary"] == run.to_dict()["summary"]


def test_csv_has_one_row_per_rule_and_column_with_the_json_numbers(run):
    buffer = io.StringIO()
    write_report(run, "csv", buffer)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert len(rows) == 2 + len(run.rules) + sum(len(t.columns) for t in run.tables)
    by_name = {r["name"]: r for r in rows}
    assert (
        by_name["products.name.canonical_text"]["failed"]
        == str(run.rule("products.name.canonical_text").failed)
        == "1"
    )
    assert by_name["customers.city.not_null"]["severity"] == "warning"
    assert by_name["total_amount"]["completeness"] == "1.0"
    fields = ("section", "name", "severity", "rules_failing", "failed")
    assert [tuple(r[f] for f in fields) for r in rows[:2]] == [
        ("summary", "error rules", "error", "3", "4"),  # rules failing, and their failing rows
        ("summary", "warning rules", "warning", "1", "1"),
    ]


def test_xlsx_has_a_sheet_per_section_and_keeps_text_as_text(run, tmp_path):
    write_report(run, "xlsx", tmp_path / "r.xlsx")
    book = openpyxl.load_workbook(tmp_path / "r.xlsx")
    assert book.sheetnames == ["Summary", "Rules", "Columns", "Samples"]
    rules = list(book["Rules"].iter_rows(values_only=True))
    header = rules[0]
    row = next(r for r in rules if r[header.index("name")] == "customers.segment.in_set")
    assert (row[header.index("failed")], row[header.index("severity")]) == (2, "error")
    samples = [r[4] for r in book["Samples"].iter_rows(min_row=2, values_only=True)]
    assert any('"=1+1"' in s for s in samples)  # stored as text, not as a formula
    summary = dict(book["Summary"].iter_rows(min_row=2, values_only=True))
    assert (summary["error rules failing"], summary["warning rules failing"]) == (3, 1)
    assert (summary["rows failing error rules"], summary["rows failing warning rules"]) == (4, 1)


def test_xlsx_comparison_sheets_are_headed_before_and_after(settings, run, tmp_path):
    before = profile_job("alice", JOB, "raw", settings, save=False)
    write_report(run, "xlsx", tmp_path / "r.xlsx", comparison=compare(before, run))
    book = openpyxl.load_workbook(tmp_path / "r.xlsx")
    rules = [c.value for c in book["Comparison"][1]]
    assert {"rule", "severity", "failing before", "failing after", "status before", "share after"} <= set(
        rules
    )
    columns = [c.value for c in book["Comparison columns"][1]]
    assert {"completeness before", "completeness after", "distinct before", "distinct after"} <= set(columns)
    assert not [h for h in rules + columns if h.endswith(("_a", "_b"))]


def test_html_report_is_self_contained_and_escapes_values(settings, run, tmp_path):
    before = profile_job("alice", JOB, "raw", settings, sample_rows=2, save=False)
    write_report(run, "html", tmp_path / "r.html", comparison=compare(before, run), sample_rows=1)
    page = (tmp_path / "r.html").read_text()
    assert NASTY not in page
    assert html.escape(NASTY) in page
    assert page.count("plotly.js v") == 1  # the library is inlined once, no CDN needed
    assert "<script src=" not in page
    assert "customers.segment.in_set" in page and "Before / after" in page
    samples = page.split("<h3>customers.segment.in_set</h3>")[1].split("</table>")[0]
    assert samples.count("<tr>") == 2  # header and one of the two failing rows


def test_cli_prints_json_and_writes_files(settings, run, capsys, tmp_path):
    assert main(["quality", JOB, "--user", "alice", "--layer", "raw"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["job_id"] == JOB and data["user"] == "alice"
    assert (
        main(["quality", JOB, "--user", "alice", "--format", "xlsx", "-o", str(tmp_path / "out.xlsx")]) == 0
    )
    assert openpyxl.load_workbook(tmp_path / "out.xlsx")["Rules"].max_row == len(run.rules) + 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["quality", "g-missing-1", "--user", "alice"], 1, "job g-missing-1 of user alice has no raw data"),
        (["quality", "g-missing-1"], 1, "job g-missing-1 does not exist"),  # unknown to the job store
        (["quality", "g-missing-1", "--user", "alice"], 1, "job g-missing-1 of user alice has no raw data"),
        (
            ["quality", JOB, "--user", "alice", "--layer", "silver"],
            1,
            f"job {JOB} of user alice has no silver",
        ),
        (["quality", JOB, "--user", "alice", "--format", "xlsx"], 2, "--output: an xlsx report is binary"),
        (["quality", JOB, "--user", "alice", "--samples", "500"], 2, "--samples: must be a whole number"),
    ],
)
def test_cli_errors_are_clear_and_without_traceback(settings, run, capsys, args, code, message):
    assert main(args) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_names_the_line_of_a_malformed_file(settings, capsys):
    write_raw_job(
        LocalLake(settings.data_dir), "alice", "g-broken-1", {"orders": b'{"order_id": 1}\n{"order_id"\n'}
    )
    assert main(["quality", "g-broken-1", "--user", "alice"]) == 1
    assert "raw/alice/g-broken-1/orders.jsonl, line 2: not valid JSON" in capsys.readouterr().err
