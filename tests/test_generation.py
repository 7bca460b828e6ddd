"""The generation engine: related tables, every error kind at its rate, an exact answer key, determinism."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from orchestrator.cli import main
from orchestrator.config import get_settings
from orchestrator.domain import shop as s
from orchestrator.errors import AlreadyExists, InvalidInput
from orchestrator.generation import catalogue, pools
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs.store import JobCancelled, JobStore
from orchestrator.service import (
    GENERATION_STOPPED,
    end_lost_generations,
    execute_job,
    generate_in_background,
    generate_job,
    queue_generation,
    run_generation,
)
from orchestrator.storage import LocalLake
from tests.gen_helpers import assert_answer_key_reproduces_raw, raw_records, stored_job, truth_records

ROWS = 4000


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory):
    """One default data set (error rate 0.3) shared by the read-only tests of this module."""
    root = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ORCHESTRATOR_DATA_DIR", str(root))
        result = generate(GenerationSpec(rows=ROWS, seed=11, chunk_rows=1500), "alice")
    return root, result


def _sql(root: Path, result, query: str):
    con = duckdb.connect()
    for name, table in result.tables.items():
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{root / table.truth_path}')")
    return con.execute(query).fetchall()


def test_every_table_is_generated_with_scaled_row_counts(job):
    root, result = job
    assert set(result.tables) == set(s.TABLE_NAMES)
    assert result.tables["orders"].truth_rows == ROWS
    assert result.tables["customers"].truth_rows == ROWS // 4
    assert result.tables["products"].truth_rows == ROWS // 20
    items = result.tables["order_items"].truth_rows
    assert ROWS < items < 5 * ROWS
    assert result.tables["events"].truth_rows > 4 * ROWS
    for table in result.tables.values():
        assert (root / table.raw_path).stat().st_size == table.bytes
        assert table.rows >= table.truth_rows


@pytest.mark.parametrize(
    ("child", "column", "parent", "key"),
    [
        ("orders", "customer_id", "customers", "customer_id"),
        ("orders", "coupon_id", "coupons", "coupon_id"),
        ("order_items", "order_id", "orders", "order_id"),
        ("order_items", "product_id", "products", "product_id"),
        ("products", "seller_id", "sellers", "seller_id"),
        ("inventory", "product_id", "products", "product_id"),
        ("payments", "order_id", "orders", "order_id"),
        ("shipments", "order_id", "orders", "order_id"),
        ("returns", "order_item_id", "order_items", "item_id"),
        ("reviews", "customer_id", "customers", "customer_id"),
        ("reviews", "product_id", "products", "product_id"),
        ("events", "product_id", "products", "product_id"),
    ],
)
def test_clean_truth_keys_are_consistent(job, child, column, parent, key):
    root, result = job
    orphans = _sql(
        root,
        result,
        f"SELECT count(*) FROM {child} c WHERE c.{column} IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.{key} = c.{column})",
    )
    assert orphans == [(0,)]


def test_clean_truth_looks_like_a_shop(job):
    root, result = job
    checks = {
        "order total = sum of items": "SELECT count(*) FROM orders o "
        "JOIN (SELECT order_id, round(sum(line_total), 2) t "
        "FROM order_items GROUP BY 1) i USING (order_id) WHERE abs(o.total_amount - i.t) > 0.001",
        "line total = quantity x price": "SELECT count(*) FROM order_items "
        "WHERE abs(line_total - quantity * unit_price) > 0.001",
        "order after signup": "SELECT count(*) FROM orders JOIN customers USING (customer_id) "
        "WHERE order_ts < signup_at",
        "shipped after ordered": "SELECT count(*) FROM shipments JOIN orders USING (order_id) "
        "WHERE shipped_at <= order_ts",
        "delivered after shipped": "SELECT count(*) FROM shipments WHERE delivered_at <= shipped_at",
        "review after delivery": "SELECT count(*) FROM reviews r JOIN shipments s USING (order_id) "
        "WHERE s.delivered_at IS NULL OR r.created_at <= s.delivered_at",
        "payment = total - discount": "SELECT count(*) FROM payments p JOIN orders o USING (order_id) "
        "WHERE abs(p.amount - (o.total_amount - o.discount_amount)) > 0.001",
        "unique emails": "SELECT count(*) - count(DISTINCT email) FROM customers",
    }
    for label, query in checks.items():
        assert _sql(root, result, query) == [(0,)], label
    # Skewed popularity: the top 10% of products take far more than 10% of the items.
    share = _sql(
        root,
        result,
        "WITH c AS (SELECT product_id, count(*) n FROM order_items GROUP BY 1), "
        "r AS (SELECT n, row_number() OVER (ORDER BY n DESC) rk, count(*) OVER () total FROM c) "
        "SELECT sum(n) FILTER (WHERE rk <= total / 10) / sum(n) FROM r",
    )[0][0]
    assert share > 0.3
    # Seasonal: December sells more orders per day than February; evenings more than the small hours.
    months = dict(_sql(root, result, "SELECT month(order_ts), count(*) FROM orders GROUP BY 1"))
    assert months[12] / 31 > months[2] / 29
    hours = dict(_sql(root, result, "SELECT hour(order_ts), count(*) FROM orders GROUP BY 1"))
    assert hours[20] > 3 * hours[3]


def test_customer_name_email_phone_and_country_agree(job):
    root, result = job
    customers = truth_records(root, result.tables["customers"].truth_path, "customers")
    codes = {"US": "+1", "GB": "+44", "DE": "+49", "FR": "+33", "ES": "+34", "IT": "+39", "NL": "+31"}
    from orchestrator.generation.pools import ascii_slug

    for row in customers:
        local = row["email"].split("@")[0]
        assert local == f"{ascii_slug(row['first_name'])}.{ascii_slug(row['last_name'])}{row['customer_id']}"
        assert row["phone"].startswith(codes[row["country"]])
    assert len({row["country"] for row in customers}) == len(codes)


def test_every_error_kind_is_injected_near_its_rate_and_really_changes_the_value(job):
    root, result = job
    key = pq.read_table(root / result.answer_key_path).to_pylist()
    by_kind = defaultdict(int)
    for entry in key:
        by_kind[entry["kind"]] += 1
        if entry["kind"] != "exact_duplicate":
            assert entry["clean"] != entry["dirty"], entry
    assert set(by_kind) == set(catalogue.receivable(s.CONTRACT))

    manifest = json.loads((root / result.manifest_path).read_text())
    spec = GenerationSpec(rows=ROWS, seed=11)
    for table_name, columns in manifest["error_rates"].items():
        table = s.TABLES[table_name]
        for column_name, kinds in columns.items():
            if column_name == "_row" or table.column(column_name).nullable:
                continue
            for kind, achieved in kinds.items():
                eligible = result.tables[table_name].truth_rows
                expected = spec.rate(table_name, kind)
                sigma = (expected * (1 - expected) / eligible) ** 0.5
                # typo and case can find no change for a few values; everything else always changes
                assert abs(achieved["rate"] - expected) <= 5 * sigma + 0.002, (table_name, column_name, kind)


def test_applying_the_answer_key_to_the_truth_reproduces_raw(job):
    root, result = job
    assert_answer_key_reproduces_raw(root, result)


def test_dirty_values_are_kept_exactly_as_generated(job):
    root, result = job
    key = pq.read_table(root / result.answer_key_path).to_pylist()
    raw = raw_records(root, result.tables["order_items"].raw_path)
    wrong = [e for e in key if e["table"] == "order_items" and e["kind"] == "wrong_type"]
    assert wrong
    for entry in wrong:
        value = raw[entry["line"]][entry["column"]]
        assert isinstance(value, str) and json.dumps(value) == entry["dirty"]


def test_same_seed_gives_identical_raw_files_whatever_the_chunk_size(data_dir):
    small = generate(GenerationSpec(rows=900, seed=5, chunk_rows=128), "alice")
    large = generate(GenerationSpec(rows=900, seed=5, chunk_rows=100_000), "alice")
    assert {t: r.sha256 for t, r in small.tables.items()} == {t: r.sha256 for t, r in large.tables.items()}
    other = generate(GenerationSpec(rows=900, seed=6), "alice")
    assert other.tables["orders"].sha256 != small.tables["orders"].sha256


def test_more_rows_do_not_change_the_first_rows(data_dir):
    fewer = generate(GenerationSpec(rows=800, seed=9, chunk_rows=300), "alice")
    more = generate(GenerationSpec(rows=2000, seed=9, chunk_rows=700), "alice")
    for name in s.TABLE_NAMES:
        head = (data_dir / fewer.tables[name].raw_path).read_bytes()
        full = (data_dir / more.tables[name].raw_path).read_bytes()
        assert head and full.startswith(head), name


def test_error_rate_zero_writes_the_truth_unchanged(data_dir):
    result = generate(GenerationSpec(rows=500, seed=2, error_rate=0), "alice")
    assert result.errors_injected == 0
    for name, table in result.tables.items():
        assert raw_records(data_dir, table.raw_path) == truth_records(data_dir, table.truth_path, name)


def test_kind_and_table_overrides(data_dir):
    result = generate(
        GenerationSpec(
            rows=2000, seed=3, tables=("orders",), kind_rates={"missing": 0.2}, table_rates={"orders": 0}
        ),
        "alice",
    )
    rates = json.loads((data_dir / result.manifest_path).read_text())["error_rates"]["orders"]
    assert {kind for column in rates.values() for kind in column} == {"missing"}
    assert 0.17 < rates["status"]["missing"]["rate"] < 0.23


def test_manifest_records_spec_versions_and_checksums(data_dir):
    result = generate(GenerationSpec(rows=300, seed=1, tables=("customers", "orders")), "alice")
    manifest = json.loads((data_dir / result.manifest_path).read_text())
    assert manifest["spec"]["seed"] == 1 and manifest["spec"]["tables"] == ["customers", "orders"]
    assert {"faker", "numpy", "pyarrow", "python"} <= set(manifest["versions"])
    for name, table in manifest["tables"].items():
        digest = hashlib.sha256((data_dir / table["raw_path"]).read_bytes()).hexdigest()
        assert digest == table["sha256"], name


def test_raw_is_written_once(data_dir):
    first = generate(GenerationSpec(rows=200, seed=1, tables=("orders",)), "alice", job_id="g-fixed-1")
    before = (data_dir / first.tables["orders"].raw_path).read_bytes()
    with pytest.raises(AlreadyExists):
        generate(GenerationSpec(rows=300, seed=2, tables=("orders",)), "alice", job_id="g-fixed-1")
    assert (data_dir / first.tables["orders"].raw_path).read_bytes() == before
    assert not list(data_dir.rglob("*.tmp"))


def test_a_failed_generation_leaves_nothing_behind(data_dir, monkeypatch):
    from orchestrator.generation import generator

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(generator.jsonfmt, "to_bytes", broken)
    with pytest.raises(RuntimeError):
        generate(GenerationSpec(rows=300, seed=1), "alice", job_id="g-broken-1")
    assert not (data_dir / "raw" / "alice" / "g-broken-1").exists()
    assert not (data_dir / "truth" / "alice" / "g-broken-1").exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rows": -5}, "rows"),
        ({"rows": 0}, "rows"),
        ({"rows": 10, "error_rate": 1.5}, "error_rate"),
        ({"rows": 10, "tables": ("orders", "carts")}, "tables"),
        ({"rows": 10, "kind_rates": {"smudge": 0.1}}, "kind_rates"),
        ({"rows": 10, "kind_rates": {"missing": 0.9, "case": 0.9}}, "kind_rates"),
        ({"rows": 10, "locales": ("xx_XX",)}, "locales"),
    ],
)
def test_bad_specs_name_the_field(kwargs, field):
    with pytest.raises(InvalidInput) as err:
        GenerationSpec(**kwargs)
    assert err.value.field == field


@pytest.mark.parametrize("user", ["../evil", "/abs", "Alice", "a/b", ""])
def test_user_names_cannot_escape_the_lake(data_dir, user):
    with pytest.raises(InvalidInput):
        generate(GenerationSpec(rows=10), user)
    assert not (data_dir / "raw").exists()
    assert get_settings().data_dir == data_dir.resolve()


def test_the_shipped_value_pools_are_what_faker_builds_in_any_process(data_dir, tmp_path):
    """Pools do not depend on the seed: those of the pinned Faker ship with the workbench, and a new seed
    builds nothing. With another Faker they are built on first use and cached, and for the same Faker that
    build is the shipped pools exactly, whatever Python's hash seed (Faker's it_IT cities come from a set,
    whose order changes from one process to the next), so a seed gives the same bytes either way."""
    spec = GenerationSpec(rows=300, seed=12345)
    shipped = generate(spec, "alice")
    assert not (data_dir / "cache").exists()  # nothing was built for a new seed
    script = (
        "import json, sys; from pathlib import Path; from orchestrator.generation import pools; "
        "from orchestrator.generation.generator import generate; "
        "from orchestrator.generation.spec import GenerationSpec; "
        "pools.SHIPPED = Path(sys.argv[1]); "  # a Faker the workbench ships no pools for
        f"result = generate(GenerationSpec(rows={spec.rows}, seed={spec.seed}), 'alice'); "
        "json.dump({t: r.sha256 for t, r in result.tables.items()}, sys.stdout)"
    )
    other = tmp_path / "other"
    built = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "no-pools")],
        env={**os.environ, "PYTHONHASHSEED": "2", "ORCHESTRATOR_DATA_DIR": str(other)},
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(built.stdout) == {t: r.sha256 for t, r in shipped.tables.items()}
    cached = {p.name: json.loads(p.read_text()) for p in (other / "cache" / "pools").glob("*.json")}
    assert set(cached) == set(pools.pool_files().values())
    for name in cached:
        assert cached[name] == json.loads((pools.SHIPPED / name).read_text()), name
    assert cached[pools.pool_files()["it_IT"]]["city"]


def _the_job_and_its_events(user: str):
    """The user's one job and the notifications waiting for them."""
    store = JobStore.default()
    try:
        [job] = store.list_jobs(user)
        return job, store.list_unseen(user)
    finally:
        store.close()


