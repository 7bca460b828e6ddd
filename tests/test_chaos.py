"""Chaos: real workers (``python -m orchestrator worker``) killed with SIGKILL at seeded points in
generation, small (pandas) cleaning, large (local Spark) cleaning and both loads; a MariaDB server of the
test's own killed and restarted during an operational load; Azurite stopped during a lake write; a small
disk filled during a silver write. After each fault: no partial file is visible in the lake, no row is lost
or doubled in the warehouse or the operational database (counted, and keyed against silver), raw is
unchanged, and every job ends, succeeded or failed with a clear reason, at the next worker's run.

The kill points come from a seeded generator (CHAOS_SEED, printed with each point), and each is reached by
what the job tells its record (its attempt, its progress through its stages) plus a seeded share of how long
the next stage took in an uninterrupted run of the same data, so a point lands inside the stage it names."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pymysql
import pytest
from azure.storage.blob import BlobServiceClient

from orchestrator.cleaning import stages
from orchestrator.config import get_settings
from orchestrator.contracts import job_contract
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs.holders import alive
from orchestrator.jobs.store import Job
from orchestrator.loading.operational import operational_table
from orchestrator.runners.local_spark import runs_dir
from orchestrator.service import (
    GENERATION_LOST,
    generate_job,
    job_outputs,
    launch_clean,
    queue_generation,
)
from orchestrator.storage import open_lake, paths
from tests.azurite import free_port, running_azurite
from tests.gen_helpers import stored_job
from tests.mariadb import MARIADB
from tests.test_azure_pipeline import _use
from tests.test_pipeline_faults import _operational_rows, _raw_intact, _warehouse_rows, _worker
from tests.test_recovery import _in_group, _kill_when

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("CHAOS_SEED", "20261207"))
RESTART_SECONDS = 60  # every job ends within a minute of the worker's restart
SHARE = (0.02, 0.4)  # where in its stage a kill point lands, as a share of the stage's uninterrupted time


def _rng(name: str) -> random.Random:
    """The seeded generator of one test's kill points (each test its own, so one can run alone)."""
    return random.Random(f"{SEED}-{name}")


