"""Data contracts in the Open Data Contract Standard (ODCS) v3.1: read, validate, write.

A contract is checked twice: against the standard's own JSON Schema (shipped by the
``open-data-contract-standard`` package), then for what the workbench needs to generate and check the data
(keys, references, constraints). Every error names the YAML path of the field and what to change. A contract
from elsewhere is read leniently: a field the standard does not know is ignored with a warning the contract
carries, while what the workbench ships or writes validates strictly. Keys may be composite and anywhere;
foreign keys a contract does not declare are inferred from column names and descriptions. What the standard
cannot say goes in ``customProperties``, in the vocabulary of docs/contracts.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import sqlglot
import yaml
from sqlglot import exp

from orchestrator.domain import model as m
from orchestrator.errors import InvalidInput

API_VERSION = "v3.1.0"
# The contracts the workbench ships, beside the package: files here, or entries of the zip the package is
# imported from (a Spark job's --py-files), so they are read as resources, not paths.
BUILT_IN = resources.files("orchestrator").parent / "contracts"
MAX_CONTRACT_BYTES = 5_000_000

# customProperties of the vocabulary (docs/contracts.md): where each may appear.
CONTRACT_PROPERTIES = ("drivingTable", "generator", "gold")
TABLE_PROPERTIES = ("businessKey", "parent", "constraints", "volume")
COLUMN_PROPERTIES = ("kind", "case", "essential", "generate")
GENERATORS = ("shop",)  # built-in generators a contract may name instead of the generic one
DEFAULT_CONTRACT = "shop"  # the data set a generation follows unless it names another
_DEFAULT_PATTERNS = {m.EMAIL: m.EMAIL_PATTERN, m.PHONE: m.PHONE_PATTERN, m.TIMESTAMP: m.TIMESTAMP_PATTERN}
_STEPS = {m.MONEY: 0.01, m.DECIMAL1: 0.1}
# Errors of the standard's schema that only say a field is unknown: a contract from elsewhere is read anyway.
UNKNOWN_FIELD_ERRORS = ("unevaluatedProperties", "additionalProperties")
_UNEXPECTED = re.compile(r"\((.*) (?:was|were) unexpected\)")
_INTEGER_PHYSICAL = re.compile(r"^(small|big)?serial\d?\b|^(int\d?|integer|bigint|smallint|tinyint)\b", re.I)
_COUNT_NAME = re.compile(r"(id|key|qty|quantity|count)$", re.I)
_DESCRIBED_REFERENCE = re.compile(r"foreign key to ([A-Za-z_]\w*)\.([A-Za-z_]\w*)", re.I)
GOLD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # a file name and, prefixed, a warehouse table name
GOLD_FIELDS = ("name", "description", "sql")


class ContractError(InvalidInput):
    """A contract that cannot be used; ``field`` is the YAML path of what to change."""


@dataclass(frozen=True)
class ContractSource:
    """A contract as read: the parsed model and the exact text it came from, with its sha256."""

    contract: m.Contract
    text: str
    warnings: tuple[str, ...] = ()  # fields the standard does not know, ignored (each with its YAML path)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@cache
def _standard_schema() -> dict:
    with resources.files("open_data_contract_standard").joinpath("schema.json").open() as handle:
        return json.load(handle)


def _where(path: Iterable[Any], document: Any) -> str:
    """A JSON path as the user finds it in the YAML: ``schema[orders].properties[total_amount].minimum``."""
    parts: list[str] = []
    node = document
    for step in path:
        if isinstance(step, int):
            name = node[step].get("name") if isinstance(node, list) and isinstance(node[step], dict) else None
            parts[-1] += f"[{name}]" if name else f"[{step}]"
        else:
            parts.append(str(step))
        node = node[step] if isinstance(node, (list, dict)) else None
    return ".".join(parts) or "(the document)"


def _refuse(errors: list, document: Any) -> None:
    """Raise the most telling of the schema's errors, if any, with its YAML path."""
    if errors:
        import jsonschema

        error = jsonschema.exceptions.best_match(errors)
        raise ContractError(
            _where(error.absolute_path, document),
            f"{error.message} (the ODCS {API_VERSION} schema refuses it)",
        )


