"""Where a job's layer lives in the lake, and loading its files into DuckDB once per table.

A layer's tables, columns and their kinds are those of the contract its generation followed (the copy
beside its raw files). Raw JSON Lines are read with every column as text (so "N/A" in a number column
survives) and numbered by line (0-based, the answer key's ``line``); silver and gold Parquet keep their
types. Each loaded table holds ``__line`` plus one text column per schema column and, for numbers and
timestamps, a parsed twin (``<column>__n`` / ``<column>__t``) that is NULL where the text is not a valid
value.
"""

from __future__ import annotations

import codecs
import json
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from orchestrator.contracts import job_contract
from orchestrator.domain import model as m
from orchestrator.domain.contract import built_in
from orchestrator.errors import InvalidInput, NotFound, WorkbenchError
from orchestrator.storage import LocalLake, Storage, paths

RAW, SILVER, GOLD = "raw", "silver", "gold"
LAYERS = (RAW, SILVER, GOLD)
NUMBER, TIME, TEXT = "number", "timestamp", "text"
TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
NUMERIC_SCHEMA_TYPES = frozenset({m.ID, m.FK, *m.NUMERIC_TYPES})
MAX_OBJECT_BYTES = 32 * 1024 * 1024  # read_json's buffers are twice this


class UnreadableFile(WorkbenchError):
    """A file of the layer cannot be read; the message names the file and, where known, the line."""


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: object) -> str:
    """A SQL literal of a string, number or None."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def present(text: str) -> str:
    """SQL: the value is there (not null, not empty, not blank); cheap when it starts with a non-space."""
    return (
        f"CASE WHEN {text} IS NULL OR {text} = '' THEN FALSE WHEN ascii({text}) > 32 THEN TRUE "
        f"ELSE regexp_matches({text}, '\\S') END"
    )


@dataclass(frozen=True)
class ColumnInfo:
    """How to read one loaded column: its profile kind and the SQL of its text and parsed value."""

    name: str
    kind: str  # NUMBER, TIME or TEXT
    text: str
    value: str  # the parsed number / timestamp (NULL where invalid); the text for TEXT columns
    schema: m.Column | None = None

    @property
    def present(self) -> str:
        """The loaded boolean column: the value is there (see ``present``)."""
        return q(self.name + "__p")


@dataclass
class LoadedTable:
    """A table of the layer, materialised once in DuckDB and queried as ``relation``."""

    name: str
    relation: str
    path: str
    columns: dict[str, ColumnInfo] = field(default_factory=dict)
    schema: m.Table | None = None
    whole: bool = False  # every row the source sent is here (raw); a cleaned layer set some aside

    @property
    def key(self) -> ColumnInfo | None:
        return self.columns.get(self.schema.key) if self.schema else None


@dataclass(frozen=True)
class LayerFiles:
    """The files of one layer of a job and what they belong to."""

    user: str
    job_id: str
    layer: str
    source_job_id: str  # the generation job whose raw data (and truth) this layer descends from
    folder: str
    tables: dict[str, str]  # table name -> lake path
    as_of: datetime | None
    contract: m.Contract  # the contract the generation followed: tables, columns and rules
    quarantine: dict[str, str] = field(default_factory=dict)


def check_layer(layer: str) -> str:
    if layer not in LAYERS:
        raise InvalidInput("layer", f"{layer!r} is not a layer; choose from {', '.join(LAYERS)}")
    return layer


def read_manifest(storage: Storage, user: str, job_id: str) -> dict:
    """The raw manifest of a generation job; NotFound if the job does not exist."""
    path = paths.raw_manifest(user, job_id)
    if not storage.exists(path):
        raise NotFound(f"job {job_id} of user {user} has no raw data ({path} does not exist)")
    with storage.open_read(path) as handle:
        try:
            return json.loads(handle.read())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UnreadableFile(f"{path} is not a valid manifest: {exc}") from None


def _as_of(manifest: dict) -> datetime | None:
    text = manifest.get("as_of")
    return datetime.fromisoformat(text) if text else None


def _stems(storage: Storage, folder: str, suffix: str) -> dict[str, str]:
    """``{stem: path}`` of the files directly in ``folder`` ending in ``suffix``."""
    found = {}
    for path in storage.list(folder):
        rest = path[len(folder) + 1 :]
        if "/" not in rest and rest.endswith(suffix):
            found[rest[: -len(suffix)]] = path
    return found


def _derived_folder(storage: Storage, root: str, user: str, job_id: str) -> tuple[str, str, str]:
    """(source job, cleaning job, folder) of ``{root}/{user}/{source}/{cleaning}``; ``job_id`` names either;
    for a source job the latest cleaning job is taken."""
    base = f"{root}/{paths.check_user(user)}"
    jobs = sorted({tuple(p[len(base) + 1 :].split("/")[:2]) for p in storage.list(base) if p.count("/") >= 4})
    latest = [j for j in jobs if j[0] == job_id]
    named = [j for j in jobs if j[1] == job_id]
    chosen = named[-1] if named else latest[-1] if latest else None
    if chosen is None:
        raise NotFound(f"job {job_id} of user {user} has no {root.split('/')[0]} layer under {base}/")
    return chosen[0], chosen[1], f"{base}/{chosen[0]}/{chosen[1]}"


def locate(storage: Storage, user: str, job_id: str, layer: str) -> LayerFiles:
    """The files of ``layer`` for ``job_id`` (a generation job, or for silver/gold also a cleaning job)."""
    paths.check_user(user)
    paths.check_job_id(job_id)
    check_layer(layer)
    if layer == RAW:
        manifest = read_manifest(storage, user, job_id)
        tables = {name: paths.raw_table(user, job_id, name) for name in manifest.get("tables", {})}
        contract = job_contract(storage, user, job_id).contract
        return LayerFiles(
            user, job_id, RAW, job_id, paths.raw_dir(user, job_id), tables, _as_of(manifest), contract
        )
    root = "silver/cleaned" if layer == SILVER else "gold/analytics"
    source, cleaning, folder = _derived_folder(storage, root, user, job_id)
    tables = _stems(storage, folder, ".parquet")
    if not tables:
        raise NotFound(f"job {job_id} of user {user} has no {layer} tables in {folder}/")
    manifest = (
        read_manifest(storage, user, source) if storage.exists(paths.raw_manifest(user, source)) else {}
    )
    quarantine = _stems(storage, f"{folder}/quarantine", ".parquet") if layer == SILVER else {}
    contract = job_contract(storage, user, source).contract
    return LayerFiles(user, cleaning, layer, source, folder, tables, _as_of(manifest), contract, quarantine)


class LocalFiles:
    """Local file names DuckDB can read for lake paths (a copy for lakes that are not local folders)."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._tmp: tempfile.TemporaryDirectory | None = None

    def path(self, lake_path: str) -> str:
        if isinstance(self._storage, LocalLake):
            full = self._storage.resolve(lake_path)
            if not full.is_file():
                raise NotFound(f"{lake_path} does not exist")
            return str(full)
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="quality-")
        target = Path(self._tmp.name) / lake_path
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with self._storage.open_read(lake_path) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        return str(target)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def first_bad_line(path: str) -> tuple[int, str] | None:
    """(1-based line, reason) of the first line that is not UTF-8 JSON object text, or None."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = decoder.decode(raw)
            except UnicodeDecodeError as exc:
                return number, f"invalid UTF-8 (byte {exc.start + 1} of the line)"
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                cut = " (the line is cut short)" if exc.pos >= len(text.rstrip()) else ""
                return number, f"not valid JSON at character {exc.colno}{cut}"
            if not isinstance(value, dict):
                return number, "not a JSON object"
    return None


def _presence(name: str) -> str:
    return f"{present(q(name))} AS {q(name + '__p')}"


def _raw_column(col: m.Column) -> tuple[ColumnInfo, str]:
    name = q(col.name)
    if col.type in NUMERIC_SCHEMA_TYPES:
        parsed = f"TRY_CAST({name} AS DOUBLE)"
        sql = (
            f"CASE WHEN isfinite({parsed}) THEN {parsed} END AS {q(col.name + '__n')}, {_presence(col.name)}"
        )
        return ColumnInfo(col.name, NUMBER, name, q(col.name + "__n"), col), sql
    if col.type == m.TIMESTAMP:
        # 20 characters and a real calendar time in the format: the shape of TIMESTAMP_PATTERN
        sql = (
            f"CASE WHEN length({name}) = 20 THEN try_strptime({name}, {lit(TS_FORMAT)}) END "
            f"AS {q(col.name + '__t')}, {_presence(col.name)}"
        )
        return ColumnInfo(col.name, TIME, name, q(col.name + "__t"), col), sql
    return ColumnInfo(col.name, TEXT, name, name, col), _presence(col.name)


def _typed_column(name: str, duck_type: str, col: m.Column | None) -> tuple[ColumnInfo, str]:
    """A Parquet column: its text rendering plus the parsed value (by schema type, else by file type)."""
    src = q(name)
    numeric = col.type in NUMERIC_SCHEMA_TYPES if col else _is_numeric(duck_type)
    timestamp = col.type == m.TIMESTAMP if col else duck_type.startswith(("TIMESTAMP", "DATE"))
    if numeric:
        parsed = f"TRY_CAST({src} AS DOUBLE)"
        number = f"CASE WHEN isfinite({parsed}) THEN {parsed} END"
        sql = f"CAST({src} AS VARCHAR) AS {src}, {number} AS {q(name + '__n')}"
        sql += f", {parsed} IS NOT NULL AS {q(name + '__p')}"
        return ColumnInfo(name, NUMBER, src, q(name + "__n"), col), sql
    if timestamp:
        parsed = f"TRY_CAST({src} AS TIMESTAMP)"
        sql = f"strftime({parsed}, {lit(TS_FORMAT)}) AS {src}, {parsed} AS {q(name + '__t')}"
        sql += f", {parsed} IS NOT NULL AS {q(name + '__p')}"
        return ColumnInfo(name, TIME, src, q(name + "__t"), col), sql
    return ColumnInfo(
        name, TEXT, src, src, col
    ), f"CAST({src} AS VARCHAR) AS {src}, {present(f'CAST({src} AS VARCHAR)')} AS {q(name + '__p')}"


def _is_numeric(duck_type: str) -> bool:
    return duck_type.split("(")[0] in {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "FLOAT",
        "DOUBLE",
        "DECIMAL",
    }


def _raw_spec(table: m.Table) -> str:
    """The columns argument reading every column of a schema table from JSON as text."""
    return "{" + ", ".join(f"{lit(c.name)}: 'VARCHAR'" for c in table.columns) + "}"


def _tables(contract: m.Contract | None) -> dict[str, m.Table]:
    """The tables of a layer's contract; the shop's for a job generated before jobs kept their contract."""
    return (contract or built_in("shop").contract).tables


def _schema_table(name: str, lake_path: str, contract: m.Contract | None) -> m.Table:
    table = _tables(contract).get(name)
    if table is None:
        raise UnreadableFile(f"{lake_path}: {name!r} is not a table of the job's contract")
    return table


def load_raw(
    con: duckdb.DuckDBPyConnection, name: str, file: str, lake_path: str, contract: m.Contract | None = None
) -> LoadedTable:
    """Read one raw JSON Lines file into a numbered, text-typed table, its columns typed by the contract's
    kinds; a malformed line is named."""
    table = _schema_table(name, lake_path, contract)
    infos, parsed = zip(*(_raw_column(c) for c in table.columns), strict=True)
    extra = "".join(f", {p}" for p in parsed)
    relation, stored = f"q_{name}", q(f"q_{name}__lines")
    # The file is read in parallel into a table whose rows keep the file's order, so a row's ``rowid`` is
    # its line; numbering the lines in the read (WITH ORDINALITY) would run it on one thread. The reader
    # splits the file into buffers of twice the largest object it allows; at 64 MB instead of the default
    # 32 MB, half as many pieces are put back in order (10M orders: 6.5 to 8.9 s instead of 8.3 to 13.4).
    con.execute("SET preserve_insertion_order = true")
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {stored} AS "
            f"SELECT {', '.join(q(c.name) for c in table.columns)}{extra} "
            f"FROM read_json({lit(file)}, format='newline_delimited', columns={_raw_spec(table)}, "
            f"maximum_object_size={MAX_OBJECT_BYTES})"
        )
    except duckdb.Error as exc:
        bad = first_bad_line(file)
        where = f"line {bad[0]}: {bad[1]}" if bad else str(exc).splitlines()[0]
        raise UnreadableFile(f"{lake_path}, {where}") from None
    finally:
        con.execute("SET preserve_insertion_order = false")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {q(relation)} AS SELECT rowid AS __line, * FROM {stored}")
    return LoadedTable(name, relation, lake_path, {i.name: i for i in infos}, table, whole=True)


def raw_rows(
    con: duckdb.DuckDBPyConnection,
    storage: Storage,
    name: str,
    lake_path: str,
    lines: Iterable[int],
    contract: m.Contract | None = None,
) -> dict[int, dict[str, str | None]]:
    """Every column, as text the way the profile reads it, of some lines of a raw JSON Lines file, by 0-based
    line (blank lines uncounted, as in the profile); the file is read only as far as the lines asked for."""
    table = _schema_table(name, lake_path, contract)
    wanted = set(lines)
    found: dict[int, bytes] = {}
    with storage.open_read(lake_path) as handle:
        line = 0
        for text in handle:
            if len(found) == len(wanted):
                break
            if not text.strip():
                continue
            if line in wanted:
                found[line] = text
            line += 1
    if not found:
        return {}
    try:
        texts = [text.decode("utf-8") for text in found.values()]
        parsed = con.execute(
            f"SELECT n, from_json(t::JSON, {lit(json.dumps(dict.fromkeys(table.column_names, 'VARCHAR')))}) "
            "FROM (SELECT unnest(?) AS n, unnest(?) AS t)",
            [list(found), texts],
        ).fetchall()
    except (UnicodeDecodeError, duckdb.Error) as exc:
        raise UnreadableFile(f"{lake_path}: {str(exc).splitlines()[0]}") from None
    return dict(parsed)


def _parquet_columns(
    con: duckdb.DuckDBPyConnection, name: str, file: str, lake_path: str, contract: m.Contract | None
) -> tuple[str, list[ColumnInfo], list[str]]:
    """A Parquet file's source (rows numbered as ``file_row_number``), its columns and their SELECT parts."""
    source = f"read_parquet({lit(file)}, file_row_number=true)"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    except duckdb.Error as exc:
        raise UnreadableFile(
            f"{lake_path} is not a readable Parquet file: {str(exc).splitlines()[0]}"
        ) from None
    table = _tables(contract).get(name)
    schema_cols = {c.name: c for c in table.columns} if table else {}
    infos, select = [], []
    for column_name, duck_type, *_ in described:
        if column_name == "file_row_number":
            continue
        info, sql = _typed_column(column_name, duck_type, schema_cols.get(column_name))
        infos.append(info)
        select.append(sql)
    return source, infos, select