def _job_worker(data_dir: Path, job_id: str) -> subprocess.Popen:
    """``worker --job ID``: one queued job run now, as "Generate" and "Clean now" start it."""
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "worker", "--job", job_id],
        cwd=ROOT,
        env={**os.environ, "ORCHESTRATOR_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _killed(process: subprocess.Popen, reached: Callable[[], bool], what: str, seconds: float = 180) -> None:
    """SIGKILL ``process`` once ``reached``, which it must not outlive: a point after its end is no point."""
    _kill_when(process, reached, what, seconds)
    assert process.returncode == -signal.SIGKILL, f"the worker ended before {what}: {process.communicate()}"


def _until(process: subprocess.Popen, reached: Callable[[], bool], what: str, seconds: float = 120) -> None:
    """Wait, while ``process`` runs, until ``reached``."""
    deadline = time.monotonic() + seconds
    while not reached():
        assert process.poll() is None, f"the worker ended before {what}: {process.communicate()}"
        assert time.monotonic() < deadline, f"the job never reached {what}"
        time.sleep(0.005)


def _raw_as_generated(manifest_path: str) -> None:
    """Raw in the lake, local or not, is byte for byte as generated (the manifest's checksums)."""
    lake = open_lake()
    with lake.open_read(manifest_path) as handle:
        tables = json.load(handle)["tables"].values()
    for table in tables:
        with lake.open_read(table["raw_path"]) as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == table["sha256"], table["raw_path"]


def _restart(data_dir: Path, *args: str) -> tuple[str, str]:
    """A worker started again after a fault, ending within RESTART_SECONDS; its output."""
    worker = _worker(data_dir, *args)
    out, err = worker.communicate(timeout=RESTART_SECONDS)
    assert worker.returncode == 0, err
    return out, err


def _after(reached: Callable[[], bool], delay: float) -> Callable[[], bool]:
    """Reached ``delay`` seconds after ``reached``."""
    return lambda: reached() and not time.sleep(delay)


def _at_stage(job_id: str, attempt: int, stage: int, count: int, delay: float) -> Callable[[], bool]:
    """Reached ``delay`` seconds after attempt ``attempt`` of the job began stage ``stage`` (of ``count``):
    its progress, set back to nothing as each attempt starts, says how many stages ended."""
    began = False

    def reached() -> bool:
        nonlocal began
        job = stored_job(job_id)
        if job.attempts != attempt or job.state != "running":
            return False
        began = began or not job.progress  # this attempt told its start
        if not began or (job.progress or 0) < stage / count - 1e-9:
            return False
        time.sleep(delay)
        return True

    return reached


def _lake_whole(job: Job) -> None:
    """Every file the lake shows of the job is whole, and the silver manifest (written last) only once the job
    succeeded."""
    lake = open_lake()
    shown = [
        *lake.list(paths.silver_dir(job.user, job.parent_id, job.job_id)),
        *lake.list(paths.gold_dir(job.user, job.parent_id, job.job_id)),
    ]
    for path in shown:
        if path.endswith(".parquet"):
            with lake.open_read(path) as handle:
                pq.read_metadata(handle)  # a torn file has no footer
    manifest = paths.silver_manifest(job.user, job.parent_id, job.job_id)
    assert (manifest in shown) == (job.state == "succeeded"), (job.state, shown)


def _keys_as_silver(data_dir: Path, job: Job, con, mark: str) -> None:
    """The job's rows in every operational table are silver's, by primary key: none lost, none doubled."""
    contract = job_contract(open_lake(), job.user, job.parent_id).contract
    cur = con.cursor()
    for name, path in job_outputs(job)["silver"].items():
        key = contract.tables[name].primary_key
        silver = pq.read_table(data_dir / path, columns=list(key)).to_pylist()
        quote = "`" if mark == "%s" else '"'
        columns = ", ".join(f"{quote}{c}{quote}" for c in key)
        target = operational_table(contract, name)
        cur.execute(f"SELECT {columns} FROM {quote}{target}{quote} WHERE job_id = {mark}", (job.job_id,))
        loaded = sorted(tuple(str(v) for v in row) for row in cur.fetchall())
        assert loaded == sorted(tuple(str(r[c]) for c in key) for r in silver), name


def _loaded_once(data_dir: Path, job: Job, generated_manifest: str, mysql: dict | None = None) -> None:
    """A finished job: its outputs whole, the warehouse holding its gold once, the operational database its
    silver once (by key), raw as generated."""
    assert job.state == "succeeded", job.error
    _lake_whole(job)
    outputs = job_outputs(job)
    gold_rows = sum(pq.read_metadata(data_dir / p).num_rows for p in outputs["gold"].values())
    assert _warehouse_rows(data_dir, job.job_id) == gold_rows
    if mysql is None:
        assert _operational_rows(data_dir, job.job_id) == job.rows_out
        with contextlib.closing(sqlite3.connect(data_dir / "operational.sqlite")) as con:
            _keys_as_silver(data_dir, job, con, "?")
    else:
        with contextlib.closing(pymysql.connect(**mysql)) as con:
            _keys_as_silver(data_dir, job, con, "%s")
    assert _raw_intact(data_dir, generated_manifest)


def _whole_after_kill(data_dir: Path, job: Job, generated_manifest: str, gold_rows: int, rows: int) -> None:
    """After a kill: nothing partial is visible, and each store holds the job's rows once or not at all."""
    _lake_whole(job)
    assert _warehouse_rows(data_dir, job.job_id) in (0, gold_rows)
    assert _operational_rows(data_dir, job.job_id) in (0, rows)
    assert _raw_intact(data_dir, generated_manifest)


@pytest.mark.slow
def test_generations_killed_at_seeded_points_are_failed_at_the_next_worker_and_leave_no_raw(
    data_dir, monkeypatch
):
    rng = _rng("generation")
    monkeypatch.setenv("ORCHESTRATOR_MAX_ACTIVE_GENERATIONS", "5")  # each killed one holds a place
    spec = GenerationSpec(rows=1200, seed=5, chunk_rows=100)
    killed = []
    for point in range(5):
        share = rng.uniform(0.05, 0.85)
        job_id = queue_generation(spec, "alice").job_id
        print(f"kill point {point + 1}: generation {job_id} at {share:.0%} of its chunks (seed {SEED})")
        worker = _job_worker(data_dir, job_id)

        def reached(job_id: str = job_id, share: float = share) -> bool:
            return (stored_job(job_id).progress or 0) >= share

        _killed(worker, reached, f"{share:.0%} generated")
        assert stored_job(job_id).state == "running"
        assert not open_lake().exists(paths.raw_manifest("alice", job_id))  # written last: not there
        killed.append(job_id)

    out, _ = _restart(data_dir)  # a worker on this host sees each generation's process dead
    lake = open_lake()
    for job_id in killed:
        job = stored_job(job_id)
        assert job.state == "failed" and job.error.startswith(GENERATION_LOST), job.error
        assert f"{job_id}: failed ({GENERATION_LOST}" in out
        assert not list(lake.list(paths.raw_dir("alice", job_id)))
        assert not list(lake.list(paths.truth_dir("alice", job_id)))
    monkeypatch.delenv("ORCHESTRATOR_MAX_ACTIVE_GENERATIONS")
    assert queue_generation(spec, "alice").state == "queued"  # their places are free again


@pytest.mark.slow
def test_workers_killed_at_seeded_points_of_a_small_cleaning_and_its_loads_lose_and_double_nothing(data_dir):
    rng = _rng("pandas")
    generated = generate_job(GenerationSpec(rows=1000, seed=7), "alice")
    measured = stored_job(launch_clean("alice", generated.job_id, engine="pandas").job.job_id)
    _restart(data_dir)  # an uninterrupted run: the stages' times, and the rows every copy must have
    measured = stored_job(measured.job_id)
    _loaded_once(data_dir, measured, generated.manifest_path)
    gold_rows = _warehouse_rows(data_dir, measured.job_id)
    rows = measured.rows_out

    count = len(stages.PANDAS)
    points = [stage for stage in range(count) for _ in range(2)]  # each stage twice, in a seeded order
    rng.shuffle(points)
    job: Job | None = None
    finished = []
    for number, stage in enumerate(points, 1):
        if job is None:
            job = launch_clean("alice", generated.job_id, engine="pandas").job
        attempt = job.attempts + 1  # each kill loses an attempt; the restart starts the next at once
        delay = rng.uniform(*SHARE) * measured.timings[stages.PANDAS[stage]]
        name = stages.PANDAS[stage]
        print(f"kill point {number}: {job.job_id} attempt {attempt}, {delay:.2f} s into {name} (seed {SEED})")
        worker = _worker(data_dir)
        _killed(worker, _at_stage(job.job_id, attempt, stage, count, delay), f"{delay:.2f} s into {name}")
        job = stored_job(job.job_id)
        if job.state == "succeeded":  # it ran faster than measured: the kill came as its worker was leaving
            print(f"kill point {number}: landed after {job.job_id} succeeded")
            finished.append(job.job_id)
            job = None
            continue
        assert (job.state, job.attempts) == ("running", attempt)
        _whole_after_kill(data_dir, job, generated.manifest_path, gold_rows, rows)
        if attempt == 4:  # the next restart is its last attempt (a fifth lost one would fail it)
            finished.append(job.job_id)
            out, _ = _restart(data_dir)
            assert f"{job.job_id}: its holder was gone" in out
            job = None
    if job is not None:
        finished.append(job.job_id)
        _restart(data_dir)

    for job_id in finished:
        job = stored_job(job_id)
        _loaded_once(data_dir, job, generated.manifest_path)
        assert job.rows_out == rows


@pytest.mark.slow
def test_workers_killed_at_seeded_points_of_a_spark_cleaning_follow_its_one_run_and_load_it_once(
    data_dir, monkeypatch
):
    """One local Spark run shared by four kill points: its submitter killed, two followers killed while it
    goes on, and a last one killed while it loads the run's outputs."""
    rng = _rng("spark")
    monkeypatch.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "100")
    generated = generate_job(GenerationSpec(rows=60, seed=11, error_rate=0.3), "alice")
    launched = launch_clean("alice", generated.job_id)
    job_id = launched.job.job_id
    assert (launched.job.route, launched.engine) == ("large", "spark")

    delay = rng.uniform(0.2, 3)
    print(f"kill point 1: {job_id}, {delay:.1f} s after its Spark run was submitted (seed {SEED})")
    submitted = _after(lambda: "child" in (stored_job(job_id).holder or {}), delay)
    _killed(_worker(data_dir), submitted, "its Spark run")
    child = stored_job(job_id).holder["child"]
    holders = {stored_job(job_id).holder["worker"]}
    counts = []  # the job's rows in the warehouse and the operational database after each kill
    for point in (2, 3):  # a follower killed while the run goes on (or after it ended)
        delay = rng.uniform(0.5, 4)
        print(f"kill point {point}: {job_id}, its follower {delay:.1f} s in (seed {SEED})")

        def following() -> bool:
            return (stored_job(job_id).holder or {}).get("worker") not in holders

        _killed(_worker(data_dir), _after(following, delay), "a follower")
        holders.add(stored_job(job_id).holder["worker"])
        _lake_whole(stored_job(job_id))
        counts.append((_warehouse_rows(data_dir, job_id), _operational_rows(data_dir, job_id)))
    delay = rng.uniform(0, 0.1)
    print(f"kill point 4: {job_id}, {delay:.2f} s into loading its run's outputs (seed {SEED})")

    loading = _after(lambda: "read_outputs" in stored_job(job_id).timings, delay)
    _killed(_worker(data_dir), loading, "its loads", seconds=600)  # the run ends first
    job = stored_job(job_id)
    assert (job.state, job.attempts) == ("running", 1)
    _lake_whole(job)
    counts.append((_warehouse_rows(data_dir, job_id), _operational_rows(data_dir, job_id)))

    out, _ = _restart(data_dir)  # the run ended: its outputs are read and loaded once, without a second run
    job = stored_job(job_id)
    assert f"{job_id}: its holder was gone; its Spark run {child['run_id']} followed to the end" in out
    assert job.attempts == 1 and job.remote_run["run_id"] == child["run_id"]
    assert [log.name for log in runs_dir(get_settings()).glob("*.log")] == [f"{child['run_id']}.log"]
    assert not alive(child["pid"], child["started"]) and not _in_group(child["pid"])
    _loaded_once(data_dir, job, generated.manifest_path)
    loaded = (_warehouse_rows(data_dir, job_id), job.rows_out)
    assert all(count in (0, whole) for kill in counts for count, whole in zip(kill, loaded, strict=True))


