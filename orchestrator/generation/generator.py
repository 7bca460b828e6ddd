"""The generation job: clean rows -> injected errors -> raw JSON Lines, clean truth, answer key, manifest.

Everything streams in chunks of orders, so memory stays bounded whatever the row count, and every file
becomes visible only when complete (the manifest last: a raw job exists once its manifest does).
"""

from __future__ import annotations

import io
import json
import platform
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import orchestrator
from orchestrator.config import Settings, get_settings
from orchestrator.contracts import resolve
from orchestrator.domain import shop as s
from orchestrator.domain.contract import ContractSource
from orchestrator.domain.model import Contract
from orchestrator.domain.sizes import DISK_RESERVE_BYTES, size_text
from orchestrator.errors import AlreadyExists, InvalidInput
from orchestrator.generation import catalogue, jsonfmt, tables
from orchestrator.generation.corrupt import CONTRADICTIONS, CORRUPTIONS, Cells
from orchestrator.generation.generic import GenericBuilder
from orchestrator.generation.pools import load_pools, pool_library_versions
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs.store import new_job_id
from orchestrator.storage import Storage, open_lake, paths

Progress = Callable[[float, str], None]
Steps = Iterator[tuple[list[tables.Chunk], float, str]]  # chunks, the share of the work done, what was done
ENGINES = ("local", "spark", "auto")
SPARK_MIN_ROWS_ENV = "ORCHESTRATOR_SPARK_GENERATION_MIN_ROWS"
SPARK_MIN_ROWS = 5_000_000  # auto generates on Spark from this many rows of the driving table


@dataclass
class Piece:
    """What one chunk adds to the job's files, in the order they are written: its raw lines (an array, or
    their bytes) and how many, its truth, answer-key entries and duplicates (lines counted from the start of
    the table's raw file), and its clean rows."""

    table: str
    lines: pa.Array | bytes | memoryview
    line_count: int
    truth: pa.Table
    key_entries: pa.Table
    duplicates: pa.Table
    clean_rows: int


Pieces = Iterator[tuple[Iterator[Piece], float, str]]  # pieces, the share of the work done, what was done

ANSWER_KEY_SCHEMA = pa.schema(
    [
        ("table", pa.string()),
        ("line", pa.int64()),  # 0-based line of the raw file
        ("key", pa.int64()),  # the row's number from 1: its key where the table has one integer key
        ("column", pa.string()),  # null for an exact duplicate (the whole row)
        ("kind", pa.string()),
        ("clean", pa.string()),  # JSON text of the clean value
        ("dirty", pa.string()),  # JSON text of the value written to raw
    ]
)
DUPLICATE_SCHEMA = pa.schema(
    [
        ("table", pa.string()),
        ("line", pa.int64()),
        ("source_line", pa.int64()),
        ("key", pa.int64()),
        ("kind", pa.string()),
    ]
)


@dataclass(frozen=True)
class TableResult:
    rows: int  # lines in the raw file (duplicates included)
    truth_rows: int
    raw_path: str
    truth_path: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class GenerationResult:
    job_id: str
    user: str
    tables: dict[str, TableResult]
    answer_key_path: str
    duplicates_path: str
    manifest_path: str
    errors_injected: int
    seconds: float
    notes: tuple[str, ...] = ()  # what was generated otherwise than the contract asks

    def to_dict(self) -> dict:
        return {
            "job_id": self.job_id,
            "user": self.user,
            "tables": {name: vars(t) for name, t in self.tables.items()},
            "answer_key": self.answer_key_path,
            "duplicates": self.duplicates_path,
            "manifest": self.manifest_path,
            "errors_injected": self.errors_injected,
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
        }


class _Sink(io.RawIOBase):
    """A file-like face on a storage writer, for pyarrow's Parquet writer."""

    def __init__(self, writer) -> None:
        self._writer = writer
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        chunk = bytes(data)
        self._writer.write(chunk)
        self._pos += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._pos


class _ParquetOut:
    """A Parquet file streamed row group by row group into a storage writer."""

    def __init__(self, stack: ExitStack, storage: Storage, path: str, schema: pa.Schema) -> None:
        self.handle = stack.enter_context(storage.open_write(path))
        self._schema = schema
        self._writer = pq.ParquetWriter(
            pa.PythonFile(_Sink(self.handle), mode="w"), schema, compression="zstd"
        )
        stack.callback(self._writer.close)

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table.cast(self._schema))