def _schema_errors(document: Any) -> list:
    if not isinstance(document, dict):
        raise ContractError("(the document)", "is not a YAML mapping; start from docs/contracts.md")
    import jsonschema  # on first use: a process that reads only the shipped contracts never needs it

    validator = jsonschema.Draft201909Validator(_standard_schema())
    return sorted(validator.iter_errors(document), key=lambda e: (len(e.absolute_path), list(e.path)))


def validate_standard(document: Any) -> None:
    """Refuse a document the ODCS v3.1 JSON Schema refuses, naming the path of the first error (what the
    workbench ships and writes is held to this)."""
    _refuse(_schema_errors(document), document)


def lenient_standard(document: Any) -> tuple[str, ...]:
    """Refuse a document the ODCS v3.1 JSON Schema refuses for its structure (a wrong type, a missing field),
    and return a warning for each field it does not know, which is ignored (a contract from elsewhere)."""
    errors = _schema_errors(document)
    _refuse([e for e in errors if e.validator not in UNKNOWN_FIELD_ERRORS], document)
    warnings: dict[str, None] = {}
    for error in errors:
        listed = _UNEXPECTED.search(error.message)
        names = re.findall(r"'([^']*)'", listed.group(1)) if listed else ["(a field)"]
        where = _where(error.absolute_path, document)
        for name in names:
            path = f"{where}.{name}" if where != "(the document)" else name
            warnings[f"{path}: is not a field of ODCS {API_VERSION}; it is ignored"] = None
    return tuple(warnings)


