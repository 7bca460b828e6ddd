"""Hostile raw values (markup, spreadsheet formulas, control characters, NUL, 100,000-character text) stay
inert text through profiling, every report format, cleaning and the silver profile."""

from __future__ import annotations

import csv
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from orchestrator.auth import open_user_store
from orchestrator.auth.settings import COOKIE_KEY_ENV
from orchestrator.config import DATA_DIR_ENV, get_settings
from orchestrator.domain import shop as s
from orchestrator.generation.spec import GenerationSpec
from orchestrator.quality import FORMATS, QualityRun, compare, profile_job, write_report
from orchestrator.service import execute_job, generate_job, job_outputs, launch_clean
from orchestrator.storage import LocalLake, paths
from tests.test_app_pages import PASSWORD, signed_in
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


def _assert_inert(run: QualityRun, format: str, path: Path, comparison=None) -> str:
    """Write the report and check what a browser or spreadsheet would run is not there; its text back."""
    target = _report(run, format, path, comparison)
    if format == "json":
        assert json.loads(target.read_text(encoding="utf-8"))["run_id"] == run.run_id
    elif format == "html":
        page = target.read_text(encoding="utf-8")
        assert not [tag for tag in TAGS if tag in page]
    elif format == "csv":
        assert not _formulas(_csv_cells(target))
    else:
        cells = _xlsx_cells(target)
        assert not [c.coordinate for c in cells if c.data_type == "f"]
        assert max(len(str(c.value)) for c in cells) <= XLSX_MAX_CELL
    return "" if format == "xlsx" else target.read_text(encoding="utf-8")


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


# A generated job whose raw text columns were all rewritten with hostile values, then cleaned.


def _plant(lake: LocalLake, user: str, job_id: str) -> dict[str, list[str]]:
    """Rewrite raw so row i of every text column holds HOSTILE[i], and record the new checksums in the
    manifest (raw is written once by the product; this test plants data in its own lake)."""
    manifest_path = paths.raw_manifest(user, job_id)
    manifest = json.loads(lake.resolve(manifest_path).read_text(encoding="utf-8"))
    planted = {}
    for name, info in manifest["tables"].items():
        text = [c.name for c in s.TABLES[name].columns if c.type in s.STRING_TYPES]
        if not text:
            continue
        lines = lake.resolve(info["raw_path"]).read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines]
        for record, value in zip(records, HOSTILE, strict=False):
            record.update(dict.fromkeys(text, value))
        with lake.open_write(info["raw_path"], overwrite=True) as writer:
            writer.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode())
        info["sha256"], info["bytes"] = writer.result.sha256, writer.result.size
        planted[name] = text
    with lake.open_write(manifest_path, overwrite=True) as writer:
        writer.write(json.dumps(manifest, indent=2).encode())
    return planted


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The planted job, its stored raw profile, its cleaning with pandas and the silver profile; alice may
    log in to see them."""
    root = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DATA_DIR_ENV, str(root))
        patch.setenv("ORCHESTRATOR_SECRETS_FILE", str(root / "no-secrets.toml"))
        patch.delenv(COOKIE_KEY_ENV, raising=False)
        open_user_store().create_first_admin(USER, PASSWORD, PASSWORD)
        settings = get_settings()
        generated = generate_job(GenerationSpec(rows=30, seed=11, tables=TABLES), USER)
        planted = _plant(LocalLake(root), USER, generated.job_id)
        raw = profile_job(USER, generated.job_id, "raw", settings, sample_rows=20)
        cleaning = execute_job(launch_clean(USER, generated.job_id, engine="pandas").job.job_id)
        silver = profile_job(USER, cleaning.job_id, "silver", settings)
        yield {
            "generated": generated,
            "planted": planted,
            "raw": raw,
            "cleaning": cleaning,
            "outputs": job_outputs(cleaning, settings),
            "silver": silver,
        }


def test_the_raw_profile_reads_every_planted_value(hostile):
    columns = {(c.table, c.column): c for t in hostile["raw"].tables for c in t.columns}
    for table, names in hostile["planted"].items():
        for name in names:
            assert columns[table, name].minimum == HOSTILE[0], (table, name)
    status = hostile["raw"].rule("orders.status.in_set")  # 30 orders: every hostile value, byte for byte
    assert [sample["status"] for sample in status.samples[: len(HOSTILE)]] == list(HOSTILE)
    assert columns["orders", "status"].maximum == LONG


@pytest.mark.parametrize("format", FORMATS)
def test_every_report_of_the_raw_profile_is_inert(hostile, tmp_path, format):
    text = _assert_inert(hostile["raw"], format, tmp_path)
    if format == "json":
        columns = {(c["table"], c["column"]): c for t in json.loads(text)["tables"] for c in t["columns"]}
        assert (columns["orders", "status"]["minimum"], columns["orders", "status"]["maximum"]) == (
            HOSTILE[0],
            LONG,
        )
    if format == "html":
        assert all(html.escape(tag) in text for tag in TAGS)  # shown, as text
    if format == "csv":
        assert f"'{HOSTILE[0]}" in _csv_cells(tmp_path / "report.csv")


def test_the_xlsx_report_shows_the_planted_minimum_as_escaped_text(hostile, tmp_path):
    target = _report(hostile["raw"], "xlsx", tmp_path)
    minimum = _column(target, "customers", "last_name")["minimum"]
    assert (minimum.data_type, minimum.value) == ("s", "\t\\x07tab, then a bell")


def test_cleaning_with_pandas_accounts_for_every_planted_row(hostile):
    generated, outputs = hostile["generated"], hostile["outputs"]
    assert hostile["cleaning"].state == "succeeded" and hostile["cleaning"].engine == "pandas"
    for name, counts in outputs["tables"].items():
        assert counts["rows_in"] == generated.tables[name].rows, name
        assert (
            counts["rows_in"] == counts["rows_out"] + counts["quarantined"] + counts["duplicates_removed"]
        ), name


@pytest.mark.parametrize("format", FORMATS)
def test_every_report_of_the_silver_profile_is_inert(hostile, tmp_path, format):
    silver = hostile["silver"]
    assert {t.table for t in silver.tables} == set(TABLES)
    _assert_inert(silver, format, tmp_path, compare(hostile["raw"], silver))


def test_the_quality_page_shows_hostile_values_as_text(hostile):
    at = signed_in(USER, "pages/quality.py", job=hostile["generated"].job_id, layer="raw")
    next(s for s in at.selectbox if s.label == "Rule").select("orders.status.in_set").run()
    assert not at.exception
    samples = next(f.value for f in at.dataframe if {"line", "key", "status"} <= set(f.value.columns))
    assert samples["status"].tolist()[: len(HOSTILE)] == list(HOSTILE)
    shown = [e.value for e in (*at.markdown, *at.caption, *at.error, *at.info)]
    assert not [text for text in shown if "<" in text], shown  # no value reaches markdown