def test_a_generation_stopped_mid_way_is_cancelled_not_failed_and_leaves_nothing(data_dir):
    """A stopped process raises SystemExit (from the signal handler) or KeyboardInterrupt mid-way."""

    class ProcessStopped(BaseException):  # both are BaseExceptions, not errors
        pass

    def stop(done: float, message: str) -> None:
        if done > 0:
            raise ProcessStopped

    with pytest.raises(ProcessStopped):
        generate_job(GenerationSpec(rows=3000, seed=1, chunk_rows=500), "alice", progress=stop)
    job, events = _the_job_and_its_events("alice")
    assert (job.state, job.error) == ("cancelled", GENERATION_STOPPED)
    assert events == []  # nothing failed, so no "Generation failed" toast
    assert not (data_dir / "raw" / "alice" / job.job_id).exists()
    assert not (data_dir / "truth" / "alice" / job.job_id).exists()


def test_a_generation_cancelled_while_it_runs_stops_at_its_next_chunk_and_keeps_nothing(data_dir):
    calls = []

    def cancel_after_a_chunk(done: float, message: str) -> None:
        calls.append(done)
        if done > 0 and len(calls) == 2:  # the owner presses Cancel on the Jobs page, in another session
            other = JobStore.default()
            try:
                [running] = other.list_jobs("alice")
                other.cancel(running.job_id, user="alice")
            finally:
                other.close()

    with pytest.raises(JobCancelled):
        spec = GenerationSpec(rows=3000, seed=1, chunk_rows=500)
        generate_job(spec, "alice", progress=cancel_after_a_chunk)
    assert len(calls) == 2  # no chunk after the cancel
    job, events = _the_job_and_its_events("alice")
    assert job.state == "cancelled" and events == []
    assert not (data_dir / "raw" / "alice" / job.job_id).exists()
    assert not (data_dir / "truth" / "alice" / job.job_id).exists()