def _custom(element: Mapping, allowed: tuple[str, ...], where: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    listed = f"{where}.customProperties" if where else "customProperties"  # the contract's own: no prefix
    for index, item in enumerate(element.get("customProperties") or ()):
        name = item.get("property")
        if name in allowed:
            found[name] = item.get("value")
        elif name is not None and name[:1].islower() and name in _ALL_PROPERTIES:
            raise ContractError(f"{listed}[{index}]", f"{name!r} belongs elsewhere; see docs/contracts.md")
    return found


_ALL_PROPERTIES = frozenset(CONTRACT_PROPERTIES + TABLE_PROPERTIES + COLUMN_PROPERTIES)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ContractError(where, "must be a mapping of names to values; see docs/contracts.md")
    return dict(value)


def _valid_values(prop: Mapping) -> tuple[str, ...]:
    for check in prop.get("quality") or ():
        if check.get("metric") == "invalidValues" and "validValues" in (check.get("arguments") or {}):
            return tuple(str(value) for value in check["arguments"]["validValues"])
    return ()


def _references(prop: Mapping) -> str | None:
    for relation in prop.get("relationships") or ():
        if relation.get("type", "foreignKey") == "foreignKey" and relation.get("to"):
            return str(relation["to"]).partition(".")[0]
    return None


def _whole(prop: Mapping, options: Mapping) -> bool:
    """A ``number`` holds whole numbers: its physical type is an integer's, its step is 1, or it is named
    like a key or a quantity (``productid``, ``orderqty``)."""
    return bool(
        _INTEGER_PHYSICAL.match(str(prop.get("physicalType", "")))
        or options.get("multipleOf") == 1
        or _COUNT_NAME.search(str(prop["name"]))
    )


def _inferred_kind(
    prop: Mapping, options: Mapping, values: tuple[str, ...], references: str | None, sole_key: bool
) -> str:
    """The column kind a property that does not name one has: from its key, reference, type and name."""
    name = str(prop["name"]).lower()
    logical = prop.get("logicalType", "string")
    if sole_key and (
        "logicalType" not in prop or logical == "integer" or (logical == "number" and _whole(prop, options))
    ):
        return m.ID
    if references:
        return m.FK
    if logical in ("date", "timestamp"):
        return m.TIMESTAMP
    if logical == "integer" or (logical == "number" and _whole(prop, options)):
        return m.INT
    if logical == "number":
        return m.DECIMAL1 if options.get("multipleOf") == 0.1 else m.MONEY
    if values:
        return m.CATEGORY
    if options.get("format") == "email" or name == "email" or name.endswith("_email"):
        return m.EMAIL
    if name == "phone" or name.endswith("_phone"):
        return m.PHONE
    return m.CODE if options.get("pattern") else m.TEXT


def _column(prop: Mapping, where: str, sole_key: bool) -> m.Column:
    custom = _custom(prop, COLUMN_PROPERTIES, where)
    options = prop.get("logicalTypeOptions") or {}
    values = _valid_values(prop)
    references = _references(prop)
    kind = custom.get("kind") or _inferred_kind(prop, options, values, references, sole_key)
    if kind not in m.KINDS:
        raise ContractError(f"{where}.customProperties.kind", f"{kind!r} is not one of {', '.join(m.KINDS)}")
    case = custom.get("case")
    if case is not None and case not in m.CASES:
        raise ContractError(f"{where}.customProperties.case", f"{case!r} is not one of {', '.join(m.CASES)}")
    if kind == m.CATEGORY and not values:
        raise ContractError(
            f"{where}.quality", "a category needs its allowed values: metric invalidValues with validValues"
        )
    if kind == m.FK and references is None:
        raise ContractError(f"{where}.relationships", "a foreign key needs a relationship to TABLE.COLUMN")
    return m.Column(
        name=str(prop["name"]),
        type=kind,
        nullable=not prop.get("required", False) and not prop.get("primaryKey", False),
        references=references,
        categories=values,
        case=case,
        minimum=options.get("minimum"),
        maximum=options.get("maximum"),
        pattern=options.get("pattern") or _DEFAULT_PATTERNS.get(kind),
        required=bool(custom.get("essential", False) or prop.get("primaryKey", False)),
        generate=_mapping(custom.get("generate"), f"{where}.customProperties.generate"),
        declared_type=str(prop.get("logicalType", "")),
        physical_type=str(prop.get("physicalType", "")),
    )


def _constraint(table: str, item: Mapping, where: str) -> m.Constraint:
    if not isinstance(item, Mapping) or item.get("kind") not in m.CONSTRAINT_KINDS:
        raise ContractError(f"{where}.kind", f"is not one of {', '.join(m.CONSTRAINT_KINDS)}")
    for name in ("id", "column"):
        if not item.get(name):
            raise ContractError(f"{where}.{name}", "is missing")
    return m.Constraint(
        id=str(item["id"]),
        kind=str(item["kind"]),
        table=table,
        column=str(item["column"]),
        other=str(item.get("other", "")),
        via=str(item.get("via", "")),
        terms=tuple(str(term) for term in item.get("terms") or ()),
        op=str(item.get("op", m.PRODUCT)),
        group=str(item.get("group", "")),
        severity=str(item.get("severity", "error")),
        catches=tuple(item.get("catches") or ()),
        description=str(item.get("description", "")),
        complete_when={
            str(k): str(v) for k, v in _mapping(item.get("complete_when"), f"{where}.complete_when").items()
        },
    )


def _table(element: Mapping, where: str) -> tuple[m.Table, list[m.Constraint]]:
    custom = _custom(element, TABLE_PROPERTIES, where)
    props = element.get("properties") or []
    if not props:
        raise ContractError(f"{where}.properties", "a table needs at least one column")
    keyed = [p for p in props if p.get("primaryKey")]
    if not keyed:
        raise ContractError(
            f"{where}.properties", "a table needs a primary key: primaryKey: true on its key column(s)"
        )
    columns = tuple(
        _column(prop, f"{where}.properties[{prop['name']}]", len(keyed) == 1 and prop is keyed[0])
        for prop in props
    )
    # a composite key in the order of its primaryKeyPosition (where given), else of its columns
    ordered = sorted(enumerate(keyed), key=lambda item: (item[1].get("primaryKeyPosition", -1), item[0]))
    keys = tuple(str(prop["name"]) for _, prop in ordered)
    table = m.Table(
        name=str(element["name"]),
        columns=columns,
        business_key=tuple(custom.get("businessKey") or keys),
        parent=custom.get("parent"),
        description=str(element.get("description", "")),
        volume=_mapping(custom.get("volume"), f"{where}.customProperties.volume"),
        primary_key=keys,
    )
    constraints = [
        _constraint(table.name, item, f"{where}.customProperties.constraints[{index}]")
        for index, item in enumerate(custom.get("constraints") or ())
    ]
    return table, constraints


def _stem(column: str) -> str:
    """What a column named like a key names: ``customer_id`` and ``customerid`` name ``customer``."""
    lowered = column.lower()
    for suffix in ("_id", "id"):
        if lowered.endswith(suffix):
            return lowered[: -len(suffix)]
    return ""


def _referred(column: str, description: str, own: str, tables: Mapping[str, m.Table]) -> str | None:
    """The table a column that declares no relationship refers to: the one its description names ("Foreign
    key to Employee.BusinessEntityID"); else the one whose single-column primary key has its name (among
    several, the one the name itself names, ``businessentityid`` -> businessentity, else the first
    declared); else, for a ``*_id``/``*id`` column, the one table its name names (customer or customers)."""
    lowered = {name.lower(): table for name, table in tables.items() if name != own and table.sole_key}
    described = _DESCRIBED_REFERENCE.search(description)
    if described:
        target = lowered.get(described.group(1).lower())
        if target is not None and target.sole_key.lower() == described.group(2).lower():
            return target.name
    stem = _stem(column)
    keyed = [name for name, table in lowered.items() if table.sole_key.lower() == column.lower()]
    if keyed:
        return lowered[stem if stem in keyed else keyed[0]].name
    named = [lowered[name].name for name in (stem, f"{stem}s", f"{stem}es") if stem and name in lowered]
    return named[0] if len(named) == 1 else None


def _with_references(tables: dict[str, m.Table], document: Mapping) -> dict[str, m.Table]:
    """The tables with the foreign keys their contract implies but does not declare (docs/contracts.md:
    contracts from elsewhere), and every reference to a text key held as text. Declared relationships and
    columns that name their kind are left as declared."""
    props = {
        (str(element["name"]), str(prop["name"])): prop
        for element in document.get("schema") or ()
        for prop in element.get("properties") or ()
    }
    out: dict[str, m.Table] = {}
    for name, table in tables.items():
        columns = []
        for column in table.columns:
            prop = props[(name, column.name)]
            explicit = any(item.get("property") == "kind" for item in prop.get("customProperties") or ())
            target = column.references
            if target is None and not explicit and column.name != table.sole_key and not column.categories:
                target = _referred(column.name, str(prop.get("description") or ""), name, tables)
                if target is not None:
                    column = replace(column, type=m.FK, references=target, pattern=None)
            key = tables[target].sole_key if target in tables else None
            if key and column.type == m.FK and tables[target].key is None:
                held = tables[target].column(key)  # a text key: the reference is held as its key is
                column = replace(column, type=held.type, pattern=held.pattern, case=held.case)
            columns.append(column)
        out[name] = replace(table, columns=tuple(columns))
    return out


def _check_links(contract: m.Contract) -> None:
    """References, keys, parents and constraints name tables and columns that exist."""
    tables = contract.tables
    for table in tables.values():
        where = f"schema[{table.name}]"
        for name in table.business_key:
            if name not in table.column_names:
                raise ContractError(f"{where}.customProperties.businessKey", f"{name!r} is not a column")
        if table.parent is not None and table.parent not in tables:
            raise ContractError(f"{where}.customProperties.parent", f"{table.parent!r} is not a table")
        for column in table.columns:
            if column.references is not None and column.references not in tables:
                raise ContractError(
                    f"{where}.properties[{column.name}].relationships",
                    f"{column.references!r} is not a table of this contract",
                )
            if column.references is not None and tables[column.references].sole_key is None:
                raise ContractError(
                    f"{where}.properties[{column.name}].relationships",
                    f"{column.references!r} has a composite primary key; a foreign key refers to a table "
                    "keyed by one column",
                )
    for constraint in contract.constraints:
        where = f"schema[{constraint.table}].customProperties.constraints[{constraint.id}]"
        keyed = {constraint.table, constraint.other_table} - {""} if constraint.kind != m.ROW else set()
        for name in keyed:
            if name in tables and tables[name].key is None:
                raise ContractError(
                    where, f"{name} has no single integer primary key, which a {constraint.kind} follows"
                )
        own = (constraint.column, *([constraint.group] if constraint.group else []))
        named = [(constraint.table, name) for name in own]
        if constraint.kind == m.ROW:
            named += _row_terms(contract, constraint, where)
        if constraint.other:
            named.append((constraint.other_table, constraint.other_column))
        if constraint.complete_when:
            if constraint.kind != m.AGGREGATE or set(constraint.complete_when) != {"sequence"}:
                raise ContractError(
                    f"{where}.complete_when", "only an aggregate may say it, as {sequence: COLUMN}"
                )
            named.append((constraint.other_table, constraint.complete_when["sequence"]))
        for table, column in named:
            if table not in tables or column not in tables[table].column_names:
                raise ContractError(where, f"{table}.{column} is not a column of this contract")
    if contract.driving_table and contract.driving_table not in tables:
        raise ContractError("customProperties.drivingTable", f"{contract.driving_table!r} is not a table")
    if contract.generator and contract.generator not in GENERATORS:
        raise ContractError(
            "customProperties.generator",
            f"{contract.generator!r} is not a built-in generator; leave it out for the generic one",
        )
    for table in tables.values():
        per = table.volume.get("per")
        if per is not None and per not in tables:
            raise ContractError(
                f"schema[{table.name}].customProperties.volume.per", f"{per!r} is not a table"
            )


def _row_terms(contract: m.Contract, constraint: m.Constraint, where: str) -> list[tuple[str, str]]:
    """The columns a ROW constraint's terms name, once its op, signs and links are checked."""
    if constraint.op not in m.ROW_OPS:
        raise ContractError(f"{where}.op", f"{constraint.op!r} is not one of {', '.join(m.ROW_OPS)}")
    if not constraint.terms:
        raise ContractError(f"{where}.terms", "is missing: name the columns the value follows from")
    named = []
    for text, term in zip(constraint.terms, constraint.participants[1:], strict=True):
        if term.sign < 0 and constraint.op != m.SUM:
            raise ContractError(f"{where}.terms", f"{text}: only a sum subtracts (op: sum)")
        if term.table != constraint.table and (
            term.table not in contract.tables
            or (contract.link(constraint.table, term.table) or ("",))[0] != m.PARENT
        ):
            raise ContractError(
                f"{where}.terms",
                f"{term.table}.{term.column}: {constraint.table} has no single foreign key to "
                f"{term.table!r}; a term names a column of its own row or of the row its foreign key "
                "refers to",
            )
        named.append((term.table, term.column))
    for table, column in [(constraint.table, constraint.column), *named]:
        known = table in contract.tables and column in contract.tables[table].column_names
        if known and contract.tables[table].column(column).type not in m.NUMERIC_TYPES:
            raise ContractError(f"{where}.terms", f"{table}.{column} is not a number a {m.ROW} relates")
    return named


def _gold_reads(sql: str, tables: Mapping[str, m.Table], where: str) -> tuple[str, ...]:
    """The silver tables a gold query reads, once it is known to be one SELECT that reads nothing else (it
    runs where nothing else can be reached; this says so before it runs, naming what to change)."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError as error:
        raise ContractError(
            where, f"is not SQL ({str(error).splitlines()[0]}); write one SELECT over the silver tables"
        ) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        found = ", ".join(type(s).__name__.upper() for s in statements) or "nothing"
        raise ContractError(
            where,
            f"must be one SELECT statement over the silver tables (found {found}); write a single query",
        )
    ctes = {cte.alias_or_name for cte in statements[0].find_all(exp.CTE)}
    reads: dict[str, None] = {}
    for source in statements[0].find_all(exp.Table):
        if not isinstance(source.this, exp.Identifier) or source.args.get("db") or source.args.get("catalog"):
            raise ContractError(
                where, f"reads {source.sql(dialect='duckdb')}: a gold query reads silver tables by name only"
            )
        if source.name in ctes:
            continue
        if source.name not in tables:
            raise ContractError(
                where,
                f"reads {source.name!r}, which is not a table of this contract; name one of "
                f"{', '.join(tables)}",
            )
        reads[source.name] = None
    return tuple(reads)


def _gold(value: Any, tables: Mapping[str, m.Table]) -> tuple[m.GoldTable, ...]:
    """The gold tables a contract declares (customProperties gold: a list of {name, description, sql})."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ContractError("customProperties[gold]", "must be a list of {name, description, sql}")
    gold: dict[str, m.GoldTable] = {}
    for index, item in enumerate(value):
        where = f"customProperties[gold][{index}]"
        if not isinstance(item, Mapping):
            raise ContractError(where, "must be a mapping {name, description, sql}")
        unknown = sorted(set(item) - set(GOLD_FIELDS))
        if unknown:
            raise ContractError(
                f"{where}.{unknown[0]}", f"is not a field of a gold table: {', '.join(GOLD_FIELDS)}"
            )
        name = item.get("name")
        if not isinstance(name, str) or not GOLD_NAME.match(name):
            raise ContractError(
                f"{where}.name", f"{name!r} is not a gold table name; use lower-case letters, digits and _"
            )
        if name in gold:
            raise ContractError(f"{where}.name", f"{name!r} names a gold table twice")
        sql = item.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            raise ContractError(f"{where}.sql", "is missing: one SELECT over the silver tables")
        reads = _gold_reads(sql, tables, f"{where}.sql")
        gold[name] = m.GoldTable(name, sql.strip(), str(item.get("description") or ""), reads)
    return tuple(gold.values())


def _load_yaml(text: str) -> Any:
    """The document, parsed by libyaml where PyYAML has it (eight times faster, the same values: the same
    safe constructor builds them); a document it refuses is parsed again by PyYAML's own parser, whose
    messages name the problem better."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        with contextlib.suppress(yaml.YAMLError):
            return yaml.load(text, Loader=fast)
    return yaml.safe_load(text)


def parse_contract(text: str, *, standard: bool = True) -> ContractSource:
    """A contract from its YAML text, validated; ContractError names the path of what to change. Without
    ``standard`` it is not checked against the standard's JSON Schema (only for the shipped contracts, which
    the tests hold to it: the check cost every process a tenth of a second at start-up)."""
    if len(text.encode()) > MAX_CONTRACT_BYTES:
        raise ContractError("(the document)", f"is larger than {MAX_CONTRACT_BYTES:,} bytes")
    try:
        document = _load_yaml(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(the document)"
        raise ContractError(line, f"is not valid YAML: {getattr(error, 'problem', error)}") from None
    warnings = lenient_standard(document) if standard else ()
    tables: dict[str, m.Table] = {}
    constraints: list[m.Constraint] = []
    for element in document.get("schema") or ():
        where = f"schema[{element['name']}]"
        if element["name"] in tables:
            raise ContractError(where, "names a table twice; give each table one schema object")
        table, declared = _table(element, where)
        tables[table.name] = table
        constraints += declared
    if not tables:
        raise ContractError("schema", "declares no table; add at least one schema object")
    tables = _with_references(tables, document)
    custom = _custom(document, CONTRACT_PROPERTIES, "")
    description = document.get("description") or {}
    contract = m.Contract(
        id=str(document["id"]),
        name=str(document.get("name") or document["id"]),
        version=str(document["version"]),
        tables=tables,
        constraints=tuple(constraints),
        description=str(description.get("purpose", "")) if isinstance(description, Mapping) else "",
        driving_table=str(custom.get("drivingTable") or next(iter(tables))),
        generator=str(custom.get("generator") or ""),
        gold=_gold(custom.get("gold"), tables),
    )
    _check_links(contract)
    return ContractSource(contract, text, warnings)


def read_contract(path: Path) -> ContractSource:
    """A contract file, validated (see parse_contract)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ContractError("path", f"{path} cannot be read: {error.strerror}") from None
    return parse_contract(text)


