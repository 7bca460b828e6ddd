"""Settings administrators store in the job store's database (the routing threshold and the schedules): who
may change them, what each change leaves in the audit, that a bad value stores nothing, and that every
process's get_settings uses them unless the environment sets them. On the configured store, SQLite and
MySQL."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from orchestrator.auth import open_user_store
from orchestrator.config import (
    DEFAULT,
    EDITABLE,
    ENVIRONMENT,
    SECRETS_FILE_ENV,
    STORED,
    editable_values,
    get_settings,
)
from orchestrator.errors import InvalidInput
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs.store import JobStore, NotAdministrator
from orchestrator.service import generate_job, launch_clean
from tests.mariadb import MARIADB

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"
THRESHOLD = "ORCHESTRATOR_SMALL_BATCH_MAX_ROWS"
EVERY = "ORCHESTRATOR_SMALL_EVERY_MINUTES"
DAILY_AT = "ORCHESTRATOR_LARGE_DAILY_AT_UTC"


@pytest.fixture
def users(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """alice (administrator) and bob, with none of the stored settings set in the environment."""
    monkeypatch.setenv(SECRETS_FILE_ENV, str(tmp_path / "no-secrets.toml"))
    for setting in EDITABLE:
        monkeypatch.delenv(setting.name, raising=False)
    store = open_user_store()
    store.create_first_admin("alice", PASSWORD, PASSWORD)
    store.add_user("bob", PASSWORD, PASSWORD)


@pytest.fixture(params=["sqlite", "mysql"])
def store(request: pytest.FixtureRequest, users: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobStore]:
    """The configured job store, SQLite in the data root or a MySQL database."""
    if request.param == "mysql":
        mysql = request.getfixturevalue("mysql_database")
        for name, value in [
            ("ORCHESTRATOR_JOB_STORE", "mysql"),
            ("ORCHESTRATOR_MYSQL_HOST", mysql.host),
            ("ORCHESTRATOR_MYSQL_PORT", str(mysql.port)),
            ("ORCHESTRATOR_MYSQL_DATABASE", mysql.database),
            ("ORCHESTRATOR_MYSQL_USER", mysql.user),
        ]:
            monkeypatch.setenv(name, value)
    store = JobStore.default()
    yield store
    store.close()
    if request.param == "mysql":
        with pymysql.connect(database=mysql.database, autocommit=True, **MARIADB) as conn:
            conn.cursor().execute("DELETE FROM stored_settings")
            conn.cursor().execute("DELETE FROM setting_changes")


def _audit(store: JobStore, limit: int = 20) -> list[tuple[str, str, str, str]]:
    return [(c.changed_by, c.name, c.old_value, c.new_value) for c in store.setting_changes(limit)]


def test_an_administrator_stores_settings_and_each_change_is_audited(store: JobStore) -> None:
    changes = store.set_settings({THRESHOLD: "20000", EVERY: "15"}, user="alice")
    assert [(c.name, c.old_value, c.new_value, c.changed_by) for c in changes] == [
        (THRESHOLD, "10000", "20000", "alice"),
        (EVERY, "10", "15", "alice"),
    ]
    store.set_settings({THRESHOLD: "30000", DAILY_AT: "3:30"}, user="alice")
    assert store.set_settings({THRESHOLD: "30000"}, user="alice") == []  # a repeat changes nothing

    other = JobStore.default()  # another process's connection sees the same
    try:
        stored = other.stored_settings()
        assert {name: (s.value, s.set_by) for name, s in stored.items()} == {
            THRESHOLD: ("30000", "alice"),
            EVERY: ("15", "alice"),
            DAILY_AT: ("03:30", "alice"),
        }
        assert _audit(other) == [
            ("alice", DAILY_AT, "02:00", "03:30"),
            ("alice", THRESHOLD, "20000", "30000"),
            ("alice", EVERY, "10", "15"),
            ("alice", THRESHOLD, "10000", "20000"),
        ]
        assert _audit(other, limit=2) == _audit(other)[:2]
    finally:
        other.close()


def test_only_an_administrator_who_may_sign_in_changes_a_setting(store: JobStore) -> None:
    users = open_user_store()
    users.add_user("carol", PASSWORD, PASSWORD, "admin")
    users.disable("carol")
    for user in ("bob", "carol", "mallory"):  # a plain user, a disabled administrator, no user at all
        with pytest.raises(
            NotAdministrator,
            match=f"^'{user}' is not an administrator, and only one can change {THRESHOLD}; ask one$",
        ):
            store.set_settings({THRESHOLD: "20000"}, user=user)
    assert store.stored_settings() == {}
    assert store.setting_changes() == []
    assert get_settings().small_batch_max_rows == 10_000


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        (THRESHOLD, "0", "must be a whole number from 1 to 100,000,000 (got '0')"),
        (THRESHOLD, "20k", "must be a whole number from 1 to 100,000,000 (got '20k')"),
        (EVERY, "1441", "must be a whole number from 1 to 1,440 (got '1441')"),
        (DAILY_AT, "24:00", "must be a UTC time as HH:MM, such as 02:00 (got '24:00')"),
        (DAILY_AT, "2pm", "must be a UTC time as HH:MM, such as 02:00 (got '2pm')"),
        ("ORCHESTRATOR_PROFILE", "azure", "is not a stored setting"),
    ],
)
def test_a_bad_value_is_refused_naming_the_setting_and_nothing_is_stored(
    store: JobStore, name: str, value: str, said: str
) -> None:
    with pytest.raises(InvalidInput, match=rf"^{name}: {re.escape(said)}"):
        store.set_settings({EVERY if name != EVERY else THRESHOLD: "15", name: value}, user="alice")
    assert store.stored_settings() == {}  # not even the good value beside it
    assert store.setting_changes() == []


def test_get_settings_uses_a_stored_value_unless_the_environment_sets_one(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert [(v.value, v.source) for v in editable_values(get_settings())] == [
        (10_000, DEFAULT),
        (10, DEFAULT),
        ("02:00", DEFAULT),
    ]
    store.set_settings({THRESHOLD: "20000", DAILY_AT: "21:30"}, user="alice")
    settings = get_settings()
    assert (settings.small_batch_max_rows, settings.small_every_minutes, settings.large_daily_at_utc) == (
        20_000,
        10,
        "21:30",
    )
    threshold = editable_values(settings)[0]
    assert (threshold.source, threshold.stored.set_by) == (STORED, "alice")

    monkeypatch.setenv(THRESHOLD, "500")  # the environment wins over the stored value ...
    assert get_settings().small_batch_max_rows == 500
    assert editable_values(get_settings())[0].source == ENVIRONMENT
    with pytest.raises(InvalidInput, match=rf"^{THRESHOLD}: is set in the environment .*; change it there"):
        store.set_settings({THRESHOLD: "30000"}, user="alice")  # ... so a value stored now would never count
    assert store.stored_settings()[THRESHOLD].value == "20000"


def test_another_process_uses_the_stored_value_without_a_restart(store: JobStore) -> None:
    store.set_settings({EVERY: "45"}, user="alice")
    read = subprocess.run(
        [
            sys.executable,
            "-c",
            "from orchestrator.config import get_settings; print(get_settings().small_every_minutes)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert read.stdout.strip() == "45"


def test_a_stored_threshold_routes_the_next_cleaning(users: None) -> None:
    generated = generate_job(GenerationSpec(rows=20, seed=1), "alice")
    store = JobStore.default()
    try:
        store.set_settings({THRESHOLD: "1"}, user="alice")
    finally:
        store.close()
    assert launch_clean("alice", generated.job_id).job.route == "large"  # 10,000 rows would take it small


def test_reading_the_settings_creates_nothing_in_a_data_root_not_used_yet(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRETS_FILE_ENV, str(tmp_path / "no-secrets.toml"))
    assert get_settings().small_batch_max_rows == 10_000
    assert not data_dir.exists()  # the job store is created where it is first written, data root private