def _truth_type(column: s.Column) -> pa.DataType:
    if column.type in (s.ID, s.FK, s.INT):
        return pa.int64()
    if column.type in (s.MONEY, s.DECIMAL1):
        return pa.float64()
    if column.type == s.TIMESTAMP:
        return pa.timestamp("s", tz="UTC")
    return pa.string()


def truth_schema(table: s.Table) -> pa.Schema:
    return pa.schema([(c.name, _truth_type(c)) for c in table.columns])


def _truth_array(column: s.Column, values, null: np.ndarray | None) -> pa.Array:
    if column.type in s.STRING_TYPES:
        return values
    if column.type == s.MONEY:
        values = np.asarray(values) / 100
    elif column.type == s.DECIMAL1:
        values = np.asarray(values) / 10
    return pa.array(values, _truth_type(column), mask=null)


def _fragment(column: s.Column, values, null: np.ndarray | None) -> pa.Array:
    if column.type in (s.CATEGORY, s.CODE):
        return jsonfmt.quote(values)  # the contract's own characters: a quote or backslash is escaped
    if column.type in s.STRING_TYPES:
        return jsonfmt.quote(values, escape=False)  # clean values come from filtered pools
    if column.type == s.TIMESTAMP:
        return jsonfmt.timestamps(values, null)
    if column.type == s.MONEY:
        return jsonfmt.scaled(values, 2, null)
    if column.type == s.DECIMAL1:
        return jsonfmt.scaled(values, 1, null)
    return jsonfmt.integers(values, null)


def _subset(values, rows: np.ndarray):
    return values.take(rows) if isinstance(values, pa.Array) else np.asarray(values)[rows]


@dataclass
class _Dirty:
    """The outcome of dirtying one chunk."""

    lines: pa.Array
    truth: pa.Table
    key_entries: pa.Table
    duplicates: pa.Table
    counts: Counter