def built_in_names() -> tuple[str, ...]:
    """The contracts the workbench ships, by name (their file names without .yaml)."""
    names = (entry.name for entry in BUILT_IN.iterdir())
    return tuple(sorted(name.removesuffix(".yaml") for name in names if name.endswith(".yaml")))


@cache
def built_in(name: str) -> ContractSource:
    """A contract the workbench ships."""
    if name not in built_in_names():
        raise ContractError(
            "contract", f"{name!r} is not a built-in contract; choose one of {', '.join(built_in_names())}"
        )
    return parse_contract((BUILT_IN / f"{name}.yaml").read_text(encoding="utf-8"), standard=False)


def _column_document(contract: m.Contract, table: m.Table, column: m.Column) -> dict[str, Any]:
    logical = {
        m.ID: "integer",
        m.FK: "integer",
        m.INT: "integer",
        m.MONEY: "number",
        m.DECIMAL1: "number",
        m.TIMESTAMP: "timestamp",
    }.get(column.type, "string")
    prop: dict[str, Any] = {"name": column.name, "logicalType": logical}
    if column.physical_type:
        prop["physicalType"] = column.physical_type
    if column.name in table.primary_key:
        prop["primaryKey"] = True
        if len(table.primary_key) > 1:
            prop["primaryKeyPosition"] = table.primary_key.index(column.name) + 1
    prop["required"] = not column.nullable
    options: dict[str, Any] = {}
    if column.type in _STEPS:
        options["multipleOf"] = _STEPS[column.type]
    for name in ("minimum", "maximum"):
        if getattr(column, name) is not None:
            options[name] = getattr(column, name)
    if column.type == m.EMAIL:
        options["format"] = "email"
    if column.pattern and column.pattern != _DEFAULT_PATTERNS.get(column.type):
        options["pattern"] = column.pattern
    if options:
        prop["logicalTypeOptions"] = options
    if column.references:
        key = contract.tables[column.references].sole_key
        prop["relationships"] = [{"type": "foreignKey", "to": f"{column.references}.{key}"}]
    if column.categories:
        prop["quality"] = [
            {"metric": "invalidValues", "arguments": {"validValues": list(column.categories)}, "mustBe": 0}
        ]
    custom = [{"property": "kind", "value": column.type}]
    if column.case:
        custom.append({"property": "case", "value": column.case})
    if column.required and column.name not in table.primary_key:
        custom.append({"property": "essential", "value": True})
    if column.generate:
        custom.append({"property": "generate", "value": column.generate})
    prop["customProperties"] = custom
    return prop