def test_a_generation_runs_once_however_often_a_worker_is_started_for_it(data_dir):
    job = queue_generation(GenerationSpec(rows=600, seed=3, chunk_rows=200), "alice")
    second = []

    def another_worker(done: float, message: str) -> None:
        if not second:  # a second worker process for the same job, while the first generates
            second.append(execute_job(job.job_id))

    run_generation(job.job_id, progress=another_worker)
    assert (second[0].state, second[0].attempts) == ("running", 1)  # it left the job to the first
    done = stored_job(job.job_id)
    assert (done.state, done.attempts, done.progress, done.progress_text) == (
        "succeeded",
        1,
        1.0,
        "orders: 600 of 600",
    )
    assert execute_job(job.job_id) == done  # and once it has ended, a late worker leaves it as it is


def _worker_generating(job_id: str) -> subprocess.Popen:
    """A worker process for the generation (as the Generate page starts it), once it has told progress."""
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "worker", "--job", job_id],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (running := stored_job(job_id)).progress:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    assert running.state == "running" and running.progress_text.startswith("customers: ")
    return process


def test_a_generation_in_a_worker_process_tells_its_progress_and_a_stopped_worker_cancels_it(data_dir):
    job = queue_generation(GenerationSpec(rows=200_000, seed=4, chunk_rows=2_000), "alice")
    process = _worker_generating(job.job_id)
    process.send_signal(signal.SIGTERM)  # as make run stops its processes
    out, err = process.communicate(timeout=60)
    assert (process.returncode, out, err) == (0, "", "")  # quietly
    stopped = stored_job(job.job_id)
    assert (stopped.state, stopped.error) == ("cancelled", GENERATION_STOPPED)
    assert not (data_dir / "raw" / "alice" / job.job_id).exists()
    assert not (data_dir / "truth" / "alice" / job.job_id).exists()


