"""Generation on Spark: the job's chunks built by Spark tasks, its files the same as a local run's.

Every value is a function of (seed, table, column, row), so a chunk is built on its own from its row range:
the shop's order children only need the ids earlier orders used, which the driver counts first without
building rows (``OrderFamily.advance``), and raw line numbers, which the driver adds as it merges. Each task
(one chunk, a row of ``spark.range(n).mapInArrow``: no RDDs, so it runs the same over Spark Connect) writes
its chunk's raw lines, truth, answer-key entries and duplicates as part files to the job's staging folder in
the lake, then a small record of what it wrote. The driver watches those records for progress, then reads
the parts in chunk order and writes them through the same writers as a local run: raw/<table>.jsonl stays
one write-once file, byte for byte what a local run writes, and the truth and answer key hold the same rows
in the same order. The staging folder is removed before the manifest is written, and on any failure or
cancel (the Spark work is interrupted by its tag first).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchestrator.config import Settings
from orchestrator.domain.model import Contract
from orchestrator.generation import tables
from orchestrator.generation.generic import GenericBuilder
from orchestrator.generation.spec import GenerationSpec
from orchestrator.storage import LocalLake, Storage, open_lake, paths

POLL_SECONDS = 0.5  # how often the driver looks for finished chunks while Spark builds them
TELL_SECONDS = 2.0  # the longest the job record goes without news while Spark builds chunks
SPARK_SHARE = 0.5  # the share of the progress bar the Spark tasks fill; merging the parts fills the rest
RESULT_SCHEMA = pa.schema([("task", pa.int64())])


@dataclass(frozen=True)
class Task:
    """One chunk: rows [first, stop) of ``table`` (``family``: the shop's orders and their children, whose
    child ids start at ``offsets``)."""

    table: str
    first: int
    stop: int
    offsets: dict[str, int] = field(default_factory=dict)


class Plan:
    """A generation's chunks as Spark tasks, and what every task needs to build its chunk."""

    FAMILY = "family"

    def __init__(
        self,
        spec: GenerationSpec,
        user: str,
        job_id: str,
        contract: Contract,
        wanted: list[str],
        settings: Settings,
        storage: Storage | None = None,
    ) -> None:
        self.spec, self.user, self.job_id = spec, user, job_id
        self.contract, self.wanted = contract, wanted
        self.settings = settings.for_lake()  # the tasks' copy: it travels with every task
        # Tasks open the lake themselves: a local lake travels as it is, any other as its settings.
        self.lake = storage if isinstance(storage, LocalLake) else None
        self.staging = f"{paths.truth_dir(user, job_id)}/parts"
        self.tasks: list[Task] = []
        self.notes: list[str] = []

    def lay_out(self, world: tables.World) -> None:
        """The chunks in the order a local run writes them (and the shop's child ids at each)."""
        spec, chunk = self.spec, self.spec.chunk_rows
        if self.contract.generator != "shop":
            builder = GenericBuilder(self.contract, world)
            self.notes = builder.notes
            for name in self.wanted:
                self.tasks += [
                    Task(name, a, min(a + chunk, builder.rows[name]))
                    for a in _starts(builder.rows[name], chunk)
                ]
            return
        for name in (t for t in self.wanted if t in tables.DIMENSION_BUILDERS):
            rows = spec.dimension_rows(name)
            self.tasks += [Task(name, a, min(a + chunk, rows)) for a in _starts(rows, chunk)]
        if any(t not in tables.DIMENSION_BUILDERS for t in self.wanted):
            counter = tables.OrderFamily(world, set())
            for first in _starts(spec.rows, chunk):
                stop = min(first + chunk, spec.rows)
                self.tasks.append(Task(self.FAMILY, first, stop, dict(counter.offsets)))
                counter.advance(first, stop)

    def open_lake(self) -> Storage:
        return self.lake if self.lake is not None else open_lake(self.settings)

    def task_dir(self, index: int) -> str:
        return f"{self.staging}/{index:06d}"

    @property
    def live(self) -> str:
        """A marker the driver removes first when the job stops: a task that finds it gone writes nothing."""
        return f"{self.staging}/live/marker"


def _starts(total: int, size: int) -> range:
    return range(0, total, size)