class _Dirtier:
    def __init__(self, spec: GenerationSpec, world: tables.World, contract: Contract) -> None:
        self.spec = spec
        self.world = world
        self.constraints = contract.constraints
        self.next_line: Counter = Counter()
        # A generic contract's constraints are contradicted by their kind; the shop's as it always was.
        self.contradictions = {}
        if contract.generator != "shop":
            for table in contract.tables.values():
                for column in table.columns:
                    for kind, constraint in catalogue.constraint_kinds(
                        table, column, self.constraints
                    ).items():
                        self.contradictions[(table.name, column.name, kind)] = CONTRADICTIONS[constraint.kind]

    def run(self, chunk: tables.Chunk) -> _Dirty:
        table, idx, n = chunk.table, chunk.index, len(chunk)
        name = table.name
        keys = idx + 1
        frags = [_fragment(c, chunk.values[c.name], chunk.nulls.get(c.name)) for c in table.columns]
        truth = pa.table(
            [_truth_array(c, chunk.values[c.name], chunk.nulls.get(c.name)) for c in table.columns],
            schema=truth_schema(table),
        )
        clean_frags = list(frags)
        counts: Counter = Counter()
        entries: list[tuple[np.ndarray, str, str, pa.Array, pa.Array]] = []
        for position, column in enumerate(table.columns):
            if column.name in table.primary_key:  # keys stay clean; duplicates repeat them
                continue
            kinds = catalogue.cell_kinds(table, column, self.constraints)
            rates = np.array([self.spec.rate(name, k) for k in kinds])
            if not kinds or rates.sum() == 0:
                continue
            # A row is dirtied by the kind its draw falls on; most draws fall past every kind (clean cells).
            cumulative = np.cumsum(rates)
            draw = self.world.stream(name, column.name, "error").uniform(idx)
            hit = np.flatnonzero(draw < cumulative[-1])
            pick = np.searchsorted(cumulative, draw[hit], "right")
            changed_rows, changed_values = [], []
            for j, kind in enumerate(kinds):
                rows = hit[pick == j]
                if len(rows) == 0:
                    continue
                cells = Cells(
                    table,
                    column,
                    idx[rows],
                    _subset(chunk.values[column.name], rows),
                    frags[position].take(rows),
                    self.world.stream(name, column.name, kind),
                    self.world.as_of,
                    {k: v[rows] for k, v in chunk.aux.items()},
                )
                corrupt = self.contradictions.get((name, column.name, kind)) or CORRUPTIONS[kind]
                dirty, ok = corrupt(cells)
                rows, dirty = rows[ok], dirty.filter(pa.array(ok))
                if len(rows):
                    counts[(name, column.name, kind)] += len(rows)
                    entries.append((rows, column.name, kind, frags[position].take(rows), dirty))
                    changed_rows.append(rows)
                    changed_values.append(dirty)
            if changed_rows:
                rows = np.concatenate(changed_rows)
                order = np.argsort(rows, kind="stable")
                mask = np.zeros(n, dtype=bool)
                mask[rows] = True
                values = pa.concat_arrays(changed_values).take(order)
                frags[position] = pc.replace_with_mask(frags[position], pa.array(mask), values)

        lines = jsonfmt.join_lines(list(table.column_names), frags)
        exact, near, near_column = self._duplicates(table, idx)
        dup = exact | near
        line_of = self.next_line[name] + np.arange(n) + np.cumsum(dup) - dup
        self.next_line[name] += n + int(dup.sum())

        exact_rows, near_rows = np.flatnonzero(exact), np.flatnonzero(near)
        near_lines, near_entries = self._near_copies(table, frags, clean_frags, near_rows, near_column)
        all_lines = pa.concat_arrays([lines, lines.take(exact_rows), near_lines])
        order = np.empty(n + len(exact_rows) + len(near_rows), dtype=np.int64)
        base = self.next_line[name] - len(order)
        order[line_of - base] = np.arange(n)
        order[line_of[exact_rows] + 1 - base] = n + np.arange(len(exact_rows))
        order[line_of[near_rows] + 1 - base] = n + len(exact_rows) + np.arange(len(near_rows))
        counts[(name, None, "exact_duplicate")] += len(exact_rows)
        counts[(name, None, "near_duplicate")] += len(near_rows)

        key_parts = [
            _key_table(name, line_of[rows], keys[rows], column, kind, clean, dirty)
            for rows, column, kind, clean, dirty in entries
        ]
        none = pa.nulls(len(exact_rows), pa.string())
        key_parts.append(
            _key_table(name, line_of[exact_rows] + 1, keys[exact_rows], None, "exact_duplicate", none, none)
        )
        for column, rows, clean, dirty in near_entries:
            key_parts.append(
                _key_table(name, line_of[rows] + 1, keys[rows], column, "near_duplicate", clean, dirty)
            )
        dup_rows = np.flatnonzero(dup)
        duplicates = pa.table(
            {
                "table": pa.array([name] * len(dup_rows), pa.string()),
                "line": line_of[dup_rows] + 1,
                "source_line": line_of[dup_rows],
                "key": keys[dup_rows],
                "kind": np.where(exact[dup_rows], "exact_duplicate", "near_duplicate").astype(object),
            },
            schema=DUPLICATE_SCHEMA,
        )
        return _Dirty(all_lines.take(order), truth, pa.concat_tables(key_parts), duplicates, counts)

    def _duplicates(self, table: s.Table, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = self.world.stream(table.name, "duplicate").uniform(idx)
        exact_rate = self.spec.rate(table.name, "exact_duplicate")
        near_columns = catalogue.near_duplicate_columns(table)
        near_rate = self.spec.rate(table.name, "near_duplicate") if near_columns else 0.0
        exact = u < exact_rate
        near = (u >= exact_rate) & (u < exact_rate + near_rate)
        column = self.world.stream(table.name, "near_duplicate_column").integers(
            idx, max(len(near_columns), 1)
        )
        return exact, near, column

    @staticmethod
    def _near_copies(table, frags, clean_frags, rows, chosen):
        """Copies of ``rows`` with one string value reformatted (a space inside the quotes)."""
        near_columns = catalogue.near_duplicate_columns(table)
        copies = [f.take(rows) for f in frags]
        entries = []
        for ci, column in enumerate(near_columns):
            hit = np.flatnonzero(chosen[rows] == ci)
            if len(hit) == 0:
                continue
            position = table.column_names.index(column)
            source = copies[position].take(hit)
            varied = pc.if_else(
                pc.starts_with(source, '"'),
                pc.binary_join_element_wise('" ', pc.utf8_slice_codeunits(source, 1), ""),
                '" "',
            )
            mask = np.zeros(len(rows), dtype=bool)
            mask[hit] = True
            copies[position] = pc.replace_with_mask(copies[position], pa.array(mask), varied)
            entries.append((column, rows[hit], clean_frags[position].take(rows[hit]), varied))
        return jsonfmt.join_lines(list(table.column_names), copies), entries


def _key_table(table, lines, keys, column, kind, clean, dirty) -> pa.Table:
    n = len(lines)
    return pa.table(
        {
            "table": pa.array([table] * n, pa.string()),
            "line": np.asarray(lines, dtype=np.int64),
            "key": np.asarray(keys, dtype=np.int64),
            "column": pa.array([column] * n, pa.string()),
            "kind": pa.array([kind] * n, pa.string()),
            "clean": clean,
            "dirty": dirty,
        },
        schema=ANSWER_KEY_SCHEMA,
    )


class _Room:
    """Stops a generation before it fills the lake's disk, which the job store and every other job share. From
    what the lake has lost since the start and the share of the work done, it projects what the rest takes;
    when that would leave less than a reserve (1 GB, or a tenth of the space free at the start if less), the
    generation stops with an error that names the orders to lower."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._start = storage.free_bytes()
        self._reserve = None if self._start is None else min(DISK_RESERVE_BYTES, self._start // 10)

    def check(self, share: float) -> None:
        if self._start is None or share <= 0:
            return
        free = self._storage.free_bytes()
        used = max(self._start - free, 0)
        rest = used / share - used
        if free - rest < self._reserve:
            raise InvalidInput(
                "rows",
                f"the lake's disk would fill up: after {share:.0%} of the work this generation has taken "
                f"{size_text(used)} of the {size_text(self._start)} that were free, and the rest needs about "
                f"{size_text(rest)} more, leaving less than the {size_text(self._reserve)} kept free for the "
                "job store and other jobs; lower the orders (or free space on the disk). It stopped before "
                "filling the disk, and nothing of it was kept",
            )


def _chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for first in range(0, total, size):
        yield first, min(first + size, total)


def _versions() -> dict[str, str]:
    return {
        "orchestrator": orchestrator.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pyarrow": pa.__version__,
        **pool_library_versions(),
        "duckdb": duckdb.__version__,
    }


def _error_rates(counts: Counter, truth_rows: dict[str, int]) -> dict:
    """Achieved rates: per table, column and kind, errors over the table's clean rows."""
    report: dict = {}
    for (table, column, kind), count in sorted(
        counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])
    ):
        if not count:
            continue
        rows = truth_rows.get(table, 0)
        report.setdefault(table, {}).setdefault(column or "_row", {})[kind] = {
            "count": count,
            "rate": round(count / rows, 6) if rows else 0.0,
        }
    return report


