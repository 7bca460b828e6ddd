"""Downloads of a finished job's files: the zip holds exactly the lake's files, byte for byte, under their
lake paths; a job that has not finished offers none."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pyarrow.parquet as pq

from orchestrator.config import get_settings
from orchestrator.generation.spec import GenerationSpec
from orchestrator.service import execute_job, generate_job, launch_clean
from orchestrator.storage import open_lake
from orchestrator.ui_support import bundle_file, job_bundles
from tests.gen_helpers import stored_job


def _zipped(bundle) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle_file(bundle, get_settings()))) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def _lake_files(folders) -> dict[str, bytes]:
    lake = open_lake(get_settings())
    files = {}
    for folder in folders:
        for path in lake.list(folder):
            with lake.open_read(path) as handle:
                files[path] = handle.read()
    return files


def test_a_generated_job_downloads_its_raw_files_and_its_answer_key_as_stored(data_dir):
    generated = generate_job(GenerationSpec(rows=80, seed=3), "alice")
    raw, key = job_bundles(stored_job(generated.job_id))
    assert (raw.label, key.label) == ("Raw data", "Answer key and truth")

    files = _zipped(raw)
    assert files == _lake_files(raw.folders)
    manifest = json.loads(files[generated.manifest_path])
    for table in manifest["tables"].values():  # what the manifest vouches for is what arrives
        assert hashlib.sha256(files[table["raw_path"]]).hexdigest() == table["sha256"]
    assert not any(path.startswith("truth/") for path in files)  # raw never carries the truth

    truth = _zipped(key)
    assert truth == _lake_files(key.folders)
    answer_key = pq.read_table(io.BytesIO(truth[generated.answer_key_path]))
    assert answer_key.num_rows == generated.errors_injected


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
    silver = [p for p in files if p.startswith("silver/") and p.endswith(".parquet")]
    rows = sum(pq.read_metadata(io.BytesIO(files[p])).num_rows for p in silver if "/quarantine/" not in p)
    assert rows == cleaned.rows_out