# The workers' side ----------------------------------------------------------------------------------------
_WORLDS: dict[tuple, tuple] = {}  # per Python worker: the world of the job it last built chunks of


def _world(plan: Plan):
    from orchestrator.generation.generator import _Dirtier
    from orchestrator.generation.pools import load_pools

    key = (plan.job_id, plan.user, json.dumps(plan.spec.to_dict(), sort_keys=True), plan.contract.id)
    if key not in _WORLDS:
        _WORLDS.clear()
        world = tables.World(plan.spec, load_pools(plan.settings.pool_cache_dir, plan.spec.locales))
        builder = GenericBuilder(plan.contract, world) if plan.contract.generator != "shop" else None
        _WORLDS[key] = (world, builder, _Dirtier(plan.spec, world, plan.contract))
    return _WORLDS[key]


def _chunks(plan: Plan, task: Task) -> list[tables.Chunk]:
    world, builder, _ = _world(plan)
    if builder is not None:
        return [builder.chunk(task.table, task.first, task.stop)]
    if task.table != Plan.FAMILY:
        idx = np.arange(task.first, task.stop, dtype=np.int64)
        return [tables.DIMENSION_BUILDERS[task.table](world, idx)]
    family = tables.OrderFamily(world, {t for t in plan.wanted if t not in tables.DIMENSION_BUILDERS})
    family.offsets = dict(task.offsets)
    return list(family.chunk(task.first, task.stop).values())


def build_task(plan: Plan, index: int) -> None:
    """Build chunk ``index`` and write its parts, then the record of them (what the driver waits for)."""
    from orchestrator.generation import jsonfmt
    from orchestrator.generation.generator import piece

    lake = plan.open_lake()
    folder = plan.task_dir(index)
    _, _, dirtier = _world(plan)
    records = []
    for j, chunk in enumerate(_chunks(plan, plan.tasks[index])):
        dirtier.next_line.clear()  # lines counted from the chunk's start; the driver adds what came before
        made, counts = piece(dirtier, chunk)
        if not lake.exists(plan.live):
            return  # the job has stopped: leave nothing behind
        with lake.open_write(f"{folder}/{j}.jsonl") as handle:
            handle.write(jsonfmt.to_bytes(made.lines))
        for part, table in (("truth", made.truth), ("key", made.key_entries), ("dup", made.duplicates)):
            with lake.open_write(f"{folder}/{j}.{part}.arrow") as handle:
                handle.write(_ipc(table))
        records.append(
            {
                "table": made.table,
                "lines": made.line_count,
                "clean_rows": made.clean_rows,
                "counts": [[t, c, k, n] for (t, c, k), n in counts.items()],
            }
        )
    if lake.exists(plan.live):
        with lake.open_write(f"{folder}/done.json") as handle:
            handle.write(json.dumps(records).encode())


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _read_ipc(lake: Storage, path: str) -> pa.Table:
    with lake.open_read(path) as handle:
        return pa.ipc.open_stream(handle.read()).read_all()


def _tasks_of(plan: Plan):
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for index in batch.column(0).to_pylist():
                build_task(plan, index)
                yield pa.record_batch([pa.array([index], pa.int64())], schema=RESULT_SCHEMA)

    return run


# The driver's side ----------------------------------------------------------------------------------------
class _Action:
    """The Spark job building every chunk, run in a thread of its own under the job's tag, so the driver
    can watch the parts arrive and interrupt the job."""

    def __init__(self, spark, plan: Plan) -> None:
        self.spark, self.tag = spark, _tag(plan.job_id)
        n = len(plan.tasks)
        self.frame = spark.range(0, n, 1, max(n, 1)).mapInArrow(_tasks_of(plan), "task long")
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"spark-{plan.job_id}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.spark.addTag(self.tag)  # tags belong to the thread that starts the work
        try:
            self.frame.collect()
        except BaseException as error:  # handed to the driver's thread
            self.error = error
        finally:
            with contextlib.suppress(Exception):
                self.spark.removeTag(self.tag)

    def stop(self) -> None:
        if self.thread.is_alive():
            with contextlib.suppress(Exception):
                self.spark.interruptTag(self.tag)
        self.thread.join()