def choose_engine(engine: str, spec: GenerationSpec, settings: Settings | None = None) -> str:
    """The engine a generation runs on: the one asked for, or for ``auto`` Spark from
    ORCHESTRATOR_SPARK_GENERATION_MIN_ROWS rows of the driving table on, this process below."""
    if engine not in ENGINES:
        raise InvalidInput(
            "engine", f"{engine!r} is not a generation engine; choose from {', '.join(ENGINES)}"
        )
    if engine != "auto":
        return engine
    from orchestrator.config import int_setting

    return "spark" if spec.rows >= int_setting(SPARK_MIN_ROWS_ENV, SPARK_MIN_ROWS, 1, 10**12) else "local"


def generate(
    spec: GenerationSpec,
    user: str,
    *,
    storage: Storage | None = None,
    settings: Settings | None = None,
    job_id: str | None = None,
    progress: Progress | None = None,
    engine: str = "local",
    spark=None,
) -> GenerationResult:
    """Generate a job's raw files, truth and answer key; on any failure nothing of the job is left. On the
    ``spark`` engine the chunks are built by Spark tasks (in ``spark``, a session, or one of the product's
    own), and the files are the same: raw byte for byte, truth and answer key row for row."""
    started = time.perf_counter()
    settings = settings or get_settings()
    storage = storage or open_lake(settings)
    paths.check_user(user)
    job_id = paths.check_job_id(job_id or new_job_id("generate"))
    raw_dir, truth_dir = paths.raw_dir(user, job_id), paths.truth_dir(user, job_id)
    if any(True for _ in storage.list(raw_dir)) or any(True for _ in storage.list(truth_dir)):
        raise AlreadyExists(f"job {job_id} exists already; raw data is written once")
    source = resolve(spec.contract, user, settings=settings)
    pools = load_pools(settings.pool_cache_dir, spec.locales)
    world = tables.World(spec, pools)
    wanted = [name for name in source.contract.table_names if name in spec.tables]
    engine = choose_engine(engine, spec, settings)
    try:
        if engine == "spark":
            from orchestrator.generation import on_spark

            plan = on_spark.Plan(spec, user, job_id, source.contract, wanted, settings, storage)
            with on_spark.pieces(plan, storage, world, spark) as pieces:
                return _write_job(
                    spec, user, job_id, storage, world, source, wanted, progress, started, pieces
                )
        return _write_job(spec, user, job_id, storage, world, source, wanted, progress, started)
    except BaseException:
        storage.delete_prefix(raw_dir)
        storage.delete_prefix(truth_dir)
        raise


