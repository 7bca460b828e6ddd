"""Job records, their states and completion events, kept in SQLite (default) or MySQL with the same SQL.

Every change is a compare-and-set on the row's version inside a transaction, so a worker that dies
between two steps leaves the record in the last committed state, and a repeated step is harmless.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymysql

from orchestrator.cleaning import engines
from orchestrator.config import EDITABLE, MySQLSettings, Settings, get_settings, lookup
from orchestrator.dbschema import add_missing_columns
from orchestrator.errors import AlreadyExists, Busy, InvalidInput, NotFound, WorkbenchError
from orchestrator.queues.local import connect_sqlite, utc_time
from orchestrator.storage.paths import check_job_id, check_user

Clock = Callable[[], float]

KIND_GENERATE = "generate"
KIND_CLEAN = "clean"
KINDS = (KIND_GENERATE, KIND_CLEAN)

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
ACTIVE_STATES = frozenset({QUEUED, RUNNING})
TERMINAL_STATES = frozenset({SUCCEEDED, FAILED, CANCELLED})
TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({RUNNING, FAILED, CANCELLED}),
    # running -> running is a new attempt after a worker was lost; running -> queued waits for a retry.
    RUNNING: frozenset({RUNNING, QUEUED, SUCCEEDED, FAILED, CANCELLED}),
    SUCCEEDED: frozenset(),
    FAILED: frozenset(),
    CANCELLED: frozenset(),
}

ROUTES = ("small", "large")

MAX_ERROR_CHARS = 4000
MAX_PROGRESS_CHARS = 200
_KIND_LABEL = {KIND_GENERATE: "Generation", KIND_CLEAN: "Cleaning"}
# what a finished job of each kind announces, from its recorded counts (generating quarantines nothing)
_DONE_MESSAGE = {
    KIND_GENERATE: "{rows_out:,} raw rows written",
    KIND_CLEAN: "{rows_out:,} rows out, {rows_quarantined:,} quarantined",
}

_JOB_COLUMNS = (
    "job_id",
    "user",
    "kind",
    "parent_id",
    "state",
    "route",
    "engine",
    "rows_in",
    "rows_out",
    "rows_quarantined",
    "timings",
    "params",
    "attempts",
    "error",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
    "lease_until",
    "progress",
    "progress_text",
    "remote_run",
    "holder",
    "version",
)
_EVENT_COLUMNS = ("event_id", "job_id", "user", "kind", "message", "created_at", "seen")
_SCHEDULER_COLUMNS = ("scheduler_id", "host", "pid", "started_at", "seen_at", "next_at", "routes")
SCHEDULER_SILENT_SECONDS = 120  # a scheduler not heard from for this long is taken to be gone
_SCHEDULER_FORGOTTEN_SECONDS = 24 * 3600  # the record of a lost scheduler is removed after this long
_STORED_SETTING_COLUMNS = ("name", "value", "set_by", "set_at")
_SETTING_CHANGE_COLUMNS = ("change_id", "name", "old_value", "new_value", "changed_by", "changed_at")
STORED_SETTINGS_SECONDS = 5.0  # how long a process keeps the stored settings before it reads them again


class IllegalTransition(InvalidInput):
    """A job was asked to move to a state its current state does not lead to."""

    def __init__(self, job_id: str, current: str, target: str) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none, it has finished"
        super().__init__(
            "state", f"job {job_id} is {current} and cannot become {target} (allowed next: {allowed})"
        )
        self.current = current
        self.target = target


class JobCancelled(WorkbenchError):
    """The job was cancelled while it ran; it stops at its next stage (or chunk) and keeps nothing of it."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} was cancelled")


class JobHeld(WorkbenchError):
    """Another attempt holds a running job: this one must not run it too."""

    def __init__(self, job_id: str, until: datetime) -> None:
        super().__init__(
            f"job {job_id} is running in another worker, whose lease on it runs until "
            f"{until:%Y-%m-%d %H:%M:%S} UTC and is renewed while that worker lives; another worker takes it "
            "over only once it is gone"
        )
        self.until = until


class HoldLost(WorkbenchError):
    """A worker renewing its lease on a job found that it no longer holds it (another worker took it over, or
    the attempt ended): it must stop working on the job."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} is no longer held by this worker")


class NotAdministrator(WorkbenchError, PermissionError):
    """A change only administrators may make was asked for by someone else."""


class _Heard(Exception):
    """A job taken for lost was heard from after all (see JobStore.fail_silent)."""


@dataclass(frozen=True)
class Job:
    """One generation or cleaning job as the UI, the CLI and the worker see it."""

    job_id: str
    user: str
    kind: str
    parent_id: str | None
    state: str
    route: str | None
    engine: str | None
    rows_in: int | None
    rows_out: int | None
    rows_quarantined: int | None
    timings: dict[str, float]  # seconds per pipeline stage, in the order they ran
    params: dict[str, Any]
    attempts: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    lease_until: datetime | None  # a running attempt holds the job until then (see JobStore.start)
    progress: float | None  # share done, 0 to 1: a generation's chunks, a cleaning's stages (record_progress)
    progress_text: str | None  # what it is doing, such as "orders: 400,000 of 1,000,000" or "now: build gold"
    remote_run: dict[str, Any] | None  # the Spark run cleaning it elsewhere (see JobStore.record_remote_run)
    # who holds the running attempt and where it runs: the worker process (worker, host, pid, started) and its
    # local Spark child if any (child: pid, started, run_id); see JobStore.start, renew and record_child
    holder: dict[str, Any] | None = None


@dataclass(frozen=True)
class Event:
    """A notification for the job's owner, such as "Cleaning complete"."""

    event_id: int
    job_id: str
    user: str
    kind: str
    message: str
    created_at: datetime
    seen: bool