def _constraint_document(constraint: m.Constraint) -> dict[str, Any]:
    item: dict[str, Any] = {"id": constraint.id, "kind": constraint.kind, "column": constraint.column}
    if constraint.via:
        item["via"] = constraint.via
    if constraint.other:
        item["other"] = constraint.other
    if constraint.terms:
        item["terms"] = list(constraint.terms)
    if constraint.op != m.PRODUCT:
        item["op"] = constraint.op
    if constraint.group:
        item["group"] = constraint.group
    if constraint.complete_when:
        item["complete_when"] = dict(constraint.complete_when)
    item["severity"] = constraint.severity
    if constraint.catches:
        item["catches"] = list(constraint.catches)
    if constraint.description:
        item["description"] = constraint.description
    return item


def contract_document(contract: m.Contract) -> dict[str, Any]:
    """The ODCS v3.1 document that declares ``contract`` (parse_contract reads it back to the same model)."""
    schema = []
    for table in contract.tables.values():
        element: dict[str, Any] = {"name": table.name, "physicalType": "table"}
        if table.description:
            element["description"] = table.description
        element["properties"] = [_column_document(contract, table, column) for column in table.columns]
        custom: list[dict[str, Any]] = [{"property": "businessKey", "value": list(table.business_key)}]
        if table.parent:
            custom.append({"property": "parent", "value": table.parent})
        if table.volume:
            custom.append({"property": "volume", "value": table.volume})
        declared = [_constraint_document(c) for c in contract.constraints if c.table == table.name]
        if declared:
            custom.append({"property": "constraints", "value": declared})
        element["customProperties"] = custom
        schema.append(element)
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "DataContract",
        "id": contract.id,
        "name": contract.name,
        "version": contract.version,
        "status": "active",
    }
    if contract.description:
        document["description"] = {"purpose": contract.description}
    document["schema"] = schema
    document["customProperties"] = [{"property": "drivingTable", "value": contract.driving_table}]
    if contract.generator:
        document["customProperties"].append({"property": "generator", "value": contract.generator})
    if contract.gold:
        gold = [{"name": g.name, "description": g.description, "sql": g.sql} for g in contract.gold]
        document["customProperties"].append({"property": "gold", "value": gold})
    return document


def dump_contract(contract: m.Contract) -> str:
    """``contract`` as ODCS YAML text, valid against the standard's schema."""
    document = contract_document(contract)
    validate_standard(document)
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


class _Dumper(yaml.SafeDumper):
    """YAML as safe_dump writes it, with text of several lines (a gold table's SQL) as a literal block."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _text)