def _shop_steps(spec: GenerationSpec, world: tables.World, wanted: list[str]) -> Steps:
    """The shop's own builders: its dimensions, then orders and their families, chunk by chunk."""
    dimensions = [t for t in wanted if t in tables.DIMENSION_BUILDERS]
    family_tables = {t for t in wanted if t not in tables.DIMENSION_BUILDERS}
    work = sum(spec.dimension_rows(t) for t in dimensions) + (spec.rows if family_tables else 0)
    done = 0
    for name in dimensions:
        for first, stop in _chunks(spec.dimension_rows(name), spec.chunk_rows):
            chunk = tables.DIMENSION_BUILDERS[name](world, np.arange(first, stop, dtype=np.int64))
            done += stop - first
            yield [chunk], done / work, f"{name}: {stop:,} rows"
    if family_tables:
        family = tables.OrderFamily(world, family_tables)
        for first, stop in _chunks(spec.rows, spec.chunk_rows):
            chunks = list(family.chunk(first, stop).values())
            done += stop - first
            yield chunks, done / work, f"orders: {stop:,} of {spec.rows:,}"


def _generic_steps(builder: GenericBuilder, wanted: list[str]) -> Steps:
    """Any other contract's tables, one after the other, chunk by chunk."""
    work = max(sum(builder.rows[t] for t in wanted), 1)
    done = 0
    for name in wanted:
        for chunk in builder.chunks(name):
            done += len(chunk)
            yield [chunk], done / work, f"{name}: {chunk.index[-1] + 1:,} of {builder.rows[name]:,} rows"


def steps(spec: GenerationSpec, world: tables.World, contract: Contract, wanted: list[str]):
    """The job's chunks in the order they are written, and the notes on what is generated otherwise than the
    contract asks."""
    if contract.generator == "shop":
        return _shop_steps(spec, world, wanted), []
    builder = GenericBuilder(contract, world)
    return _generic_steps(builder, wanted), builder.notes


def piece(dirtier: _Dirtier, chunk: tables.Chunk) -> tuple[Piece, Counter]:
    """A chunk dirtied: what it adds to the files, and the errors it carries by (table, column, kind)."""
    dirty = dirtier.run(chunk)
    name = chunk.table.name
    return Piece(
        name, dirty.lines, len(dirty.lines), dirty.truth, dirty.key_entries, dirty.duplicates, len(chunk)
    ), dirty.counts