@dataclass(frozen=True)
class StoredSetting:
    """A setting's value an administrator stored on the Settings page (see config.EDITABLE)."""

    name: str
    value: str
    set_by: str
    set_at: datetime


@dataclass(frozen=True)
class SettingChange:
    """One change of a stored setting, as the audit keeps it: who changed what, when, from what to what."""

    change_id: int
    name: str
    old_value: str  # the stored value before, or the default if none was stored
    new_value: str
    changed_by: str
    changed_at: datetime


@dataclass(frozen=True)
class _Dialect:
    """What differs between SQLite and MySQL: table definitions, how a write transaction starts,
    the placeholder and the integrity error class. Everything else is one SQL text."""

    schema: tuple[str, ...]
    begin: str
    placeholder: str
    integrity_error: type[Exception]
    alive: Callable[[Any], bool]  # False when a server dropped the connection, which is then reopened
    locking: str  # makes a read inside a write transaction lock the rows it reads (SQLite's lock the file)
    added_columns: tuple[tuple[str, str], ...]  # columns newer than the first stores, added where missing


_SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS jobs (
        job_id TEXT PRIMARY KEY, user TEXT NOT NULL, kind TEXT NOT NULL, parent_id TEXT,
        state TEXT NOT NULL, route TEXT, engine TEXT,
        rows_in INTEGER, rows_out INTEGER, rows_quarantined INTEGER,
        timings TEXT NOT NULL, params TEXT NOT NULL, attempts INTEGER NOT NULL, error TEXT,
        created_at REAL NOT NULL, started_at REAL, finished_at REAL, updated_at REAL NOT NULL,
        lease_until REAL, progress REAL, progress_text TEXT, remote_run TEXT, holder TEXT,
        version INTEGER NOT NULL,
        active_key TEXT UNIQUE, deleted_at REAL
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_by_user ON jobs (user, created_at)",
    "CREATE INDEX IF NOT EXISTS jobs_by_parent ON jobs (parent_id)",
    """CREATE TABLE IF NOT EXISTS job_events (
        event_id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, user TEXT NOT NULL,
        kind TEXT NOT NULL, message TEXT NOT NULL, created_at REAL NOT NULL, seen INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS job_events_by_user ON job_events (user, seen, event_id)",
    """CREATE TABLE IF NOT EXISTS schedulers (
        scheduler_id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, started_at REAL NOT NULL,
        seen_at REAL NOT NULL, next_at REAL NOT NULL, routes TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS stored_settings (
        name TEXT PRIMARY KEY, value TEXT NOT NULL, set_by TEXT NOT NULL, set_at REAL NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS schedule_served (route TEXT PRIMARY KEY, served_at REAL NOT NULL)",
    """CREATE TABLE IF NOT EXISTS setting_changes (
        change_id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, old_value TEXT NOT NULL,
        new_value TEXT NOT NULL, changed_by TEXT NOT NULL, changed_at REAL NOT NULL
    )""",
)

_MYSQL_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS jobs (
        job_id VARCHAR(64) NOT NULL PRIMARY KEY, user VARCHAR(32) NOT NULL, kind VARCHAR(16) NOT NULL,
        parent_id VARCHAR(64), state VARCHAR(16) NOT NULL, route VARCHAR(16), engine VARCHAR(16),
        rows_in BIGINT, rows_out BIGINT, rows_quarantined BIGINT,
        timings TEXT NOT NULL, params MEDIUMTEXT NOT NULL, attempts INT NOT NULL, error TEXT,
        created_at DOUBLE NOT NULL, started_at DOUBLE, finished_at DOUBLE, updated_at DOUBLE NOT NULL,
        lease_until DOUBLE, progress DOUBLE, progress_text TEXT, remote_run TEXT, holder TEXT,
        version INT NOT NULL,
        active_key VARCHAR(128), deleted_at DOUBLE,
        UNIQUE KEY jobs_active (active_key), KEY jobs_by_user (user, created_at),
        KEY jobs_by_parent (parent_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE IF NOT EXISTS job_events (
        event_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, job_id VARCHAR(64) NOT NULL,
        user VARCHAR(32) NOT NULL, kind VARCHAR(64) NOT NULL, message TEXT NOT NULL,
        created_at DOUBLE NOT NULL, seen TINYINT NOT NULL, KEY job_events_by_user (user, seen, event_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE IF NOT EXISTS schedulers (
        scheduler_id VARCHAR(64) NOT NULL PRIMARY KEY, host VARCHAR(255) NOT NULL, pid INT NOT NULL,
        started_at DOUBLE NOT NULL, seen_at DOUBLE NOT NULL, next_at DOUBLE NOT NULL,
        routes VARCHAR(32) NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE IF NOT EXISTS stored_settings (
        name VARCHAR(64) NOT NULL PRIMARY KEY, value VARCHAR(255) NOT NULL, set_by VARCHAR(32) NOT NULL,
        set_at DOUBLE NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE IF NOT EXISTS schedule_served (
        route VARCHAR(16) NOT NULL PRIMARY KEY, served_at DOUBLE NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE IF NOT EXISTS setting_changes (
        change_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL,
        old_value VARCHAR(255) NOT NULL, new_value VARCHAR(255) NOT NULL, changed_by VARCHAR(32) NOT NULL,
        changed_at DOUBLE NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
)


def _mysql_alive(conn: pymysql.connections.Connection) -> bool:
    try:
        conn.ping()
    except pymysql.err.Error:
        return False
    return True


_SQLITE = _Dialect(
    schema=_SQLITE_SCHEMA,
    begin="BEGIN IMMEDIATE",
    placeholder="?",
    integrity_error=sqlite3.IntegrityError,
    alive=lambda conn: True,  # a local file is never dropped
    locking="",  # BEGIN IMMEDIATE holds the database's write lock already
    added_columns=(
        ("lease_until", "REAL"),
        ("progress", "REAL"),
        ("progress_text", "TEXT"),
        ("remote_run", "TEXT"),
        ("deleted_at", "REAL"),
        ("holder", "TEXT"),
    ),
)
_MYSQL = _Dialect(
    schema=_MYSQL_SCHEMA,
    begin="START TRANSACTION",
    placeholder="%s",
    integrity_error=pymysql.err.IntegrityError,
    alive=_mysql_alive,
    locking=" FOR UPDATE",
    added_columns=(
        ("lease_until", "DOUBLE"),
        ("progress", "DOUBLE"),
        ("progress_text", "TEXT"),
        ("remote_run", "TEXT"),
        ("deleted_at", "DOUBLE"),
        ("holder", "TEXT"),
    ),
)


@dataclass(frozen=True)
class Scheduler:
    """A running scheduler (``orchestrator worker``) as its last heartbeat described it."""

    scheduler_id: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime
    next_at: datetime  # when it drains next
    routes: tuple[str, ...]  # the routes it drains then


def _scheduler(row: Sequence[Any]) -> Scheduler:
    values = dict(zip(_SCHEDULER_COLUMNS, row, strict=True))
    for name in ("started_at", "seen_at", "next_at"):
        values[name] = utc_time(values[name])
    return Scheduler(**{**values, "routes": tuple(values["routes"].split(","))})


def new_job_id(kind: str) -> str:
    """A fresh, sortable job id such as ``c-20250101t120000-1a2b3c`` ("g-" generation, "c-" cleaning)."""
    _check_choice("kind", kind, KINDS)
    stamp = datetime.now(UTC).strftime("%Y%m%dt%H%M%S")
    return f"{kind[0]}-{stamp}-{secrets.token_hex(3)}"


def _check_choice(name: str, value: str | None, choices: Sequence[str], *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if value not in choices:
        raise InvalidInput(name, f"{value!r} is not one of {', '.join(choices)}")


def _check_lease(seconds: float | None) -> None:
    if seconds is not None and not (
        isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0
    ):
        raise InvalidInput("lease_seconds", f"{seconds!r} must be a number of seconds above 0")


def _check_rows(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidInput(name, f"{value!r} must be a whole number of rows, 0 or more")


_INSERT_JOB = (
    "INSERT INTO jobs (job_id, user, kind, parent_id, state, route, engine, rows_in, rows_out,"
    " rows_quarantined, timings, params, attempts, error, created_at, started_at, finished_at, updated_at,"
    " version, active_key)"
    " VALUES (?, ?, ?, ?, ?, ?, NULL, ?, NULL, NULL, '{}', ?, 0, NULL, ?, NULL, NULL, ?, 0, ?)"
)


def _active_keys(kind: str, user: str, parent_id: str | None, active_limit: int | None) -> list[str | None]:
    """The unique keys a new job may hold while queued or running, tried in turn: a cleaning's one per
    parent; a limited generation's one per slot of its user; none otherwise."""
    if kind == KIND_CLEAN:
        return [f"{kind}:{user}:{parent_id}"]
    if active_limit is None:
        return [None]
    if active_limit < 1:
        raise InvalidInput("active_limit", f"must be at least 1, not {active_limit}")
    return [f"{kind}:{user}:{slot}" for slot in range(active_limit)]


def _job(row: Sequence[Any]) -> tuple[Job, int]:
    values = dict(zip(_JOB_COLUMNS, row, strict=True))
    version = values.pop("version")
    values["timings"] = json.loads(values["timings"])
    values["params"] = json.loads(values["params"])
    values["remote_run"] = json.loads(values["remote_run"]) if values["remote_run"] else None
    values["holder"] = json.loads(values["holder"]) if values["holder"] else None
    for name in ("created_at", "started_at", "finished_at", "updated_at", "lease_until"):
        values[name] = utc_time(values[name])
    return Job(**values), version


def _event(row: Sequence[Any]) -> Event:
    values = dict(zip(_EVENT_COLUMNS, row, strict=True))
    return Event(**{**values, "created_at": utc_time(values["created_at"]), "seen": bool(values["seen"])})


class JobStore:
    """Jobs and their events in one database; safe to share between threads and processes."""

    def __init__(self, connect: Callable[[], Any], dialect: _Dialect, *, clock: Clock = time.time) -> None:
        self._connect = connect
        self._conn = connect()
        self._dialect = dialect
        self._clock = clock
        self._lock = threading.Lock()
        with self._lock:
            cur = self._conn.cursor()
            for statement in dialect.schema:
                cur.execute(statement)
            add_missing_columns(cur, "jobs", dialect.added_columns)

    @classmethod
    def sqlite(cls, path: Path, *, clock: Clock = time.time) -> JobStore:
        """A store in a SQLite file (WAL, shared by the worker and the UI)."""
        return cls(lambda: connect_sqlite(Path(path)), _SQLITE, clock=clock)

    @classmethod
    def mysql(cls, settings: MySQLSettings, *, clock: Clock = time.time) -> JobStore:
        """A store in an existing MySQL or MariaDB database."""

        def connect() -> pymysql.connections.Connection:
            return pymysql.connect(**settings.connect_args(), charset="utf8mb4", autocommit=True)

        return cls(connect, _MYSQL, clock=clock)

    @classmethod
    def default(cls, *, clock: Clock = time.time, settings: Settings | None = None) -> JobStore:
        """The configured store (of ``settings``, else of get_settings()): the embedded
        ``state/jobs.sqlite``, or MySQL when chosen."""
        settings = settings or get_settings()
        if settings.job_store == "mysql":
            if settings.mysql is None:
                raise InvalidInput(
                    "ORCHESTRATOR_MYSQL_HOST", "the mysql job store needs ORCHESTRATOR_MYSQL_HOST"
                )
            return cls.mysql(settings.mysql, clock=clock)
        return cls.sqlite(_sqlite_path(settings), clock=clock)

    def close(self) -> None:
        """Release the database connection."""
        self._conn.close()

    @contextmanager
    def _cursor(self, *, write: bool = False) -> Iterator[Any]:
        """A cursor under the store's lock, inside a write transaction when asked."""
        with self._lock:
            if not self._dialect.alive(self._conn):
                self._conn = self._connect()
            cur = self._conn.cursor()
            if not write:
                yield cur
                return
            cur.execute(self._dialect.begin)
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def _run(self, cur: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        cur.execute(sql.replace("?", self._dialect.placeholder), tuple(params))
        return cur

    # -- creating and reading ------------------------------------------------------------------------

    def create_job(
        self,
        job_id: str,
        user: str,
        kind: str,
        *,
        parent_id: str | None = None,
        route: str | None = None,
        rows_in: int | None = None,
        params: dict[str, Any] | None = None,
        active_limit: int | None = None,
    ) -> tuple[Job, bool]:
        """Record a queued job; returns ``(job, created)``.

        A cleaning job for a parent that already has a queued or running one is not created twice:
        the existing job comes back with ``created=False`` (a double click launches one run). With an
        ``active_limit``, a generation is refused with Busy while its user has that many queued or running.
        """
        check_job_id(job_id)
        check_user(user)
        _check_choice("kind", kind, KINDS)
        if kind == KIND_CLEAN and parent_id is None:
            raise InvalidInput(
                "parent_id", "a cleaning job needs the generation job whose raw data it cleans"
            )
        if parent_id is not None:
            check_job_id(parent_id)
        _check_choice("route", route, ROUTES, optional=True)
        _check_rows("rows_in", rows_in)
        try:
            params_text = json.dumps(params or {}, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise InvalidInput("params", f"must be JSON-serialisable ({exc})") from None
        keys = _active_keys(kind, user, parent_id, active_limit)
        while True:
            for key in keys:  # a unique key per active job: a slot taken is an integrity error, at once
                now = self._clock()
                values = (job_id, user, kind, parent_id, QUEUED, route, rows_in, params_text, now, now, key)
                try:
                    with self._cursor(write=True) as cur:
                        if parent_id is not None:
                            self._check_parent_kept(cur, parent_id)
                        self._run(cur, _INSERT_JOB, values)
                except self._dialect.integrity_error:
                    continue
                return self.get(job_id), True
            holders = self._holding(keys)
            if kind == KIND_CLEAN and holders:
                return holders[0], False
            if self._find(job_id) is not None:
                raise AlreadyExists(f"job {job_id} exists already; choose another job id")
            if len(holders) == len(keys):
                raise Busy(
                    f"{user} has {len(holders)} generation{'s' * (len(holders) > 1)} queued or running "
                    f"({', '.join(j.job_id for j in holders)}), as many as one user may have at once; wait "
                    "for one to finish, or cancel one on the Jobs page, then generate again (the limit is "
                    "ORCHESTRATOR_MAX_ACTIVE_GENERATIONS). Nothing was recorded"
                )
            # an active job finished between the statements: try again

    def _holding(self, keys: Sequence[str | None]) -> list[Job]:
        """The active jobs holding ``keys``."""
        held = [key for key in keys if key is not None]
        if not held:
            return []
        marks = ", ".join("?" * len(held))
        columns = ", ".join(_JOB_COLUMNS)
        sql = f"SELECT {columns} FROM jobs WHERE active_key IN ({marks}) ORDER BY created_at, job_id"
        with self._cursor() as cur:
            rows = self._run(cur, sql, held).fetchall()
        return [_job(row)[0] for row in rows]

    def _check_parent_kept(self, cur: Any, parent_id: str) -> None:
        """Inside a write transaction: refuse a job for a parent being deleted (see mark_deleted), holding the
        parent's row so the two cannot cross."""
        sql = "SELECT deleted_at FROM jobs WHERE job_id = ?"
        row = self._run(cur, sql, (parent_id,)).fetchone()
        # lock only a recorded parent: on MySQL a locking read of a missing row locks a gap, where concurrent
        # launches' inserts then deadlock (and a parent without a record has none to delete)
        if row is not None and self._dialect.locking:
            row = self._run(cur, sql + self._dialect.locking, (parent_id,)).fetchone()
        if row is not None and row[0] is not None:
            raise NotFound(f"job {parent_id} does not exist (it was deleted)")

    def _find(self, job_id: str) -> tuple[Job, int] | None:
        with self._cursor() as cur:
            row = self._run(
                cur,
                f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs WHERE job_id = ? AND deleted_at IS NULL",
                (job_id,),
            ).fetchone()
        return None if row is None else _job(row)

    def get(self, job_id: str, *, user: str | None = None, is_admin: bool = False) -> Job:
        """One job; with ``user`` it must be theirs (unless admin), else it does not exist for them."""
        found = self._find(job_id)
        if found is None or (user is not None and not is_admin and found[0].user != user):
            raise NotFound(f"job {job_id} does not exist")
        return found[0]

    def list_jobs(
        self,
        user: str,
        is_admin: bool = False,
        *,
        kind: str | None = None,
        parent_id: str | None = None,
        limit: int = 200,
    ) -> list[Job]:
        """Jobs newest first: the user's own, or everyone's for an admin."""
        _check_choice("kind", kind, KINDS, optional=True)
        clauses, params = ["deleted_at IS NULL"], []
        for column, value in (("user", None if is_admin else user), ("kind", kind), ("parent_id", parent_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}"
        with self._cursor() as cur:
            rows = self._run(
                cur,
                f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs {where} ORDER BY created_at DESC, job_id DESC"
                " LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_job(row)[0] for row in rows]

    # -- transitions ---------------------------------------------------------------------------------

    def start(
        self,
        job_id: str,
        *,
        engine: str | None = None,
        lease_seconds: float | None = None,
        holder: Mapping[str, Any] | None = None,
    ) -> Job:
        """Begin an attempt (again, if the last worker was lost): running, one more attempt counted.

        With ``lease_seconds`` the attempt holds the job that long, a lease its ``holder`` (a worker process,
        see orchestrator.jobs.holders) renews while it runs (renew): a start while another holder's lease runs
        raises JobHeld and changes nothing, so a job launched by a click and taken by the scheduler too runs
        once. The holder of the lease may start the next attempt itself (after a recovery, see take_over). A
        start without a lease may take over a running job at any time.
        """
        _check_choice("engine", engine, engines.ENGINES, optional=True)
        _check_lease(lease_seconds)
        worker = holder.get("worker") if holder else None

        def attempt(job: Job, now: float) -> dict[str, Any]:
            held_by = (job.holder or {}).get("worker")
            if (
                job.state == RUNNING
                and job.lease_until is not None
                and job.lease_until.timestamp() > now
                and (worker is None or held_by != worker)
            ):
                raise JobHeld(job_id, job.lease_until)
            return {
                "attempts": job.attempts + 1,
                "started_at": job.started_at.timestamp() if job.started_at else now,
                "engine": engine or job.engine,
                "lease_until": None if lease_seconds is None else now + lease_seconds,
                "holder": json.dumps(dict(holder), sort_keys=True) if holder else None,
            }

        return self._change(job_id, RUNNING, attempt)

    def renew(self, job_id: str, worker: str, lease_seconds: float) -> Job:
        """The holder ``worker`` is alive and still works on the job: its lease runs ``lease_seconds`` from
        now. HoldLost if the job is no longer running under that worker (it must stop)."""
        _check_lease(lease_seconds)

        def lease(job: Job, now: float) -> dict[str, Any]:
            if job.state != RUNNING or (job.holder or {}).get("worker") != worker:
                raise HoldLost(job_id)
            return {"lease_until": now + lease_seconds}

        return self._change(job_id, None, lease)

    def record_child(self, job_id: str, worker: str, child: Mapping[str, Any]) -> Job:
        """Keep with the holder where its attempt runs: the local process (pid, started) running the job's
        Spark run (run_id), so a worker that finds the holder gone can follow the run or end it."""

        def where(job: Job, now: float) -> dict[str, Any]:
            if job.state != RUNNING or (job.holder or {}).get("worker") != worker:
                raise HoldLost(job_id)
            return {"holder": json.dumps({**job.holder, "child": dict(child)}, sort_keys=True)}

        return self._change(job_id, None, where)

    def take_over(
        self, job_id: str, *, gone: str | None, holder: Mapping[str, Any], lease_seconds: float
    ) -> Job:
        """Hold a running job whose holder ``gone`` (its worker id, None for an attempt that recorded none) is
        gone, to recover its attempt: the same attempt, now held by ``holder`` for ``lease_seconds``, its
        child (a run still going) kept. JobHeld if another worker took it over first or it moved on."""
        _check_lease(lease_seconds)

        def adopt(job: Job, now: float) -> dict[str, Any]:
            current = job.holder or {}
            if job.state != RUNNING or current.get("worker") != gone:
                raise JobHeld(job_id, job.lease_until or utc_time(now))
            child = {"child": current["child"]} if "child" in current else {}
            return {
                "lease_until": now + lease_seconds,
                "holder": json.dumps({**holder, **child}, sort_keys=True),
            }

        return self._change(job_id, None, adopt)

    def running_jobs(self, kind: str) -> list[Job]:
        """Every running job of ``kind``, the oldest first (a recovery looks for those held by none)."""
        _check_choice("kind", kind, KINDS)
        with self._cursor() as cur:
            rows = self._run(
                cur,
                f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs"
                " WHERE kind = ? AND state = ? AND deleted_at IS NULL ORDER BY created_at, job_id",
                (kind, RUNNING),
            ).fetchall()
        return [_job(row)[0] for row in rows]

    def record_stage(self, job_id: str, stage: str, seconds: float) -> Job:
        """Add how long one stage of a running job took (shown per stage in the job view)."""
        if not isinstance(seconds, int | float) or seconds < 0:
            raise InvalidInput("seconds", f"{seconds!r} must be a duration of 0 seconds or more")

        def timings(job: Job, now: float) -> dict[str, Any]:
            if job.state != RUNNING:
                raise InvalidInput(
                    "state", f"job {job_id} is {job.state}; stages are timed only while it runs"
                )
            return {"timings": json.dumps({**job.timings, stage: float(seconds)})}

        return self._change(job_id, None, timings)

    def record_progress(self, job_id: str, done: float, text: str) -> Job:
        """Say how far a running job has come (``done`` from 0 to 1) and what it is doing, for the pages that
        follow it. A job that was cancelled meanwhile raises JobCancelled, so its worker stops there."""
        if not isinstance(done, int | float) or not 0 <= done <= 1:
            raise InvalidInput("done", f"{done!r} must be a share from 0 to 1")

        def progress(job: Job, now: float) -> dict[str, Any]:
            if job.state == CANCELLED:
                raise JobCancelled(job_id)
            if job.state != RUNNING:
                raise InvalidInput(
                    "state", f"job {job_id} is {job.state}; progress is told only while it runs"
                )
            return {"progress": float(done), "progress_text": text[:MAX_PROGRESS_CHARS]}

        return self._change(job_id, None, progress)

    def record_remote_run(
        self, job_id: str, *, service: str, run_id: str, state: str, url: str | None = None
    ) -> Job:
        """Say which run on which service (local Spark, Databricks, Data Factory) is cleaning a job, where it
        stands and where its own page is, so its owner can find it there. Told from the start of the job's
        attempt on, and after its end too (a cancelled job's run ends after it); kept with the job."""
        for name, value in (("service", service), ("run_id", run_id), ("state", state)):
            if not isinstance(value, str) or not value:
                raise InvalidInput(name, f"{value!r} must be a non-empty text")

        def run(job: Job, now: float) -> dict[str, Any]:
            if job.started_at is None:
                raise InvalidInput(
                    "state", f"job {job_id} is {job.state}; a run is told once the job started"
                )
            record = {"service": service, "run_id": run_id, "state": state, "url": url}
            return {"remote_run": json.dumps(record, sort_keys=True)}

        return self._change(job_id, None, run)

    def record_params(self, job_id: str, **values: Any) -> Job:
        """Keep ``values`` in a job's params beside those it was launched with, in any state: what is done
        with a job after its end, such as profiling its outputs (service.profile_in_background), stays with
        the job."""
        try:
            json.dumps(values)
        except (TypeError, ValueError) as exc:
            raise InvalidInput("params", f"must be JSON-serialisable ({exc})") from None
        return self._change(
            job_id, None, lambda job, now: {"params": json.dumps({**job.params, **values}, sort_keys=True)}
        )

    def retry(self, job_id: str, error: str) -> Job:
        """An attempt failed and the queue will deliver the job again: back to queued, error kept."""
        return self._change(
            job_id,
            QUEUED,
            lambda job, now: {"error": error[:MAX_ERROR_CHARS], "lease_until": None, "holder": None},
        )

    def succeed(
        self, job_id: str, *, rows_out: int, rows_quarantined: int, timings: dict[str, float] | None = None
    ) -> Job:
        """Finish a running job and tell its owner; a repeat of the same call changes nothing."""
        _check_rows("rows_out", rows_out)
        _check_rows("rows_quarantined", rows_quarantined)
        return self._change(
            job_id,
            SUCCEEDED,
            lambda job, now: {
                "rows_out": rows_out,
                "rows_quarantined": rows_quarantined,
                "timings": json.dumps({**job.timings, **(timings or {})}),
                "error": None,
            },
        )

    def fail(self, job_id: str, error: str) -> Job:
        """Give up on a job, keeping the error message for its owner."""
        return self._change(job_id, FAILED, lambda job, now: {"error": error[:MAX_ERROR_CHARS]})

    def fail_silent(self, kind: str, silent_seconds: float, reason: str) -> list[Job]:
        """Fail the queued or running jobs of ``kind`` that nothing has written to for ``silent_seconds``
        (their worker was lost, or never started), saying ``reason`` and since when; a job heard from
        meanwhile is left as it is. For jobs a worker takes at once, as a generation is."""
        _check_choice("kind", kind, KINDS)
        cutoff = self._clock() - silent_seconds
        with self._cursor() as cur:
            rows = self._run(
                cur,
                f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs"
                " WHERE kind = ? AND state IN (?, ?) AND updated_at < ?",
                (kind, QUEUED, RUNNING, cutoff),
            ).fetchall()

        def lost(job: Job, now: float) -> dict[str, Any]:
            if job.state not in ACTIVE_STATES or job.updated_at.timestamp() >= cutoff:
                raise _Heard
            return {"error": f"{reason} (no word from its worker since {job.updated_at:%Y-%m-%d %H:%M} UTC)"}

        ended = []
        for row in rows:
            with suppress(_Heard, IllegalTransition):  # it moved on after all
                ended.append(self._change(_job(row)[0].job_id, FAILED, lost))
        return ended

    def cancel(
        self, job_id: str, *, user: str | None = None, is_admin: bool = False, reason: str | None = None
    ) -> Job:
        """Stop a queued or running job (the worker checks the state between stages), saying why if given."""
        self.get(job_id, user=user, is_admin=is_admin)
        return self._change(
            job_id, CANCELLED, lambda job, now: {"error": reason[:MAX_ERROR_CHARS]} if reason else {}
        )

    def _change(
        self, job_id: str, target: str | None, compute: Callable[[Job, float], dict[str, Any]]
    ) -> Job:
        """Apply one change as a compare-and-set on the version; a finished job asked to finish the
        same way again is returned unchanged, so retried steps are harmless."""
        while True:
            found = self._find(job_id)
            if found is None:
                raise NotFound(f"job {job_id} does not exist")
            job, version = found
            if target is not None:
                if target == job.state and target in TERMINAL_STATES:
                    return job
                if target not in TRANSITIONS[job.state]:
                    raise IllegalTransition(job_id, job.state, target)
            now = self._clock()
            values = compute(job, now)
            if target is not None:
                values["state"] = target
                if target in TERMINAL_STATES:
                    values.update(finished_at=now, active_key=None)
            values.update(updated_at=now, version=version + 1)
            with self._cursor(write=True) as cur:
                assignments = ", ".join(f"{column} = ?" for column in values)
                self._run(
                    cur,
                    f"UPDATE jobs SET {assignments} WHERE job_id = ? AND version = ?",
                    (*values.values(), job_id, version),
                )
                if cur.rowcount != 1:
                    continue  # another process changed the job first: decide again on its new state
                if target in (SUCCEEDED, FAILED):
                    self._add_event(cur, job, target, values, now)
            return self.get(job_id)

    def _add_event(self, cur: Any, job: Job, target: str, values: dict[str, Any], now: float) -> None:
        label = _KIND_LABEL[job.kind]
        if target == SUCCEEDED:
            kind = f"{label} complete"
            message = f"{job.job_id}: " + _DONE_MESSAGE[job.kind].format(**values)
        else:
            kind = f"{label} failed"
            message = f"{job.job_id}: {values['error']}"
        self._insert_event(cur, job, kind, message, now)

    def _insert_event(self, cur: Any, job: Job, kind: str, message: str, now: float) -> None:
        self._run(
            cur,
            "INSERT INTO job_events (job_id, user, kind, message, created_at, seen)"
            " VALUES (?, ?, ?, ?, ?, 0)",
            (job.job_id, job.user, kind, message, now),
        )

    # -- deleting -----------------------------------------------------------------------------------

    def mark_deleted(self, job_id: str, *, user: str | None = None, is_admin: bool = False) -> list[Job]:
        """Delete a finished job and, for a generation, every cleaning of its data: from now on they are gone
        for every reader and no cleaning can be launched from them; their notifications go at once. Their
        data is removed next (see service.delete_job) and their records last (purge). A job, or one of its
        cleanings, that is queued or running is refused, and nothing changes."""
        self.get(job_id, user=user, is_admin=is_admin)
        locking = self._dialect.locking
        with self._cursor(write=True) as cur:
            # the job's row first, as a launch from it holds it first (_check_parent_kept): one waits
            self._run(cur, f"SELECT job_id FROM jobs WHERE job_id = ?{locking}", (job_id,)).fetchall()
            rows = self._run(
                cur,
                f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs"
                f" WHERE (job_id = ? OR parent_id = ?) AND deleted_at IS NULL{locking}",
                (job_id, job_id),
            ).fetchall()
            family = sorted((_job(row)[0] for row in rows), key=lambda j: j.job_id != job_id)
            if not family or family[0].job_id != job_id:
                raise NotFound(f"job {job_id} does not exist")
            for job in family:
                if job.state in ACTIVE_STATES:
                    which = "it" if job.job_id == job_id else f"its cleaning {job.job_id}"
                    raise InvalidInput(
                        "job_id",
                        f"job {job_id} cannot be deleted while {which} is {job.state}; cancel "
                        f"{job.job_id} or wait for it to finish, then delete {job_id}",
                    )
            ids = [job.job_id for job in family]
            marks = ", ".join("?" for _ in ids)
            self._run(
                cur,
                f"UPDATE jobs SET deleted_at = ?, active_key = NULL, version = version + 1"
                f" WHERE job_id IN ({marks})",
                (self._clock(), *ids),
            )
            self._run(cur, f"DELETE FROM job_events WHERE job_id IN ({marks})", ids)
        return family

    def deleted_jobs(self) -> list[Job]:
        """The jobs deleted whose data is not all removed yet, cleanings before the generations they clean."""
        with self._cursor() as cur:
            rows = self._run(
                cur,
                f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs WHERE deleted_at IS NOT NULL"
                " ORDER BY kind, job_id",
            ).fetchall()
        return [_job(row)[0] for row in rows]

    def purge(self, job_ids: Sequence[str]) -> int:
        """Forget deleted jobs once their data is removed; returns how many records went."""
        if not job_ids:
            return 0
        marks = ", ".join("?" for _ in job_ids)
        with self._cursor(write=True) as cur:
            self._run(
                cur, f"DELETE FROM jobs WHERE deleted_at IS NOT NULL AND job_id IN ({marks})", tuple(job_ids)
            )
            return cur.rowcount

    # -- events --------------------------------------------------------------------------------------

    def notify(self, job_id: str, kind: str, message: str) -> None:
        """Tell a job's owner what happened to the job after its end (such as "Quality profile ready"), as
        its end was told: shown once, by the frame's toast."""
        job = self.get(job_id)
        with self._cursor(write=True) as cur:
            self._insert_event(cur, job, kind, message, self._clock())

    def list_unseen(self, user: str) -> list[Event]:
        """The user's notifications not yet shown, oldest first."""
        with self._cursor() as cur:
            rows = self._run(
                cur,
                f"SELECT {', '.join(_EVENT_COLUMNS)} FROM job_events WHERE user = ? AND seen = 0"
                " ORDER BY event_id",
                (user,),
            ).fetchall()
        return [_event(row) for row in rows]

    def mark_seen(self, user: str, event_ids: Sequence[int]) -> int:
        """Mark the user's notifications as shown (others' are left alone); returns how many changed."""
        if not event_ids:
            return 0
        marks = ", ".join("?" for _ in event_ids)
        with self._cursor(write=True) as cur:
            self._run(
                cur,
                f"UPDATE job_events SET seen = 1 WHERE user = ? AND seen = 0 AND event_id IN ({marks})",
                (user, *event_ids),
            )
            return cur.rowcount

    # -- schedulers ----------------------------------------------------------------------------------

    def beat(
        self,
        scheduler_id: str,
        *,
        host: str,
        pid: int,
        started_at: float,
        next_at: datetime,
        routes: Sequence[str],
    ) -> None:
        """Record that a scheduler is alive and when it drains next; the records of long-lost ones go."""
        for route in routes:
            _check_choice("routes", route, ROUTES)
        now = self._clock()
        with self._cursor(write=True) as cur:
            self._run(
                cur,
                "DELETE FROM schedulers WHERE scheduler_id = ? OR seen_at < ?",
                (scheduler_id, now - _SCHEDULER_FORGOTTEN_SECONDS),
            )
            self._run(
                cur,
                f"INSERT INTO schedulers ({', '.join(_SCHEDULER_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (scheduler_id, host[:255], pid, started_at, now, next_at.timestamp(), ",".join(routes)),
            )

    def end_scheduler(self, scheduler_id: str) -> None:
        """A scheduler stopped: forget it at once."""
        with self._cursor(write=True) as cur:
            self._run(cur, "DELETE FROM schedulers WHERE scheduler_id = ?", (scheduler_id,))

    def live_schedulers(self) -> list[Scheduler]:
        """Schedulers heard from within SCHEDULER_SILENT_SECONDS, the latest heard first."""
        with self._cursor() as cur:
            rows = self._run(
                cur,
                f"SELECT {', '.join(_SCHEDULER_COLUMNS)} FROM schedulers WHERE seen_at >= ?"
                " ORDER BY seen_at DESC, scheduler_id",
                (self._clock() - SCHEDULER_SILENT_SECONDS,),
            ).fetchall()
        return [_scheduler(row) for row in rows]

    def served(self, route: str) -> datetime | None:
        """The last scheduled drain time of ``route`` a scheduler served, None if none ever was."""
        _check_choice("route", route, ROUTES)
        with self._cursor() as cur:
            row = self._run(cur, "SELECT served_at FROM schedule_served WHERE route = ?", (route,)).fetchone()
        return None if row is None else utc_time(row[0])

    def record_served(self, route: str, at: datetime) -> None:
        """A scheduler drained ``route`` for its scheduled time ``at`` (a later time is never moved back)."""
        _check_choice("route", route, ROUTES)
        with self._cursor(write=True) as cur:
            row = self._run(
                cur, f"SELECT served_at FROM schedule_served WHERE route = ?{self._dialect.locking}", (route,)
            ).fetchone()
            if row is not None and row[0] >= at.timestamp():
                return
            self._run(cur, "DELETE FROM schedule_served WHERE route = ?", (route,))
            self._run(
                cur, "INSERT INTO schedule_served (route, served_at) VALUES (?, ?)", (route, at.timestamp())
            )

    # -- stored settings -----------------------------------------------------------------------------

    def stored_settings(self) -> dict[str, StoredSetting]:
        """The settings administrators stored, by environment name."""
        with self._cursor() as cur:
            rows = self._run(
                cur, f"SELECT {', '.join(_STORED_SETTING_COLUMNS)} FROM stored_settings"
            ).fetchall()
        return {row[0]: _stored_setting(row) for row in rows}

    def set_settings(self, values: Mapping[str, str], *, user: str) -> list[SettingChange]:
        """Store new values of editable settings (config.EDITABLE, by environment name) as ``user``, all or
        none, and audit each change; returns the changes (a value stored already is left as it is). Refused,
        storing nothing: unless ``user`` is an administrator now (asked of the user store, never taken from
        the caller), for a setting the environment or the secrets file sets (it wins) and for a bad value."""
        editable = {setting.name: setting for setting in EDITABLE}
        for name in values:
            if name not in editable:
                raise InvalidInput(name, f"is not a stored setting; those are {', '.join(editable)}")
        _check_administrator(user, ", ".join(values) or "the stored settings")
        texts = {}
        for name, text in values.items():
            if lookup(name):
                raise InvalidInput(
                    name,
                    "is set in the environment or the secrets file, which wins over a stored value; "
                    "change it there",
                )
            texts[name] = str(editable[name].value_of(text))
        now = self._clock()
        changes = []
        with self._cursor(write=True) as cur:
            for name, text in texts.items():
                row = self._run(
                    cur, f"SELECT value FROM stored_settings WHERE name = ?{self._dialect.locking}", (name,)
                ).fetchone()
                if row and row[0] == text:
                    continue
                old = row[0] if row else str(editable[name].default)
                self._run(cur, "DELETE FROM stored_settings WHERE name = ?", (name,))
                self._run(
                    cur,
                    f"INSERT INTO stored_settings ({', '.join(_STORED_SETTING_COLUMNS)}) VALUES (?, ?, ?, ?)",
                    (name, text, user, now),
                )
                self._run(
                    cur,
                    "INSERT INTO setting_changes (name, old_value, new_value, changed_by, changed_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (name, old, text, user, now),
                )
                changes.append(SettingChange(cur.lastrowid, name, old, text, user, utc_time(now)))
        _stored_read.clear()  # this process uses the new values at once, the others within seconds
        return changes

    def setting_changes(self, limit: int = 20) -> list[SettingChange]:
        """The last ``limit`` changes of stored settings, the latest first."""
        with self._cursor() as cur:
            rows = self._run(
                cur,
                f"SELECT {', '.join(_SETTING_CHANGE_COLUMNS)} FROM setting_changes"
                " ORDER BY change_id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_setting_change(row) for row in rows]


def _stored_setting(row: Sequence[Any]) -> StoredSetting:
    values = dict(zip(_STORED_SETTING_COLUMNS, row, strict=True))
    return StoredSetting(**{**values, "set_at": utc_time(values["set_at"])})


def _setting_change(row: Sequence[Any]) -> SettingChange:
    values = dict(zip(_SETTING_CHANGE_COLUMNS, row, strict=True))
    return SettingChange(**{**values, "changed_at": utc_time(values["changed_at"])})


def _sqlite_path(settings: Settings) -> Path:
    """The embedded job store's database file."""
    return settings.state_dir / "jobs.sqlite"


def _check_administrator(user: str, what: str) -> None:
    """Refuse unless ``user`` is an administrator who may sign in, as the user store knows them now."""
    from orchestrator.auth import open_user_store  # only here: a drain on a cluster needs no user store

    account = open_user_store().get(user)
    if account is None or account.disabled_at is not None or not account.is_admin:
        raise NotAdministrator(f"{user!r} is not an administrator, and only one can change {what}; ask one")


_stored_read: dict[Hashable, tuple[float, dict[str, StoredSetting]]] = {}  # by database: when read, what


def read_stored_settings(settings: Settings) -> dict[str, StoredSetting]:
    """The settings administrators stored in ``settings``' job store, kept for STORED_SETTINGS_SECONDS since
    get_settings asks for them often. A SQLite store not created yet holds none (and is not created here);
    a store that cannot be reached leaves the values read last, and is asked again after that time."""
    where = (settings.job_store, settings.data_dir, settings.mysql)
    now = time.monotonic()
    read_at, values = _stored_read.get(where, (None, {}))
    if read_at is not None and now - read_at < STORED_SETTINGS_SECONDS:
        return values
    if settings.job_store == "mysql" or _sqlite_path(settings).exists():
        try:
            store = JobStore.default(settings=settings)
            try:
                values = store.stored_settings()
            finally:
                store.close()
        except (WorkbenchError, OSError, sqlite3.Error, pymysql.err.Error):
            pass  # unreachable now: the Settings page, which opens the store itself, shows why
    _stored_read[where] = (now, values)
    return values
