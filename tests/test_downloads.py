"""Downloads of a finished job's files: the zip holds exactly the lake's files, byte for byte, under their
lake paths; a job that has not finished offers none."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile

import pyarrow.parquet as pq

from orchestrator.config import get_settings
from orchestrator.generation.spec import GenerationSpec
from orchestrator.service import execute_job, generate_job, launch_clean
from orchestrator.storage import open_lake, paths
from orchestrator.ui_support import bundle_file, job_bundles
from tests.gen_helpers import stored_job


def _zipped(bundle, as_csv: bool = False) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle_file(bundle, get_settings(), as_csv))) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def _lake_files(folders) -> dict[str, bytes]:
    """The lake's files of a bundle, by the short name each has in the zip."""
    lake = open_lake(get_settings())
    files = {}
    for folder, prefix in folders:
        for path in lake.list(folder):
            with lake.open_read(path) as handle:
                files[prefix + path[len(folder) + 1 :]] = handle.read()
    return files


def test_a_generated_job_downloads_its_raw_files_and_its_answer_key_as_stored(data_dir):
    generated = generate_job(GenerationSpec(rows=80, seed=3), "alice")
    raw, key = job_bundles(stored_job(generated.job_id))
    assert (raw.label, key.label) == ("Raw data", "Answer key and truth")

    files = _zipped(raw)
    assert files == _lake_files(raw.folders)
    assert "orders.jsonl" in files and "manifest.json" in files  # short names, not the lake's paths
    manifest = json.loads(files["manifest.json"])
    for name, table in manifest["tables"].items():  # what the manifest vouches for is what arrives
        assert hashlib.sha256(files[f"{name}.jsonl"]).hexdigest() == table["sha256"]
    assert "answer_key.parquet" not in files  # raw never carries the truth

    truth = _zipped(key)
    assert truth == _lake_files(key.folders)
    answer_key = pq.read_table(io.BytesIO(truth["answer_key.parquet"]))
    assert answer_key.num_rows == generated.errors_injected


def test_a_job_downloads_as_csv_that_a_spreadsheet_opens_as_text(data_dir):
    """Every table arrives as CSV with its rows; a raw value that would run as a formula starts with '."""
    generated = generate_job(GenerationSpec(rows=40, seed=5, tables=("customers", "orders")), "alice")
    raw, key = job_bundles(stored_job(generated.job_id))
    lake = open_lake(get_settings())
    planted = lake.root / paths.raw_table("alice", generated.job_id, "customers")
    lines = planted.read_text().splitlines()
    first = json.loads(lines[0])
    first["last_name"] = '=HYPERLINK("http://x","y")'
    planted.chmod(0o600)
    planted.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")

    files = _zipped(raw, as_csv=True)
    assert {"customers.csv", "orders.csv", "manifest.json", "contract.yaml"} <= set(files)
    customers = list(csv.DictReader(io.StringIO(files["customers.csv"].decode())))
    assert len(customers) == len(lines)
    assert customers[0]["last_name"] == "'" + first["last_name"]
    truth = _zipped(key, as_csv=True)
    answer_key = list(csv.DictReader(io.StringIO(truth["answer_key.csv"].decode())))
    assert len(answer_key) == generated.errors_injected


def test_a_cleaning_job_downloads_silver_quarantine_and_gold_and_an_unfinished_one_nothing(data_dir):
    generated = generate_job(GenerationSpec(rows=80, seed=4), "alice")
    launched = launch_clean("alice", generated.job_id)
    assert job_bundles(launched.job) == []  # queued: nothing written yet
    cleaned = execute_job(launched.job.job_id)
    [bundle] = job_bundles(cleaned)
    files = _zipped(bundle)
    assert files == _lake_files(bundle.folders)
    groups = {path.split("/")[0] for path in files}
    assert groups == {"silver", "gold"}
    assert any("/quarantine/" in path for path in files)
    assert "silver/orders.parquet" in files and "silver/quarantine/orders.parquet" in files
    silver = [p for p in files if p.startswith("silver/") and p.endswith(".parquet")]
    rows = sum(pq.read_metadata(io.BytesIO(files[p])).num_rows for p in silver if "/quarantine/" not in p)
    assert rows == cleaned.rows_out