def test_a_generation_whose_worker_was_killed_is_failed_and_what_it_wrote_removed(data_dir):
    job = queue_generation(GenerationSpec(rows=200_000, seed=5, chunk_rows=2_000), "alice")
    process = _worker_generating(job.job_id)
    process.kill()  # no chance to clean up, as when its machine restarts
    process.communicate(timeout=60)
    assert stored_job(job.job_id).state == "running"
    assert list((data_dir / "raw" / "alice" / job.job_id).iterdir())  # the files it was writing
    [ended] = end_lost_generations(silent_seconds=0)  # the scheduler's sweep, not waiting 10 minutes
    assert (ended.job_id, ended.state, ended.error.split(" (")[0]) == (
        job.job_id,
        "failed",
        "no worker process finished it",
    )
    assert stored_job(job.job_id) == ended
    assert not (data_dir / "raw" / "alice" / job.job_id).exists()
    assert not (data_dir / "truth" / "alice" / job.job_id).exists()
    _, events = _the_job_and_its_events("alice")
    assert [(e.kind, e.message) for e in events] == [("Generation failed", f"{job.job_id}: {ended.error}")]


def test_a_generation_started_in_the_background_runs_whichever_folder_the_workbench_started_in(
    data_dir, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # as `streamlit run /path/to/app.py` from another folder
    job = generate_in_background(GenerationSpec(rows=30, seed=6), "alice")
    deadline = time.monotonic() + 90
    while (done := stored_job(job.job_id)).state in ("queued", "running"):
        assert time.monotonic() < deadline, done
        time.sleep(0.1)
    assert done.state == "succeeded", done.error
    assert (data_dir / "raw" / "alice" / job.job_id / "manifest.json").is_file()


def test_a_generation_over_the_users_limit_exits_non_zero_and_writes_nothing(data_dir, monkeypatch, capsys):
    monkeypatch.setenv("ORCHESTRATOR_MAX_ACTIVE_GENERATIONS", "1")
    running = queue_generation(GenerationSpec(rows=100), "alice")  # from the Generate page, say
    assert main(["generate", "--user", "alice", "--rows", "50", "--json"]) == 1
    assert capsys.readouterr().err == (
        f"error: alice has 1 generation queued or running ({running.job_id}), as many as one user may have "
        "at once; wait for one to finish, or cancel one on the Jobs page, then generate again (the limit is "
        "ORCHESTRATOR_MAX_ACTIVE_GENERATIONS). Nothing was recorded\n"
    )
    assert _the_job_and_its_events("alice")[0].job_id == running.job_id  # the one job alice has
    assert not (data_dir / "raw").exists()
    assert main(["generate", "--user", "bob", "--rows", "50", "--json"]) == 0  # bob has none running


class SmallDisk(LocalLake):
    """The local lake on a disk of ``capacity`` bytes: what is free is the capacity less what its files
    take (temporary ones included), and the least it was ever found free is kept."""

    def __init__(self, root: Path, capacity: int) -> None:
        super().__init__(root)
        self.capacity = capacity
        self.least_free = capacity

    def free_bytes(self) -> int:
        taken = sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
        self.least_free = min(self.least_free, self.capacity - taken)
        return self.capacity - taken


def test_a_generation_that_would_fill_the_disk_stops_before_it_does_and_keeps_nothing(data_dir):
    disk = SmallDisk(data_dir, capacity=8_000_000)  # about 36 MB are asked for
    with pytest.raises(InvalidInput) as refused:
        generate(GenerationSpec(rows=20_000, seed=7, chunk_rows=1_000), "alice", storage=disk)
    assert refused.value.field == "rows"
    assert "lower the orders (or free space on the disk)" in str(refused.value)
    assert re.search(
        r"after \d+% of the work this generation has taken [\d.]+ [kM]?B of the (?:7\.\d|8\.0) MB that",
        str(refused.value),
    )
    assert disk.least_free > 0  # stopped in time
    assert list(disk.list("raw/alice")) == [] and list(disk.list("truth/alice")) == []

    roomy = SmallDisk(data_dir, capacity=2_000_000_000)
    result = generate(GenerationSpec(rows=20_000, seed=7, chunk_rows=1_000), "alice", storage=roomy)
    assert sum(t.bytes for t in result.tables.values()) > 8_000_000