def load_parquet(
    con: duckdb.DuckDBPyConnection, name: str, file: str, lake_path: str, contract: m.Contract | None = None
) -> LoadedTable:
    """Read one Parquet file into a numbered table (row order of the file); the contract's tables get parsed
    twins."""
    source, infos, select = _parquet_columns(con, name, file, lake_path, contract)
    relation = f"q_{name}"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {q(relation)} AS "
        f"SELECT file_row_number AS __line, {', '.join(select)} FROM {source}"
    )
    return LoadedTable(name, relation, lake_path, {i.name: i for i in infos}, _tables(contract).get(name))


def parquet_rows(
    con: duckdb.DuckDBPyConnection,
    name: str,
    file: str,
    lake_path: str,
    lines: Iterable[int],
    contract: m.Contract | None = None,
) -> dict[int, dict[str, str | None]]:
    """Every column, as the profile reads it (text), of some rows of a Parquet file, by 0-based row."""
    wanted = sorted(set(lines))
    if not wanted:
        return {}
    source, infos, select = _parquet_columns(con, name, file, lake_path, contract)
    struct = "{" + ", ".join(f"{lit(i.name)}: {i.text}" for i in infos) + "}"
    return dict(
        con.execute(
            f"SELECT file_row_number, {struct} FROM (SELECT file_row_number, {', '.join(select)} "
            f"FROM {source} WHERE file_row_number IN ({', '.join(map(str, wanted))}))"
        ).fetchall()
    )


def connect(memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB session in UTC that may spill to a temporary folder."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # every query that needs an order says so (rows carry their ``__line``); unordered loads run leaner,
    # and the raw load, which numbers rows by their place in the table, asks for the order itself
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET temp_directory = {lit(tempfile.gettempdir() + '/quality-duckdb')}")
    if memory_limit:
        con.execute(f"SET memory_limit = {lit(memory_limit)}")
    return con