class _MariaDB:
    """A MariaDB server of the test's own (its data folder, port and socket): killed and started again on the
    same data, as a crash and a restart of the database server do. The shared server is left alone."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.data, self.log = folder / "data", folder / "error.log"
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.data}",
                "--user=root",
                "--skip-test-db",
                "--auth-root-authentication-method=normal",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.process: subprocess.Popen | None = None

    @property
    def connect_args(self) -> dict:
        return {**MARIADB, "port": self.port}

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "/usr/sbin/mariadbd",
                "--no-defaults",
                "--user=root",
                f"--datadir={self.data}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.folder / 'mysqld.sock'}",
                f"--pid-file={self.folder / 'pid'}",
                f"--log-error={self.log}",
                "--innodb-buffer-pool-size=16M",
                "--local-infile=1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                pymysql.connect(**self.connect_args).close()
                return
            except pymysql.err.OperationalError:
                assert self.process.poll() is None and time.monotonic() < deadline, self.log.read_text()
                time.sleep(0.2)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


@pytest.fixture
def mariadb(tmp_path: Path) -> Iterator[_MariaDB]:
    server = _MariaDB(tmp_path / "mariadb")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_mariadb_killed_and_restarted_during_an_operational_load_loses_and_doubles_nothing(
    data_dir, mariadb, monkeypatch
):
    rng = _rng("mariadb")
    with contextlib.closing(pymysql.connect(**mariadb.connect_args)) as admin:
        admin.cursor().execute("CREATE DATABASE workbench")
    monkeypatch.setenv("ORCHESTRATOR_MYSQL_HOST", "127.0.0.1")
    monkeypatch.setenv("ORCHESTRATOR_MYSQL_PORT", str(mariadb.port))
    mysql = {**mariadb.connect_args, "database": "workbench"}
    generated = generate_job(GenerationSpec(rows=1500, seed=7), "alice")
    job_id = launch_clean("alice", generated.job_id, engine="pandas").job.job_id
    delay = rng.uniform(0, 0.1)
    watch = pymysql.connect(**mysql, autocommit=True)

    def loading() -> bool:  # the server runs a statement of the load's transaction
        with watch.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM information_schema.processlist WHERE id <> CONNECTION_ID()"
                " AND (info LIKE 'LOAD DATA%' OR info LIKE 'INSERT%')"
            )
            return cur.fetchone()[0] > 0

    worker = _worker(data_dir, "--visibility-timeout", "10")  # not delivered again before the server is back
    _until(worker, _after(loading, delay), "its operational load")
    watch.close()
    print(f"MariaDB killed {delay:.3f} s into the operational load's transaction (seed {SEED})")
    mariadb.kill()
    _, err = worker.communicate(timeout=RESTART_SECONDS)
    assert worker.returncode == 0, err
    cut = stored_job(job_id)
    print(f"the attempt ended {cut.state}: {cut.error}")
    assert cut.state == "queued", (cut.state, cut.error)  # the queue delivers it again
    assert cut.error.startswith(
        f"the operational database at 127.0.0.1:{mariadb.port} stopped answering during the load ("
    ), cut.error
    again = "it is loaded again when the job is tried again"
    assert cut.error.endswith(f"; nothing of this job was loaded, and {again}")
    assert _warehouse_rows(data_dir, job_id) > 0  # loaded before it, and replaced by the next attempt

    mariadb.start()  # on the same data: the cut transaction is rolled back whole
    with contextlib.closing(pymysql.connect(**mysql)) as con:
        cur = con.cursor()
        cur.execute("SHOW TABLES")
        for (table,) in cur.fetchall():
            cur.execute(f"SELECT count(*) FROM `{table}` WHERE job_id = %s", (job_id,))
            assert cur.fetchone()[0] == 0, table
    received = cut.started_at.timestamp()  # the worker took its message just before it started the job
    time.sleep(max(0.0, received + 10.5 - time.time()))  # the message is visible again
    _restart(data_dir)
    assert stored_job(job_id).attempts == 2
    _loaded_once(data_dir, stored_job(job_id), generated.manifest_path, mysql)


@pytest.mark.slow
def test_azurite_stopped_during_a_lake_write_leaves_no_partial_file_and_the_job_ends_clearly(
    data_dir, monkeypatch
):
    rng = _rng("azurite")
    with running_azurite("blob", "queue") as server:  # its own: the shared one stays up for other tests
        file_system = _use(server, monkeypatch)
        monkeypatch.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "100")  # the large queue, which workers drain
        generated = generate_job(GenerationSpec(rows=600, seed=3), "alice")
        job_id = launch_clean("alice", generated.job_id, engine="pandas").job.job_id
        delay = rng.uniform(0, 0.05)
        worker = _worker(data_dir, "--visibility-timeout", "2")
        write_silver = stages.PANDAS.index("write_silver")
        _until(worker, _at_stage(job_id, 1, write_silver, len(stages.PANDAS), delay), "its silver write")
        print(f"Azurite's blob service stopped {delay:.3f} s into writing silver (seed {SEED})")
        server.stop("blob")
        _until(worker, lambda: stored_job(job_id).state == "queued", "the attempt's end", seconds=180)
        lost = stored_job(job_id)  # the attempt failed on the lake; the queue delivers the job again
        assert lost.error.startswith("cannot reach the lake at http://127.0.0.1:"), lost.error
        assert "AccountKey" not in lost.error

        server.start("blob")  # the outage ends while the worker tries again
        _, err = worker.communicate(timeout=RESTART_SECONDS)
        assert worker.returncode == 0, err
        job = stored_job(job_id)
        assert job.state == "succeeded" and job.attempts > 1, (job.state, job.error)
        _lake_whole(job)
        container = BlobServiceClient.from_connection_string(server.connection_string)
        shown = {blob.name for blob in container.get_container_client(file_system).list_blobs()}
        outputs = job_outputs(job)
        published = {*outputs["silver"].values(), *outputs["quarantine"].values(), *outputs["gold"].values()}
        manifest = paths.silver_manifest(job.user, job.parent_id, job_id)
        assert {n for n in shown if not n.startswith("raw/") and not n.startswith("truth/")} == {
            *published,
            manifest,
        }  # nothing of the lost attempt beside them
        assert _warehouse_rows(data_dir, job_id) == sum(
            pq.read_metadata(open_lake().open_read(p)).num_rows for p in outputs["gold"].values()
        )
        assert _operational_rows(data_dir, job_id) == job.rows_out
        _raw_as_generated(generated.manifest_path)


@pytest.fixture
def small_disk(data_dir: Path) -> Iterator[Path]:
    """The lake's silver folder on a tmpfs of 4 MB of its own, so the kernel answers ENOSPC when it is full
    (the job store and the loads' databases stay on the data folder's disk, and can say what happened)."""
    folder = data_dir / "silver"
    folder.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], check=False)
    if mounted.returncode != 0:
        pytest.skip("this machine does not let the tests mount a file system")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.mark.slow
def test_a_small_disk_filled_during_a_silver_write_fails_the_attempt_clearly_and_a_retry_succeeds(
    data_dir, small_disk
):
    generated = generate_job(GenerationSpec(rows=1500, seed=9), "alice")
    job_id = launch_clean("alice", generated.job_id, engine="pandas").job.job_id
    worker = _worker(data_dir, "--visibility-timeout", "2")
    _until(worker, _at_stage(job_id, 1, stages.PANDAS.index("clean"), len(stages.PANDAS), 0), "its cleaning")
    filler = small_disk / ".filler"
    with filler.open("wb") as handle, contextlib.suppress(OSError):  # another writer takes what is left
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    with pytest.raises(OSError) as full:
        (small_disk / ".probe").write_bytes(b"\0" * 65536)
    assert full.value.errno == errno.ENOSPC
    _, err = worker.communicate(timeout=RESTART_SECONDS)
    assert worker.returncode == 0, err
    job = stored_job(job_id)
    assert job.state == "queued", (job.state, job.error)  # tried again when its queue delivers it again
    assert job.error.startswith("cannot write silver/cleaned/alice/"), job.error
    hint = "free space on the lake's disk (the Jobs page deletes jobs no longer needed)"
    assert job.error.endswith(f": No space left on device; {hint}"), job.error
    _lake_whole(job)
    assert _warehouse_rows(data_dir, job_id) == 0 and _operational_rows(data_dir, job_id) == 0
    assert _raw_intact(data_dir, generated.manifest_path)

    filler.unlink()
    (small_disk / ".probe").unlink(missing_ok=True)
    time.sleep(2.2)  # its message is visible again
    _restart(data_dir)
    _loaded_once(data_dir, stored_job(job_id), generated.manifest_path)