def _tag(job_id: str) -> str:
    return f"generate-{job_id}".replace("_", "-")[:120]


def _done(lake: Storage, plan: Plan) -> int:
    return sum(1 for path in lake.list(plan.staging) if path.endswith("/done.json"))


def _session(plan: Plan):
    """The product's Spark: a session on the Spark Connect server ORCHESTRATOR_SPARK_CONNECT names, in the
    job's own session there (released at the end), or a local Spark in this process on every core."""
    from orchestrator.cleaning.spark import connect

    point = connect.endpoint()
    if point is not None:
        address = connect.run_address(point, plan.job_id)
        marked = connect.REMOTE_MODE in os.environ
        spark = connect.remote_session(address, _tag(plan.job_id))

        def release() -> None:
            connect.stop_run(address, _tag(plan.job_id), release=True)
            with contextlib.suppress(Exception):  # the client too: the next job's session is a new one
                spark.stop()
            if not marked:  # pyspark marks the process as a Connect client for good; a local session is not
                os.environ.pop(connect.REMOTE_MODE, None)

        return spark, release
    from orchestrator.cleaning.spark.session import local_session

    spark = local_session(parallelism=os.cpu_count() or 2)
    return spark, spark.stop


@contextlib.contextmanager
def pieces(plan: Plan, storage: Storage, world: tables.World, spark=None):
    """(pieces, error counts, notes) for the generator's writers: the job's chunks built on Spark, merged
    in order. Leaves no part behind and no Spark work running, however it ends."""
    plan.lay_out(world)
    counts: Counter = Counter()
    release = None
    if spark is None:
        spark, release = _session(plan)
    with storage.open_write(plan.live) as handle:
        handle.write(b"")
    action = None
    try:
        action = _Action(spark, plan)
        yield _merge(plan, storage, action, counts), counts, plan.notes
    finally:
        storage.delete_prefix(f"{plan.staging}/live")
        if action is not None:
            action.stop()
        storage.delete_prefix(plan.staging)
        if release is not None:
            release()


def _merge(plan: Plan, lake: Storage, action: _Action, counts: Counter):
    from orchestrator.generation.generator import Piece

    n = len(plan.tasks)
    seen, told = -1, 0.0
    while action.thread.is_alive():
        action.thread.join(POLL_SECONDS)
        done = _done(lake, plan)
        # Told on every new chunk and every few seconds besides, so a cancel is seen soon even when the
        # chunks are slow.
        if done != seen or time.monotonic() - told > TELL_SECONDS:
            seen, told = done, time.monotonic()
            yield iter(()), SPARK_SHARE * done / max(n, 1), f"spark: {done:,} of {n:,} chunks built"
    if action.error is not None:
        raise action.error
    lines: Counter = Counter()

    def merged(index: int) -> Iterator[Piece]:
        folder = plan.task_dir(index)
        with lake.open_read(f"{folder}/done.json") as handle:
            records = json.loads(handle.read())
        for j, record in enumerate(records):
            name, offset = record["table"], lines[record["table"]]
            lines[name] += record["lines"]
            counts.update({(t, c, k): v for t, c, k, v in record["counts"]})
            with lake.open_read(f"{folder}/{j}.jsonl") as handle:
                raw = handle.read()
            yield Piece(
                name,
                raw,
                record["lines"],
                _read_ipc(lake, f"{folder}/{j}.truth.arrow"),
                _shift(_read_ipc(lake, f"{folder}/{j}.key.arrow"), offset, ("line",)),
                _shift(_read_ipc(lake, f"{folder}/{j}.dup.arrow"), offset, ("line", "source_line")),
                record["clean_rows"],
            )
        lake.delete_prefix(folder)

    for index in range(n):
        share = SPARK_SHARE + (1 - SPARK_SHARE) * (index + 1) / n
        yield merged(index), share, f"merging: {index + 1:,} of {n:,} chunks"
    lake.delete_prefix(plan.staging)  # before the manifest makes the job visible


def _shift(table: pa.Table, offset: int, columns: tuple[str, ...]) -> pa.Table:
    if not offset:
        return table
    for name in columns:
        position = table.schema.get_field_index(name)
        table = table.set_column(position, name, pc.add(table[name], pa.scalar(offset, pa.int64())))
    return table