def _write_job(
    spec: GenerationSpec,
    user: str,
    job_id: str,
    storage: Storage,
    world: tables.World,
    source: ContractSource,
    wanted: list[str],
    progress: Progress | None,
    started: float,
    built=None,
) -> GenerationResult:
    """Write the job's files from its pieces: built here chunk by chunk, or ``built`` elsewhere (a
    context's (pieces, error counts, notes), the counts complete once the pieces are)."""
    contract = source.contract
    room = _Room(storage)
    counts: Counter = Counter()
    truth_rows: Counter = Counter()
    lines: Counter = Counter()
    if built is None:
        dirtier = _Dirtier(spec, world, contract)
        chunk_steps, notes = steps(spec, world, contract, wanted)

        def local_pieces() -> Iterator[Piece]:
            for chunks, share, message in chunk_steps:

                def each(chunks=chunks) -> Iterator[Piece]:
                    for chunk in chunks:
                        made, chunk_counts = piece(dirtier, chunk)
                        counts.update(chunk_counts)
                        yield made

                yield each(), share, message

        produced: Pieces = local_pieces()
    else:
        produced, built_counts, notes = built
        counts = built_counts
    notes = [*source.warnings, *notes]  # fields of a contract from elsewhere that were ignored, first
    with ExitStack() as stack:
        raw = {t: stack.enter_context(storage.open_write(paths.raw_table(user, job_id, t))) for t in wanted}
        truth = {
            t: _ParquetOut(
                stack, storage, paths.truth_table(user, job_id, t), truth_schema(contract.tables[t])
            )
            for t in wanted
        }
        key_out = _ParquetOut(stack, storage, paths.answer_key(user, job_id), ANSWER_KEY_SCHEMA)
        dup_out = _ParquetOut(stack, storage, paths.duplicate_map(user, job_id), DUPLICATE_SCHEMA)

        def write(name: str, made: Piece) -> None:
            data = made.lines if isinstance(made.lines, bytes | memoryview) else jsonfmt.to_bytes(made.lines)
            raw[name].write(data)
            truth[name].write(made.truth)
            key_out.write(made.key_entries)
            dup_out.write(made.duplicates)

        # One writer thread overlaps file output (which releases the GIL) with building the next chunk;
        # at most two chunks wait, so memory stays bounded. The single worker keeps writes in order.
        writer = stack.enter_context(ThreadPoolExecutor(max_workers=1))
        pending: deque[Future] = deque()

        def emit(made: Piece) -> None:
            truth_rows[made.table] += made.clean_rows
            lines[made.table] += made.line_count
            pending.append(writer.submit(write, made.table, made))
            while len(pending) > 2:
                pending.popleft().result()

        for made_pieces, share, message in produced:
            for made in made_pieces:
                emit(made)
            room.check(share)
            if progress:
                progress(share, message)
        while pending:
            pending.popleft().result()
    written = {t: raw[t].result for t in wanted}
    results = {
        t: TableResult(
            rows=lines[t],
            truth_rows=truth_rows[t],
            raw_path=written[t].path,
            truth_path=paths.truth_table(user, job_id, t),
            sha256=written[t].sha256,
            bytes=written[t].size,
        )
        for t in wanted
    }
    contract_path = paths.raw_contract(user, job_id)
    with storage.open_write(contract_path) as handle:
        handle.write(source.text.encode())
    seconds = time.perf_counter() - started
    manifest = {
        "manifest_version": 1,
        "job_id": job_id,
        "user": user,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "spec": spec.to_dict(),
        "contract": {
            "id": contract.id,
            "version": contract.version,
            "path": contract_path,
            "sha256": source.sha256,
        },
        "notes": notes,
        "as_of": datetime.fromtimestamp(world.as_of, UTC).isoformat(),
        "versions": _versions(),
        "tables": {t: vars(r) for t, r in results.items()},
        "answer_key": paths.answer_key(user, job_id),
        "duplicates": paths.duplicate_map(user, job_id),
        "error_rates": _error_rates(counts, truth_rows),
        "errors_injected": sum(counts.values()),
        "seconds": round(seconds, 3),
    }
    manifest_path = paths.raw_manifest(user, job_id)
    with storage.open_write(manifest_path) as handle:
        handle.write(json.dumps(manifest, indent=2, sort_keys=True).encode())
    return GenerationResult(
        job_id=job_id,
        user=user,
        tables=results,
        answer_key_path=manifest["answer_key"],
        duplicates_path=manifest["duplicates"],
        manifest_path=manifest_path,
        errors_injected=manifest["errors_injected"],
        seconds=seconds,
        notes=tuple(notes),
    )
