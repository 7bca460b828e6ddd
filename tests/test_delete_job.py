"""Deleting a job from every system it reached: the lake (local, and an ADLS account on Azurite), the
warehouse, the operational database (SQLite, and the real MariaDB server), the stored quality runs and the
job store. A refused delete changes nothing; what a database down keeps back, the scheduler's sweep
removes once it answers."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections import Counter
from dataclasses import dataclass

import duckdb
import pymysql
import pytest
from azure.storage.blob import BlobServiceClient

from orchestrator import cli, quality, worker
from orchestrator.config import Settings, get_settings
from orchestrator.errors import InvalidInput, NotFound
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs.store import JobStore
from orchestrator.loading.operational import sqlite_path
from orchestrator.loading.warehouse import warehouse_path
from orchestrator.quality.store import store_path
from orchestrator.runners.local_spark import runs_dir
from orchestrator.service import delete_job, execute_job, generate_job, launch_clean
from orchestrator.storage import open_lake
from tests.mariadb import MARIADB

LAKE_FOLDERS = ("raw", "truth", "silver", "gold")


@dataclass(frozen=True)
class Made:
    """A generated job, the cleanings of its data, and the quality runs stored for them."""

    generation: str
    cleanings: tuple[str, ...]

    @property
    def ids(self) -> set[str]:
        return {self.generation, *self.cleanings}


def _made(user: str, rows: int, seed: int, cleanings: int = 1) -> Made:
    generation = generate_job(GenerationSpec(rows=rows, seed=seed), user).job_id
    quality.profile_job(user, generation, "raw")
    cleaned = []
    for _ in range(cleanings):
        job = execute_job(launch_clean(user, generation).job.job_id)
        assert job.state == "succeeded", job.error
        quality.profile_job(user, job.job_id, "silver")
        cleaned.append(job.job_id)
    return Made(generation, tuple(cleaned))


@pytest.fixture(params=["local lake, SQLite", "ADLS on Azurite, MariaDB"])
def systems(request, data_dir, monkeypatch) -> str:
    """Either every embedded default, or the lake in a storage account and the operational database on
    the MariaDB server."""
    if request.param.startswith("ADLS"):
        server = request.getfixturevalue("azurite")
        mysql = request.getfixturevalue("mysql_database")
        name = f"lake{uuid.uuid4().hex[:10]}"
        BlobServiceClient.from_connection_string(server.connection_string).create_container(name)
        monkeypatch.setenv("ORCHESTRATOR_PROFILE", "azure")
        monkeypatch.setenv("ORCHESTRATOR_AZURE_STORAGE_CONNECTION_STRING", server.connection_string)
        monkeypatch.setenv("ORCHESTRATOR_AZURE_FILE_SYSTEM", name)
        monkeypatch.setenv("ORCHESTRATOR_MYSQL_HOST", mysql.host)
        monkeypatch.setenv("ORCHESTRATOR_MYSQL_DATABASE", mysql.database)
        monkeypatch.setenv("ORCHESTRATOR_MYSQL_SSL", "false")  # required on azure; the test server has no TLS
    return request.param


def _operational_rows(settings: Settings) -> dict[str, Counter]:
    """Rows per job in each silver table of the operational database."""
    if settings.mysql:
        con = pymysql.connect(database=settings.mysql.database, **MARIADB)
        names = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
    else:
        con = sqlite3.connect(sqlite_path(settings))
        names = "SELECT name FROM sqlite_master WHERE type = 'table'"
    try:
        cur = con.cursor()
        cur.execute(names)
        tables = sorted(name for (name,) in cur.fetchall() if name.startswith("silver_"))
        counts = {}
        for table in tables:
            cur.execute(f"SELECT job_id, count(*) FROM {table} GROUP BY job_id")
            counts[table] = Counter(dict(cur.fetchall()))
        return counts
    finally:
        con.close()


def _state(settings: Settings) -> dict:
    """Everything of every job in every system: lake files, warehouse and operational rows per job, stored
    quality runs per job, job records and notifications."""
    lake = open_lake(settings)
    with duckdb.connect(str(warehouse_path(settings)), read_only=True) as con:
        tables = [t for (t,) in con.execute("SHOW TABLES").fetchall() if t.startswith("gold_")]
        warehouse = {
            t: Counter(dict(con.execute(f"SELECT job_id, count(*) FROM {t} GROUP BY job_id").fetchall()))
            for t in tables
        }
    with duckdb.connect(str(store_path(settings)), read_only=True) as con:
        runs = Counter(dict(con.execute("SELECT job_id, count(*) FROM runs GROUP BY job_id").fetchall()))
        metrics = Counter(
            dict(con.execute("SELECT job_id, count(*) FROM rule_metrics GROUP BY job_id").fetchall())
        )
    store = JobStore.default()
    try:
        jobs = sorted(job.job_id for job in store.list_jobs("", is_admin=True))
        events = Counter(e.job_id for user in ("alice", "bob") for e in store.list_unseen(user))
    finally:
        store.close()
    return {
        "lake": [path for folder in LAKE_FOLDERS for path in lake.list(folder)],
        "warehouse": warehouse,
        "operational": _operational_rows(settings),
        "quality runs": runs,
        "rule metrics": metrics,
        "jobs": jobs,
        "notifications": events,
    }


def _without(state: dict, ids: set[str]) -> dict:
    """``state`` as it is once the jobs ``ids`` are gone from every system."""

    def keep(counts: Counter) -> Counter:
        return Counter({job: n for job, n in counts.items() if job not in ids})

    return {
        "lake": [path for path in state["lake"] if not ids & set(path.split("/"))],
        "warehouse": {table: keep(counts) for table, counts in state["warehouse"].items()},
        "operational": {table: keep(counts) for table, counts in state["operational"].items()},
        "quality runs": keep(state["quality runs"]),
        "rule metrics": keep(state["rule metrics"]),
        "jobs": [job for job in state["jobs"] if job not in ids],
        "notifications": keep(state["notifications"]),
    }


def _reached_every_system(state: dict, made: Made) -> None:
    """The job left something in every system, so a delete that misses one fails the test."""
    for job in made.ids:
        assert any(job in path.split("/") for path in state["lake"]), job
        assert state["quality runs"][job] and state["notifications"][job] and job in state["jobs"]
    assert state["warehouse"] and state["operational"]
    for cleaning in made.cleanings:
        assert all(counts[cleaning] for counts in state["warehouse"].values()), cleaning
        assert all(counts[cleaning] for counts in state["operational"].values()), cleaning


def test_deleting_a_generation_removes_it_and_its_cleanings_from_every_system_and_nothing_else(systems):
    doomed = _made("alice", 150, 1, cleanings=2)
    kept = _made("alice", 120, 2)
    bobs = _made("bob", 120, 3)
    settings = get_settings()
    before = _state(settings)
    for made in (doomed, kept, bobs):
        _reached_every_system(before, made)

    deletion = delete_job(doomed.generation, user="alice")
    assert deletion.pending is None
    assert deletion.jobs[0].job_id == doomed.generation
    assert {job.job_id for job in deletion.jobs} == doomed.ids
    assert _state(settings) == _without(before, doomed.ids)
    for job in doomed.ids:
        with pytest.raises(NotFound):
            launch_clean("alice", job)  # nothing to clean from any more
    store = JobStore.default()
    try:
        assert store.deleted_jobs() == []  # the records went last, once everything else had
    finally:
        store.close()


def test_deleting_a_cleaning_keeps_the_raw_data_it_cleaned_and_the_other_cleanings(data_dir, capsys):
    made = _made("alice", 120, 4, cleanings=2)
    settings = get_settings()
    before = _state(settings)
    first, second = made.cleanings
    logs = runs_dir(settings)  # as if local Spark had cleaned them: each run's log is named after its job
    logs.mkdir(parents=True)
    for job in made.cleanings:
        (logs / f"{job}-0123abcd.log").write_text(f"run of {job}")

    assert cli.main(["delete", first, "--user", "alice", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"deleted": [first], "pending": None}
    assert _state(settings) == _without(before, {first})
    assert [log.name for log in logs.iterdir()] == [f"{second}-0123abcd.log"]
    assert quality.latest_run("alice", made.generation, "raw") is not None

    assert cli.main(["delete", made.generation]) == 0  # by the operator, for whoever owns it
    assert capsys.readouterr().out.splitlines() == [
        f"{made.generation}: deleted (generate job of alice)",
        f"{second}: deleted (clean job of alice)",
    ]
    assert _state(settings) == _without(before, made.ids)
    assert list(logs.iterdir()) == []


def test_a_refused_delete_changes_nothing(data_dir, capsys):
    made = _made("alice", 120, 5)
    queued = launch_clean("alice", made.generation).job.job_id  # a cleaning on its way
    settings = get_settings()
    before = _state(settings)

    with pytest.raises(NotFound):
        delete_job(made.generation, user="bob")  # alice's job does not exist for bob
    for job in (made.generation, queued):
        with pytest.raises(InvalidInput) as refused:
            delete_job(job, user="alice")
        assert refused.value.field == "job_id"
        assert f"cancel {queued} or wait for it to finish" in str(refused.value)
    assert cli.main(["delete", made.generation]) == 2
    assert capsys.readouterr().err.startswith(f"error: job_id: job {made.generation} cannot be deleted")
    assert _state(settings) == before


def test_a_database_down_during_a_delete_hides_the_job_and_the_sweep_removes_the_rest(
    data_dir, mysql_database, monkeypatch
):
    monkeypatch.setenv("ORCHESTRATOR_MYSQL_HOST", mysql_database.host)
    monkeypatch.setenv("ORCHESTRATOR_MYSQL_DATABASE", mysql_database.database)
    made = _made("alice", 120, 6)
    kept = _made("alice", 100, 7)
    settings = get_settings()
    before = _state(settings)

    monkeypatch.setenv("ORCHESTRATOR_MYSQL_PORT", "9")  # the operational database stops answering
    deletion = delete_job(made.generation, user="alice")
    assert "operational database at 127.0.0.1:9 is not reachable" in deletion.pending
    store = JobStore.default()
    try:
        assert [job.job_id for job in store.list_jobs("alice")] == [kept.generation, *kept.cleanings][::-1]
        with pytest.raises(NotFound):
            store.get(made.generation)
        assert {job.job_id for job in store.deleted_jobs()} == made.ids  # kept for the sweep
        assert worker.sweep() == [
            "deleted jobs kept back, tried again at the next wake: ServiceError: the operational database "
            "at 127.0.0.1:9 is not reachable (2003)"
        ]
        monkeypatch.delenv("ORCHESTRATOR_MYSQL_PORT")  # it answers again
        assert sorted(worker.sweep()) == sorted(f"{job}: deleted" for job in made.ids)
        assert store.deleted_jobs() == []
    finally:
        store.close()
    assert _state(get_settings()) == _without(before, made.ids)
