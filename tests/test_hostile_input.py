"""Hostile raw values (markup, spreadsheet formulas, control characters, NUL, 100,000-character text) stay
inert text through profiling, every report format, cleaning and the silver profile."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import openpyxl
import pytest

from orchestrator.quality import FORMATS, QualityRun, profile_job, write_report
from orchestrator.storage import LocalLake
from tests.test_quality_rules import shop_with, write_raw_job

USER = "alice"
LONG = "x" * 100_000
# Row i of every text column gets HOSTILE[i]; the first sorts below anything generated, so it is the
# column's minimum and reaches every report, the CSV and XLSX included.
HOSTILE = (
    "\t\x07tab, then a bell",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '=HYPERLINK("http://x","click")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\rcarriage return",
    "escape \x1b[31m red",
    "nul \x00 byte",
    LONG,
)
TAGS = ("<script>alert(1)", "<img src=x onerror=alert(1)>")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = r"-?[0-9]+\.[0-9]+(e[-+][0-9]+)?"
TABLES = ("customers", "sellers", "products", "orders", "order_items", "reviews")
XLSX_MAX_CELL = 32_767  # characters Excel keeps in one cell


def _report(run: QualityRun, format: str, path: Path, comparison=None) -> Path:
    path.mkdir(exist_ok=True)
    target = path / f"report.{format}"
    write_report(run, format, target, comparison)
    return target


def _csv_cells(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def _formulas(cells: list[str]) -> list[str]:
    """The cells a spreadsheet would run: starting like a formula, other than a number as Python writes it."""
    return [c for c in cells if c.startswith(FORMULA_STARTS) and not re.fullmatch(NUMBER, c)]


def _xlsx_cells(path: Path) -> list:
    book = openpyxl.load_workbook(path)
    return [cell for sheet in book for row in sheet.iter_rows() for cell in row if cell.value is not None]


def _column(path: Path, table: str, column: str) -> dict:
    """One column's row of the XLSX report's Columns sheet, as cells by header."""
    rows = list(openpyxl.load_workbook(path)["Columns"].iter_rows())
    header = [c.value for c in rows[0]]
    row = next(r for r in rows[1:] if (r[1].value, r[2].value) == (table, column))
    return dict(zip(header, row, strict=True))


# Hand-built raw: two customers whose last names are the column's minimum and maximum.


def _profiled(settings, job: str, first: str, second: str, **changes) -> QualityRun:
    shop = shop_with(customers={0: {"last_name": first}, 1: {"last_name": second}}, **changes)
    write_raw_job(LocalLake(settings.data_dir), USER, job, shop)
    return profile_job(USER, job, "raw", settings, save=False)


def test_csv_cells_starting_like_a_formula_are_quoted_and_numbers_stay_numbers(settings, tmp_path):
    run = _profiled(settings, "g-csv-1", HOSTILE[3], "@SUM(A1)", orders={0: {"discount_amount": -5.0}})
    target = _report(run, "csv", tmp_path)
    rows = {(r["table"], r["name"]): r for r in csv.DictReader(target.open(encoding="utf-8", newline=""))}
    last_name = rows[("customers", "last_name")]
    assert (last_name["minimum"], last_name["maximum"]) == (f"'{HOSTILE[3]}", "'@SUM(A1)")
    assert rows[("orders", "discount_amount")]["minimum"] == "-5.0"  # a number we wrote, not text
    assert not _formulas(_csv_cells(target))


def test_xlsx_keeps_formula_text_as_text_and_numbers_as_numbers(settings, tmp_path):
    run = _profiled(settings, "g-xlsx-1", HOSTILE[3], "@SUM(A1)", orders={0: {"discount_amount": -5.0}})
    target = _report(run, "xlsx", tmp_path)
    last_name = _column(target, "customers", "last_name")
    assert (last_name["minimum"].data_type, last_name["minimum"].value) == ("s", HOSTILE[3])
    assert (last_name["maximum"].data_type, last_name["maximum"].value) == ("s", "@SUM(A1)")
    discount = _column(target, "orders", "discount_amount")["minimum"]
    assert (discount.data_type, discount.value) == ("n", -5)
    assert not [c.coordinate for c in _xlsx_cells(target) if c.data_type == "f"]


def test_xlsx_shows_control_characters_as_escapes(settings, tmp_path):
    run = _profiled(settings, "g-xlsx-2", "Bell\x07 and nul\x00", "Escape\x1b")
    target = _report(run, "xlsx", tmp_path)
    last_name = _column(target, "customers", "last_name")
    assert (last_name["minimum"].value, last_name["maximum"].value) == (
        "Bell\\x07 and nul\\x00",
        "Escape\\x1b",
    )


def test_xlsx_cuts_text_longer_than_a_cell_holds_and_says_so(settings, tmp_path):
    run = _profiled(settings, "g-xlsx-3", "Berg", LONG)
    target = _report(run, "xlsx", tmp_path)
    cut = _column(target, "customers", "last_name")["maximum"].value
    assert len(cut) == XLSX_MAX_CELL and cut.startswith("x" * 32_000)
    assert cut.endswith("[cut from 100,000 characters]")


@pytest.mark.parametrize("format", ("json", "html", "csv"))
def test_a_report_that_fails_to_write_leaves_the_earlier_file_whole(settings, tmp_path, format):
    run = _profiled(settings, "g-keep-1", "Berg", "Brandt")
    target = _report(run, format, tmp_path / "reports")
    earlier = target.read_bytes()
    run.tables[0].columns[0].minimum = "\ud800"  # a lone surrogate: no UTF-8 encoding exists
    with pytest.raises(UnicodeEncodeError):
        write_report(run, format, target)
    assert target.read_bytes() == earlier
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary file left behind


@pytest.mark.parametrize("format", FORMATS)
def test_a_report_that_cannot_be_published_leaves_no_temporary_file(settings, tmp_path, format):
    run = _profiled(settings, "g-keep-2", "Berg", "Brandt")
    reports = tmp_path / "reports"
    (reports / "taken" / "inside").mkdir(parents=True)  # a folder holding a file cannot be replaced
    with pytest.raises(OSError):
        write_report(run, format, reports / "taken")
    assert [p.name for p in reports.iterdir()] == ["taken"]
