"""Known answers of the contract reader and writer (orchestrator/domain/contract.py), on a small contract
written here: the model every declaration gives, the kinds inferred where none is named, the foreign keys
inferred where none is declared, each refusal with the YAML path of what to change, the warnings of a
lenient read, and the document written back."""

from __future__ import annotations

import hashlib

import pytest
import yaml

from orchestrator.domain import contract
from orchestrator.domain import model as m
from orchestrator.domain.contract import (
    ContractError,
    ContractSource,
    built_in,
    built_in_names,
    contract_document,
    dump_contract,
    lenient_standard,
    parse_contract,
    read_contract,
    validate_standard,
)

CLUB = """\
apiVersion: v3.1.0
kind: DataContract
id: club
name: Club
version: 2.1.0
status: active
description: {purpose: Members and their bookings}
customProperties:
  - {property: drivingTable, value: bookings}
schema:
  - name: members
    physicalType: table
    description: People who joined
    properties:
      - {name: member_id, logicalType: integer, primaryKey: true}
      - {name: email, logicalType: string, required: true}
      - {name: phone, logicalType: string}
      - name: tier
        logicalType: string
        quality:
          - {metric: invalidValues, arguments: {validValues: [gold, silver]}, mustBe: 0}
      - {name: joined, logicalType: timestamp, required: true}
      - name: full_name
        logicalType: string
        customProperties: [{property: case, value: title}, {property: essential, value: true}]
      - {name: badge, logicalType: string, logicalTypeOptions: {pattern: "^B[0-9]{4}$"}}
      - name: balance
        logicalType: number
        logicalTypeOptions: {multipleOf: 0.01, minimum: 0, maximum: 1000}
      - {name: rating, logicalType: number, logicalTypeOptions: {multipleOf: 0.1}}
      - {name: visits, logicalType: integer, logicalTypeOptions: {minimum: 0}}
  - name: bookings
    physicalType: table
    properties:
      - {name: booking_id, logicalType: integer, primaryKey: true}
      - name: member_id
        logicalType: integer
        required: true
        relationships: [{type: foreignKey, to: members.member_id}]
      - {name: booked_at, logicalType: timestamp, required: true}
      - {name: fee, logicalType: number, logicalTypeOptions: {multipleOf: 0.01}}
    customProperties:
      - {property: businessKey, value: [member_id, booked_at]}
      - {property: parent, value: members}
      - {property: volume, value: {per: members, mean: 2}}
      - property: constraints
        value:
          - {id: booked_after_joining, kind: after, column: booked_at, via: member_id, other: members.joined,
             catches: [order_before_signup], description: A booking follows the joining}
  - name: seats
    properties:
      - name: booking_id
        logicalType: integer
        primaryKey: true
        primaryKeyPosition: 2
        relationships: [{to: bookings.booking_id}]
      - {name: row, logicalType: string, primaryKey: true, primaryKeyPosition: 1}
"""

C = m.Column
# What each declaration of CLUB says, written out by hand from docs/contracts.md.
MEMBERS = m.Table(
    "members",
    (
        C("member_id", m.ID, required=True, declared_type="integer"),  # the sole key: an id, required
        C("email", m.EMAIL, pattern=m.EMAIL_PATTERN, declared_type="string"),  # named email
        C("phone", m.PHONE, nullable=True, pattern=m.PHONE_PATTERN, declared_type="string"),
        C("tier", m.CATEGORY, nullable=True, categories=("gold", "silver"), declared_type="string"),
        C("joined", m.TIMESTAMP, pattern=m.TIMESTAMP_PATTERN, declared_type="timestamp"),
        C("full_name", m.TEXT, nullable=True, case="title", required=True, declared_type="string"),
        C("badge", m.CODE, nullable=True, pattern="^B[0-9]{4}$", declared_type="string"),
        C("balance", m.MONEY, nullable=True, minimum=0, maximum=1000, declared_type="number"),
        C("rating", m.DECIMAL1, nullable=True, declared_type="number"),
        C("visits", m.INT, nullable=True, minimum=0, declared_type="integer"),
    ),
    business_key=("member_id",),
    description="People who joined",
    primary_key=("member_id",),
)
BOOKINGS = m.Table(
    "bookings",
    (
        C("booking_id", m.ID, required=True, declared_type="integer"),
        C("member_id", m.FK, references="members", declared_type="integer"),
        C("booked_at", m.TIMESTAMP, pattern=m.TIMESTAMP_PATTERN, declared_type="timestamp"),
        C("fee", m.MONEY, nullable=True, declared_type="number"),
    ),
    business_key=("member_id", "booked_at"),
    parent="members",
    volume={"per": "members", "mean": 2},
    primary_key=("booking_id",),
)
SEATS = m.Table(
    "seats",
    (
        # a column of a composite key is no id, though it is an integer
        C("booking_id", m.FK, references="bookings", required=True, declared_type="integer"),
        C("row", m.TEXT, required=True, declared_type="string"),
    ),
    business_key=("row", "booking_id"),  # the key, in the order of primaryKeyPosition
    primary_key=("row", "booking_id"),
)
AFTER_JOINING = m.Constraint(
    id="booked_after_joining",
    kind=m.AFTER,
    table="bookings",
    column="booked_at",
    other="members.joined",
    via="member_id",
    catches=("order_before_signup",),
    description="A booking follows the joining",
)


def _changed(old: str, new: str, text: str = CLUB) -> str:
    """CLUB with one passage replaced (it must be there, once)."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


def _refused(text: str) -> ContractError:
    with pytest.raises(ContractError) as refused:
        parse_contract(text)
    return refused.value


def test_every_declaration_of_a_contract_is_read_into_the_model():
    source = parse_contract(CLUB)
    assert source.warnings == ()
    assert source.contract == m.Contract(
        id="club",
        name="Club",
        version="2.1.0",
        tables={"members": MEMBERS, "bookings": BOOKINGS, "seats": SEATS},
        constraints=(AFTER_JOINING,),
        description="Members and their bookings",
        driving_table="bookings",
    )
    assert list(source.contract.tables) == ["members", "bookings", "seats"]  # in the contract's order


def test_a_contract_keeps_the_exact_text_it_was_read_from_and_its_sha256():
    source = parse_contract(CLUB)
    assert source.text == CLUB
    assert source.sha256 == hashlib.sha256(CLUB.encode("utf-8")).hexdigest()
    assert len(source.sha256) == 64


def test_a_contract_without_a_name_a_purpose_or_a_driving_table_takes_its_id_and_first_table():
    text = _changed("name: Club\n", "")
    text = _changed("description: {purpose: Members and their bookings}\n", "", text)
    text = _changed("customProperties:\n  - {property: drivingTable, value: bookings}\n", "", text)
    contract = parse_contract(text).contract
    assert (contract.name, contract.description, contract.driving_table) == ("club", "", "members")
    assert contract.generator == ""
    described = _changed("description: {purpose: Members and their bookings}", "description: {usage: none}")
    assert parse_contract(described).contract.description == ""


def test_a_contract_naming_the_built_in_generator_keeps_it():
    text = _changed(
        "  - {property: drivingTable, value: bookings}\n",
        "  - {property: drivingTable, value: bookings}\n  - {property: generator, value: shop}\n",
    )
    assert parse_contract(text).contract.generator == "shop"


def test_a_contract_is_written_back_as_the_same_contract():
    contract = parse_contract(CLUB).contract
    text = dump_contract(contract)
    assert parse_contract(text).contract == contract
    assert yaml.safe_load(text) == contract_document(contract)
    generated = parse_contract(
        _changed("value: bookings}", "value: bookings}\n  - {property: generator, value: shop}")
    )
    assert parse_contract(dump_contract(generated.contract)).contract == generated.contract


def test_the_written_document_says_each_declaration_in_the_standards_words():
    document = contract_document(parse_contract(CLUB).contract)
    assert {k: v for k, v in document.items() if k != "schema"} == {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": "club",
        "name": "Club",
        "version": "2.1.0",
        "status": "active",
        "description": {"purpose": "Members and their bookings"},
        "customProperties": [{"property": "drivingTable", "value": "bookings"}],
    }
    assert list(document) == [
        "apiVersion",
        "kind",
        "id",
        "name",
        "version",
        "status",
        "description",
        "schema",
        "customProperties",
    ]
    members, bookings, seats = document["schema"]
    props = {p["name"]: p for p in members["properties"]}
    assert (members["name"], members["physicalType"], members["description"]) == (
        "members",
        "table",
        "People who joined",
    )
    assert props["member_id"] == {
        "name": "member_id",
        "logicalType": "integer",
        "primaryKey": True,
        "required": True,
        "customProperties": [{"property": "kind", "value": "id"}],
    }
    assert props["email"] == {
        "name": "email",
        "logicalType": "string",
        "required": True,
        "logicalTypeOptions": {"format": "email"},  # its pattern is the default one: not written
        "customProperties": [{"property": "kind", "value": "email"}],
    }
    assert props["tier"] == {
        "name": "tier",
        "logicalType": "string",
        "required": False,
        "quality": [
            {"metric": "invalidValues", "arguments": {"validValues": ["gold", "silver"]}, "mustBe": 0}
        ],
        "customProperties": [{"property": "kind", "value": "category"}],
    }
    assert props["full_name"]["customProperties"] == [
        {"property": "kind", "value": "text"},
        {"property": "case", "value": "title"},
        {"property": "essential", "value": True},
    ]
    assert props["badge"]["logicalTypeOptions"] == {"pattern": "^B[0-9]{4}$"}
    assert props["balance"]["logicalTypeOptions"] == {"multipleOf": 0.01, "minimum": 0, "maximum": 1000}
    assert props["rating"]["logicalTypeOptions"] == {"multipleOf": 0.1}
    assert props["joined"]["logicalType"] == "timestamp"
    assert "logicalTypeOptions" not in props["joined"] and "logicalTypeOptions" not in props["phone"]
    assert members["customProperties"] == [{"property": "businessKey", "value": ["member_id"]}]
    member = next(p for p in bookings["properties"] if p["name"] == "member_id")
    assert member["relationships"] == [{"type": "foreignKey", "to": "members.member_id"}]
    assert member["logicalType"] == "integer"
    assert bookings["customProperties"] == [
        {"property": "businessKey", "value": ["member_id", "booked_at"]},
        {"property": "parent", "value": "members"},
        {"property": "volume", "value": {"per": "members", "mean": 2}},
        {
            "property": "constraints",
            "value": [
                {
                    "id": "booked_after_joining",
                    "kind": "after",
                    "column": "booked_at",
                    "via": "member_id",
                    "other": "members.joined",
                    "severity": "error",
                    "catches": ["order_before_signup"],
                    "description": "A booking follows the joining",
                }
            ],
        },
    ]
    assert "description" not in bookings
    row, booking = sorted(seats["properties"], key=lambda p: p["name"] != "row")
    assert (row["primaryKeyPosition"], booking["primaryKeyPosition"]) == (1, 2)
    assert seats["customProperties"] == [{"property": "businessKey", "value": ["row", "booking_id"]}]


def test_a_constraints_optional_fields_are_written_only_when_declared():
    table = m.Table("t", (C("t_id", m.ID), C("a", m.INT), C("b", m.INT), C("g", m.INT)), ("t_id",))
    full = m.Constraint(
        id="sums", kind=m.AGGREGATE, table="t", column="a", other="t.b", via="g", terms=("a", "-b"),
        group="g", severity="warning", complete_when={"sequence": "b"},
    )  # fmt: skip
    bare = m.Constraint(id="plain", kind=m.ROW, table="t", column="a")
    contract = m.Contract("c", "c", "1", {"t": table}, constraints=(full, bare))
    written = contract_document(contract)["schema"][0]["customProperties"][-1]["value"]
    assert written == [
        {
            "id": "sums",
            "kind": "aggregate",
            "column": "a",
            "via": "g",
            "other": "t.b",
            "terms": ["a", "-b"],
            "group": "g",
            "complete_when": {"sequence": "b"},
            "severity": "warning",
        },
        {"id": "plain", "kind": "row", "column": "a", "severity": "error"},
    ]
    described = contract_document(m.Contract("c", "c", "1", {"t": table}, description="what it is"))
    assert described["description"] == {"purpose": "what it is"}
    assert "description" not in contract_document(contract)


def test_a_columns_generate_hints_and_physical_type_are_written_and_read_back():
    text = _changed(
        "      - {name: visits, logicalType: integer, logicalTypeOptions: {minimum: 0}}\n",
        "      - name: visits\n        logicalType: integer\n        physicalType: int4\n"
        "        customProperties: [{property: generate, value: {distribution: uniform}}]\n",
    )
    visits = parse_contract(text).contract.tables["members"].column("visits")
    assert (visits.type, visits.physical_type, visits.generate) == (
        m.INT,
        "int4",
        {"distribution": "uniform"},
    )
    prop = next(
        p
        for p in contract_document(parse_contract(text).contract)["schema"][0]["properties"]
        if p["name"] == "visits"
    )
    assert prop["physicalType"] == "int4"
    assert prop["customProperties"] == [
        {"property": "kind", "value": "int"},
        {"property": "generate", "value": {"distribution": "uniform"}},
    ]


def _kind(spec: str, *, key: bool = False) -> str:
    """The kind CLUB's members table gives a column declared by ``spec`` (YAML flow mapping items)."""
    primary = "primaryKey: true" if key else "primaryKey: false"
    text = CLUB[: CLUB.index("      - property: constraints")] + CLUB[CLUB.index("  - name: seats") :]
    text = _changed(
        "{name: member_id, logicalType: integer, primaryKey: true}", f"{{{spec}, {primary}}}", text
    )
    if not key:
        text = _changed(
            "      - {name: email,",
            "      - {name: member_id, logicalType: integer, primaryKey: true}\n      - {name: email,",
            text,
        )
    table = parse_contract(text).contract.tables["members"]
    return table.columns[0].type


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("name: amount, logicalType: number", m.MONEY),  # a number has two decimals
        ("name: score, logicalType: number, logicalTypeOptions: {multipleOf: 0.1}", m.DECIMAL1),
        ("name: score, logicalType: number, logicalTypeOptions: {multipleOf: 1}", m.INT),
        ("name: score, logicalType: number, physicalType: int4", m.INT),
        ("name: score, logicalType: number, physicalType: bigserial", m.INT),
        ("name: score, logicalType: number, physicalType: smallint", m.INT),
        ("name: score, logicalType: number, physicalType: numeric", m.MONEY),
        ("name: score, logicalType: number, physicalType: interval", m.MONEY),  # int only as a whole word
        ("name: orderqty, logicalType: number", m.INT),  # named like a quantity
        ("name: line_count, logicalType: number", m.INT),
        ("name: count_of_days, logicalType: number", m.MONEY),  # only a name that ends so
        ("name: score, logicalType: integer", m.INT),
        ("name: day, logicalType: date", m.TIMESTAMP),
        ("name: contact, logicalType: string, logicalTypeOptions: {format: email}", m.EMAIL),
        ("name: work_email, logicalType: string", m.EMAIL),
        ("name: emails, logicalType: string", m.TEXT),
        ("name: phone, logicalType: string", m.PHONE),
        ("name: home_phone, logicalType: string", m.PHONE),
        ("name: phones, logicalType: string", m.TEXT),
        ("name: ref, logicalType: string, logicalTypeOptions: {pattern: '^R[0-9]+$'}", m.CODE),
        ("name: note, logicalType: string", m.TEXT),
        ("name: note", m.TEXT),  # no logical type: text
        ("name: score, logicalType: number, customProperties: [{property: kind, value: int}]", m.INT),
    ],
)
def test_a_column_that_names_no_kind_gets_the_one_its_type_options_and_name_give(spec, kind):
    assert _kind(spec) == kind


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("name: member_id, logicalType: integer", m.ID),
        ("name: member_id", m.ID),  # a sole key without a type is numbered
        ("name: productid, logicalType: number", m.ID),  # named like a key
        ("name: member_id, logicalType: number, physicalType: serial", m.ID),
        ("name: member_ref, logicalType: number", m.MONEY),  # a number key that is not whole is no id
        ("name: member_id, logicalType: string", m.TEXT),  # a text key
        ("name: member_id, logicalType: timestamp", m.TIMESTAMP),
    ],
)
def test_a_sole_primary_key_is_an_id_when_it_holds_whole_numbers(spec, kind):
    assert _kind(spec, key=True) == kind


def test_the_money_and_rating_steps_are_what_the_written_document_says():
    contract = parse_contract(CLUB).contract
    reread = parse_contract(dump_contract(contract)).contract.tables["members"]
    assert (reread.column("balance").type, reread.column("rating").type) == (m.MONEY, m.DECIMAL1)


UNDECLARED = """\
apiVersion: v3.1.0
kind: DataContract
id: sales
version: 1.0.0
status: active
schema:
  - name: employee
    properties:
      - {name: businessentityid, logicalType: integer, primaryKey: true}
  - name: person
    properties:
      - {name: businessentityid, logicalType: integer, primaryKey: true}
  - name: customers
    properties:
      - {name: cust_key, logicalType: integer, primaryKey: true}
  - name: box
    properties:
      - {name: box_no, logicalType: integer, primaryKey: true}
  - name: boxes
    properties:
      - {name: boxes_no, logicalType: integer, primaryKey: true}
  - name: pallet
    properties:
      - {name: pallet_no, logicalType: integer, primaryKey: true}
      - {name: pallet_id, logicalType: integer}
  - name: country
    properties:
      - {name: code, logicalType: string, primaryKey: true, logicalTypeOptions: {pattern: '^[A-Z]{2}$'},
         customProperties: [{property: case, value: upper}]}
  - name: documents
    properties:
      - {name: document_id, logicalType: integer, primaryKey: true}
      - name: owner
        logicalType: integer
        description: "Employee who owns it. Foreign key to Person.BusinessEntityID"
      - {name: keeper, logicalType: integer, description: "foreign key to Person.Nobody"}
      - {name: businessentityid, logicalType: integer}
      - {name: customer_id, logicalType: string, logicalTypeOptions: {pattern: '^[0-9]+$'}}
      - {name: box_id, logicalType: integer}
      - {name: code, logicalType: string}
      - {name: stray_id, logicalType: integer}
      - {name: person, logicalType: integer}
      - {name: rank_id, logicalType: integer, customProperties: [{property: kind, value: int}]}
      - {name: cust_key, logicalType: integer, customProperties: [{property: kind, value: int}]}
      - name: tier_id
        logicalType: string
        quality: [{metric: invalidValues, arguments: {validValues: [a, b]}, mustBe: 0}]
"""


def test_foreign_keys_a_contract_does_not_declare_are_inferred_from_descriptions_and_names():
    columns = {c.name: c for c in parse_contract(UNDECLARED).contract.tables["documents"].columns}
    refs = {name: (c.type, c.references) for name, c in columns.items()}
    assert refs == {
        "document_id": (m.ID, None),  # its own key refers to nothing
        "owner": (m.FK, "person"),  # the description names the table and its key
        "keeper": (m.INT, None),  # a description naming no key of that table says nothing
        "businessentityid": (m.FK, "employee"),  # two tables have that key: the first declared
        "customer_id": (m.FK, "customers"),  # a *_id column naming a table in the plural
        "box_id": (m.INT, None),  # box and boxes: which one is not said
        "code": (m.CODE, "country"),  # a text key: held as the key is, its pattern and case
        "stray_id": (m.INT, None),  # names no table
        "person": (m.INT, None),  # named like a table but not like a key
        "rank_id": (m.INT, None),  # says its kind
        "cust_key": (m.INT, None),  # named as the customers' key, but it says its kind
        "tier_id": (m.CATEGORY, None),  # a category is no reference
    }
    code = columns["code"]
    assert (code.pattern, code.case) == ("^[A-Z]{2}$", "upper")
    assert columns["owner"].pattern is None
    assert (
        columns["customer_id"].pattern is None
    )  # a reference to a number key, whatever its text looked like
    pallet = parse_contract(UNDECLARED).contract.tables["pallet"].column("pallet_id")
    assert (pallet.type, pallet.references) == (m.INT, None)  # a table's own name refers to no other table


def test_a_key_named_after_its_own_table_is_preferred_among_several():
    text = UNDECLARED.replace("  - name: person\n", "  - name: businessentity\n").replace(
        "Person.BusinessEntityID", "Nobody.BusinessEntityID"
    )
    columns = parse_contract(text).contract.tables["documents"]
    assert columns.column("businessentityid").references == "businessentity"
    assert columns.column("owner").references is None  # the described table is not there


def test_a_table_named_after_a_key_column_in_the_singular_or_with_es():
    text = UNDECLARED.replace("  - name: boxes\n", "  - name: crates\n")
    assert parse_contract(text).contract.tables["documents"].column("box_id").references == "box"
    text = UNDECLARED.replace("  - name: box\n", "  - name: crate\n")
    assert parse_contract(text).contract.tables["documents"].column("box_id").references == "boxes"
    text = UNDECLARED.replace("  - name: customers\n", "  - name: customer\n")
    assert parse_contract(text).contract.tables["documents"].column("customer_id").references == "customer"
    text = UNDECLARED.replace("  - name: box\n", "  - name: boxs\n").replace(
        "  - name: boxes\n", "  - name: crates\n"
    )
    assert parse_contract(text).contract.tables["documents"].column("box_id").references == "boxs"


def test_a_table_keyed_by_text_is_referred_to_as_text():
    contract = parse_contract(UNDECLARED).contract
    assert contract.tables["country"].column("code").type == m.CODE
    assert contract.tables["country"].key is None  # a text key numbers no rows
    assert contract.tables["country"].sole_key == "code"


@pytest.mark.parametrize(
    ("old", "new", "field", "says"),
    [
        (  # the schema's own refusals name the path by position where an item has no name
            "mustBe: 0}",
            "mustBe: 0, dimension: 5}",
            "schema[members].properties[tier].quality[0].dimension",
            "5 is not of type 'string' (the ODCS v3.1.0 schema refuses it)",
        ),
        (
            "status: active",
            "status: active\ntags: [1]",
            "tags[0]",  # an item of a list of plain values: by its position
            "1 is not of type 'string' (the ODCS v3.1.0 schema refuses it)",
        ),
        (
            "id: club",
            "id: [club]",
            "id",
            "['club'] is not of type 'string' (the ODCS v3.1.0 schema refuses it)",
        ),
        (
            "{name: phone, logicalType: string}",
            "{name: phone, logicalType: string, customProperties: [{property: parent, value: members}]}",
            "schema[members].properties[phone].customProperties[0]",
            "'parent' belongs elsewhere; see docs/contracts.md",
        ),
        (
            "{name: phone, logicalType: string}",
            "{name: phone, logicalType: string, customProperties: [{property: kind, value: telephone}]}",
            "schema[members].properties[phone].customProperties.kind",
            "'telephone' is not one of id, fk, int, money, decimal1, timestamp, text, category, email, "
            "phone, code",
        ),
        (
            "{property: case, value: title}",
            "{property: case, value: camel}",
            "schema[members].properties[full_name].customProperties.case",
            "'camel' is not one of title, lower, upper",
        ),
        (
            "{name: phone, logicalType: string}",
            "{name: phone, logicalType: string, customProperties: [{property: kind, value: category}]}",
            "schema[members].properties[phone].quality",
            "a category needs its allowed values: metric invalidValues with validValues",
        ),
        (
            "{name: phone, logicalType: string}",
            "{name: phone, logicalType: string, customProperties: [{property: kind, value: fk}]}",
            "schema[members].properties[phone].relationships",
            "a foreign key needs a relationship to TABLE.COLUMN",
        ),
        (
            "{name: phone, logicalType: string}",
            "{name: phone, logicalType: string, customProperties: [{property: generate, value: 5}]}",
            "schema[members].properties[phone].customProperties.generate",
            "must be a mapping of names to values; see docs/contracts.md",
        ),
        (
            "{property: volume, value: {per: members, mean: 2}}",
            "{property: volume, value: [members]}",
            "schema[bookings].customProperties.volume",
            "must be a mapping of names to values; see docs/contracts.md",
        ),
        (
            "{property: volume, value: {per: members, mean: 2}}",
            "{property: volume, value: {per: guests}}",
            "schema[bookings].customProperties.volume.per",
            "'guests' is not a table",
        ),
        (
            "  - name: seats\n    properties:\n",
            "  - name: seats\n    properties: []\n  - name: spare\n    properties:\n",
            "schema[seats].properties",
            "a table needs at least one column",
        ),
        (
            "{name: booking_id, logicalType: integer, primaryKey: true}",
            "{name: booking_id, logicalType: integer}",
            "schema[bookings].properties",
            "a table needs a primary key: primaryKey: true on its key column(s)",
        ),
        (
            "  - name: seats\n",
            "  - name: members\n",
            "schema[members]",
            "names a table twice; give each table one schema object",
        ),
        (
            "{property: businessKey, value: [member_id, booked_at]}",
            "{property: businessKey, value: [member_id, booked_on]}",
            "schema[bookings].customProperties.businessKey",
            "'booked_on' is not a column",
        ),
        (
            "{property: businessKey, value: [member_id, booked_at]}",
            "{property: kind, value: int}",
            "schema[bookings].customProperties[0]",
            "'kind' belongs elsewhere; see docs/contracts.md",
        ),
        (
            "to: members.member_id",
            "to: schema/members/properties/member_id",  # the standard's long form, which is not read
            "schema[bookings].properties[member_id].relationships",
            "'schema/members/properties/member_id' is not a table of this contract",
        ),
        (
            "{property: parent, value: members}",
            "{property: parent, value: member}",
            "schema[bookings].customProperties.parent",
            "'member' is not a table",
        ),
        (
            "to: members.member_id",
            "to: guests.member_id",
            "schema[bookings].properties[member_id].relationships",
            "'guests' is not a table of this contract",
        ),
        (
            "to: members.member_id",
            "to: seats.booking_id",
            "schema[bookings].properties[member_id].relationships",
            "'seats' has a composite primary key; a foreign key refers to a table keyed by one column",
        ),
        (
            "{property: drivingTable, value: bookings}",
            "{property: drivingTable, value: booking}",
            "customProperties.drivingTable",
            "'booking' is not a table",
        ),
        (
            "{property: drivingTable, value: bookings}",
            "{property: generator, value: acme}",
            "customProperties.generator",
            "'acme' is not a built-in generator; leave it out for the generic one",
        ),
        (
            "{property: drivingTable, value: bookings}",
            "{property: parent, value: members}",
            "customProperties[0]",
            "'parent' belongs elsewhere; see docs/contracts.md",
        ),
    ],
)
def test_a_bad_contract_is_refused_with_the_yaml_path_and_what_to_change(old, new, field, says):
    refused = _refused(_changed(old, new))
    assert refused.field == field
    assert str(refused) == f"{field}: {says}"


def test_a_value_the_standard_does_not_allow_is_refused_at_the_named_column():
    refused = _refused(
        _changed("{name: joined, logicalType: timestamp,", "{name: joined, logicalType: timestmp,")
    )
    assert refused.field.startswith("schema[members].properties[joined]")
    assert "timestmp" in str(refused) and str(refused).endswith("(the ODCS v3.1.0 schema refuses it)")


def test_a_composite_key_with_one_key_column_left_is_a_sole_key_again():
    text = _changed("primaryKey: true, primaryKeyPosition: 1}", "primaryKey: false}")
    seats = parse_contract(text).contract.tables["seats"]
    assert seats.primary_key == ("booking_id",)
    # a sole integer key numbers the rows, though it also refers to a booking
    assert (seats.column("booking_id").type, seats.column("booking_id").references) == (m.ID, "bookings")


CONSTRAINT = (
    "{id: booked_after_joining, kind: after, column: booked_at, via: member_id, other: members.joined,"
)


@pytest.mark.parametrize(
    ("new", "field", "says"),
    [
        ("{id: booked_after_joining, kind: before, column: booked_at, via: member_id, other: members.joined,",
         "schema[bookings].customProperties.constraints[0].kind", "is not one of"),
        ("{kind: after, column: booked_at, via: member_id, other: members.joined,",
         "schema[bookings].customProperties.constraints[0].id", "is missing"),
        ("{id: booked_after_joining, kind: after, via: member_id, other: members.joined,",
         "schema[bookings].customProperties.constraints[0].column", "is missing"),
        ("{id: booked_after_joining, kind: after, column: booked_on, via: member_id, other: members.joined,",
         "schema[bookings].customProperties.constraints[booked_after_joining]",
         "bookings.booked_on is not a column of this contract"),
        ("{id: booked_after_joining, kind: after, column: booked_at, via: member_id, other: members.left,",
         "schema[bookings].customProperties.constraints[booked_after_joining]",
         "members.left is not a column of this contract"),
        ("{id: booked_after_joining, kind: after, column: booked_at, via: member_id, other: guests.joined,",
         "schema[bookings].customProperties.constraints[booked_after_joining]",
         "guests.joined is not a column of this contract"),
        ("{id: booked_after_joining, kind: balance, column: fee, group: slot, other: members.joined,",
         "schema[bookings].customProperties.constraints[booked_after_joining]",
         "bookings.slot is not a column of this contract"),
        ("{id: booked_after_joining, kind: row, column: fee, terms: [fee, members.cost],"
         " other: members.joined,",
         "schema[bookings].customProperties.constraints[booked_after_joining]",
         "members.cost is not a column of this contract"),
        ("{id: booked_after_joining, kind: after, column: booked_at, via: member_id, other: seats.row,",
         "schema[bookings].customProperties.constraints[booked_after_joining]",
         "seats has no single integer primary key, which a after follows"),
        ("{id: booked_after_joining, kind: after, column: booked_at, complete_when: {sequence: fee},"
         " other: members.joined,",
         "schema[bookings].customProperties.constraints[booked_after_joining].complete_when",
         "only an aggregate may say it, as {sequence: COLUMN}"),
        ("{id: booked_after_joining, kind: aggregate, column: booked_at, complete_when: {line: fee},"
         " other: members.joined,",
         "schema[bookings].customProperties.constraints[booked_after_joining].complete_when",
         "only an aggregate may say it, as {sequence: COLUMN}"),
        ("{id: booked_after_joining, kind: aggregate, column: booked_at, complete_when: {sequence: lines},"
         " other: members.joined,",
         "schema[bookings].customProperties.constraints[booked_after_joining]",
         "members.lines is not a column of this contract"),
        ("{id: booked_after_joining, kind: aggregate, column: booked_at, complete_when: [fee],"
         " other: members.joined,",
         "schema[bookings].customProperties.constraints[0].complete_when",
         "must be a mapping of names to values; see docs/contracts.md"),
    ],
)  # fmt: skip
def test_a_bad_constraint_is_refused_with_its_path(new, field, says):
    refused = _refused(_changed(CONSTRAINT, new))
    assert refused.field == field
    assert str(refused).startswith(f"{field}: {says}")


def test_a_constraint_that_is_not_a_mapping_is_refused_at_its_kind():
    refused = _refused(_changed("          - " + CONSTRAINT, "          - after\n          - " + CONSTRAINT))
    assert refused.field == "schema[bookings].customProperties.constraints[0].kind"
    assert str(refused) == f"{refused.field}: is not one of {', '.join(m.CONSTRAINT_KINDS)}"


def test_a_row_constraint_may_relate_a_table_keyed_by_text_and_takes_its_declared_fields():
    text = _changed(
        CONSTRAINT
        + "\n             catches: [order_before_signup], description: A booking follows the joining}",
        "{id: fee_sum, kind: row, column: fee, terms: [fee, -fee], op: sum, other: seats.row,"
        " severity: warning}",
    )
    (constraint,) = parse_contract(text).contract.constraints
    assert constraint == m.Constraint(
        id="fee_sum", kind=m.ROW, table="bookings", column="fee", other="seats.row", terms=("fee", "-fee"),
        op=m.SUM, severity="warning",
    )  # fmt: skip


def test_an_aggregate_may_say_when_its_rows_are_complete():
    text = _changed(
        CONSTRAINT
        + "\n             catches: [order_before_signup], description: A booking follows the joining}",
        "{id: fees, kind: aggregate, column: fee, via: member_id, other: members.visits,"
        " complete_when: {sequence: member_id}}",
    )
    (constraint,) = parse_contract(text).contract.constraints
    assert constraint == m.Constraint(
        id="fees", kind=m.AGGREGATE, table="bookings", column="fee", other="members.visits", via="member_id",
        complete_when={"sequence": "member_id"},
    )  # fmt: skip


def test_what_is_not_a_contract_is_refused_as_a_whole():
    for text in ("- a\n- b\n", "just words\n"):
        refused = _refused(text)
        assert str(refused) == "(the document): is not a YAML mapping; start from docs/contracts.md"
    refused = _refused("a: b\n  c: d\n")
    assert str(refused) == "line 2, column 4: is not valid YAML: mapping values are not allowed here"
    refused = _refused(CLUB + "#" * 5_000_000)
    assert str(refused) == "(the document): is larger than 5,000,000 bytes"
    no_tables = CLUB[: CLUB.index("schema:")] + "schema: []\n"
    assert str(_refused(no_tables)) == "schema: declares no table; add at least one schema object"


def test_a_contract_of_exactly_the_size_limit_is_read_and_one_byte_more_is_not(monkeypatch):
    # the limit lowered to this contract's size (reading 5 MB of YAML takes seconds): the same boundary
    monkeypatch.setattr(contract, "MAX_CONTRACT_BYTES", len(CLUB.encode()))
    assert parse_contract(CLUB).contract.id == "club"
    assert str(_refused(CLUB + "#")) == f"(the document): is larger than {len(CLUB.encode()):,} bytes"


def test_fields_the_standard_does_not_know_are_ignored_with_a_warning_naming_each():
    text = _changed("status: active\n", "status: active\nowner: someone\n")
    text = _changed(
        "    description: People who joined\n",
        "    description: People who joined\n    colour: blue\n    size: 3\n",
        text,
    )
    text = _changed(
        "{name: phone, logicalType: string}", "{name: phone, logicalType: string, mask: true}", text
    )
    source = parse_contract(text)
    assert source.warnings == (
        "owner: is not a field of ODCS v3.1.0; it is ignored",
        "schema[members].colour: is not a field of ODCS v3.1.0; it is ignored",
        "schema[members].size: is not a field of ODCS v3.1.0; it is ignored",
        "schema[members].properties[phone].mask: is not a field of ODCS v3.1.0; it is ignored",
    )
    assert source.contract == parse_contract(CLUB).contract  # and nothing else changes
    document = yaml.safe_load(text)
    assert lenient_standard(document) == source.warnings
    with pytest.raises(ContractError) as refused:  # what the workbench writes is held to the standard
        validate_standard(document)
    assert refused.value.field == "(the document)"
    assert "'owner' was unexpected" in str(refused.value)


def test_a_strict_check_passes_a_valid_document_and_names_the_first_wrong_field():
    document = yaml.safe_load(CLUB)
    assert validate_standard(document) is None
    document["schema"][1]["properties"][2]["required"] = "yes"
    with pytest.raises(ContractError) as refused:
        validate_standard(document)
    assert refused.value.field == "schema[bookings].properties[booked_at].required"
    assert str(refused.value) == (
        "schema[bookings].properties[booked_at].required: 'yes' is not of type 'boolean' "
        "(the ODCS v3.1.0 schema refuses it)"
    )


def test_a_contract_file_is_read_and_a_missing_one_named(tmp_path):
    path = tmp_path / "club.yaml"
    path.write_text(CLUB, encoding="utf-8")
    source = read_contract(path)
    assert isinstance(source, ContractSource)
    assert source.contract == parse_contract(CLUB).contract
    missing = tmp_path / "gone.yaml"
    with pytest.raises(ContractError) as refused:
        read_contract(missing)
    assert str(refused.value) == f"path: {missing} cannot be read: No such file or directory"


def test_a_built_in_contract_is_found_by_name_and_an_unknown_name_lists_them():
    names = built_in_names()
    assert "shop" in names and list(names) == sorted(names)
    assert built_in("shop").contract.id == "shop"
    with pytest.raises(ContractError) as refused:
        built_in("club")
    assert (
        str(refused.value) == f"contract: 'club' is not a built-in contract; choose one of {', '.join(names)}"
    )


ROW_RULE = (
    CONSTRAINT + "\n             catches: [order_before_signup], description: A booking follows the joining}"
)


@pytest.mark.parametrize(
    ("new", "field", "says"),
    [
        ("{id: fee_rule, kind: row, column: fee, terms: [visits], op: ratio}",
         "schema[bookings].customProperties.constraints[fee_rule].op", "'ratio' is not one of product, sum"),
        ("{id: fee_rule, kind: row, column: fee}",
         "schema[bookings].customProperties.constraints[fee_rule].terms",
         "is missing: name the columns the value follows from"),
        ("{id: fee_rule, kind: row, column: fee, terms: [fee, -fee]}",
         "schema[bookings].customProperties.constraints[fee_rule].terms",
         "-fee: only a sum subtracts (op: sum)"),
        ("{id: fee_rule, kind: row, column: fee, terms: [guests.fee]}",
         "schema[bookings].customProperties.constraints[fee_rule].terms",
         "guests.fee: bookings has no single foreign key to 'guests'; a term names a column of its own row "
         "or of the row its foreign key refers to"),
        ("{id: fee_rule, kind: row, column: fee, terms: [seats.booking_id]}",
         "schema[bookings].customProperties.constraints[fee_rule].terms",
         "seats.booking_id: bookings has no single foreign key to 'seats'; a term names a column of its own "
         "row or of the row its foreign key refers to"),
        ("{id: fee_rule, kind: row, column: fee, terms: [members.cost]}",
         "schema[bookings].customProperties.constraints[fee_rule]",
         "members.cost is not a column of this contract"),
        ("{id: fee_rule, kind: row, column: fee, terms: [booked_at]}",
         "schema[bookings].customProperties.constraints[fee_rule].terms",
         "bookings.booked_at is not a number a row relates"),
        ("{id: fee_rule, kind: row, column: booked_at, terms: [fee]}",
         "schema[bookings].customProperties.constraints[fee_rule].terms",
         "bookings.booked_at is not a number a row relates"),
        ("{id: fee_rule, kind: row, column: nofee, terms: [fee]}",
         "schema[bookings].customProperties.constraints[fee_rule]",
         "bookings.nofee is not a column of this contract"),
        ("{id: fee_rule, kind: row, column: fee, terms: [fees]}",
         "schema[bookings].customProperties.constraints[fee_rule]",
         "bookings.fees is not a column of this contract"),
    ],
)  # fmt: skip
def test_a_row_constraints_terms_are_numbers_of_its_own_row_or_of_the_one_row_linked_to_it(new, field, says):
    refused = _refused(_changed(ROW_RULE, new))
    assert (refused.field, str(refused)) == (field, f"{field}: {says}")


def test_a_row_constraint_on_a_table_with_no_link_to_the_term_is_refused():
    declared = _changed(
        "    properties:\n      - {name: member_id,",
        "    customProperties:\n      - property: constraints\n        value:\n"
        "          - {id: seat_rule, kind: row, column: balance, terms: [seats.booking_id]}\n"
        "    properties:\n      - {name: member_id,",
    )
    refused = _refused(declared)
    assert refused.field == "schema[members].customProperties.constraints[seat_rule].terms"
    assert str(refused).endswith(
        "seats.booking_id: members has no single foreign key to 'seats'; a term names a column of its own "
        "row or of the row its foreign key refers to"
    )


def test_a_row_constraint_takes_no_term_from_a_row_that_refers_to_its_row():
    """members -> bookings is no foreign key of the members' (bookings refer to members): refused."""
    declared = _changed(
        "    properties:\n      - {name: member_id,",
        "    customProperties:\n      - property: constraints\n        value:\n"
        "          - {id: fee_rule, kind: row, column: balance, terms: [bookings.fee]}\n"
        "    properties:\n      - {name: member_id,",
    )
    refused = _refused(declared)
    assert str(refused) == (
        "schema[members].customProperties.constraints[fee_rule].terms: bookings.fee: members has no single "
        "foreign key to 'bookings'; a term names a column of its own row or of the row its foreign key "
        "refers to"
    )


def test_a_row_constraint_takes_terms_of_its_own_row_and_of_its_parent_row():
    text = _changed(
        ROW_RULE, "{id: fee_rule, kind: row, column: fee, terms: [members.balance, -fee], op: sum}"
    )
    (constraint,) = parse_contract(text).contract.constraints
    assert (constraint.terms, constraint.op) == (("members.balance", "-fee"), m.SUM)
    product = _changed(ROW_RULE, "{id: fee_rule, kind: row, column: fee, terms: [members.balance, visits]}")
    product = product.replace("terms: [members.balance, visits]", "terms: [members.balance, members.visits]")
    (constraint,) = parse_contract(product).contract.constraints
    assert (constraint.terms, constraint.op) == (("members.balance", "members.visits"), m.PRODUCT)
    written = contract_document(parse_contract(product).contract)["schema"][1]["customProperties"][-1]
    assert written["value"] == [
        {"id": "fee_rule", "kind": "row", "column": "fee", "terms": ["members.balance", "members.visits"],
         "severity": "error"}
    ]  # fmt: skip
    summed = contract_document(parse_contract(text).contract)["schema"][1]["customProperties"][-1]["value"]
    assert summed[0]["op"] == "sum"


GOLD_SQL = (
    "SELECT m.member_id, count(*) AS bookings\nFROM members m JOIN bookings b USING (member_id)\nGROUP BY 1"
)


def _gold(value: str) -> str:
    """CLUB declaring gold tables (``value`` in YAML flow style)."""
    return _changed(
        "  - {property: drivingTable, value: bookings}\n",
        f"  - {{property: drivingTable, value: bookings}}\n  - property: gold\n    value: {value}\n",
    )


def test_gold_tables_are_read_with_the_silver_tables_each_reads_and_written_back():
    text = _gold(
        "[{name: busy_members, description: Bookings per member,"
        ' sql: "SELECT m.member_id, count(*) AS bookings'
        '\\nFROM members m JOIN bookings b USING (member_id)\\nGROUP BY 1\\n"},'
        ' {name: seat_rows, sql: "WITH s AS (SELECT * FROM seats) SELECT row FROM s"}]'
    )
    contract = parse_contract(text).contract
    assert contract.gold == (
        m.GoldTable("busy_members", GOLD_SQL, "Bookings per member", ("members", "bookings")),
        m.GoldTable("seat_rows", "WITH s AS (SELECT * FROM seats) SELECT row FROM s", "", ("seats",)),
    )
    written = dump_contract(contract)
    assert "sql: |-\n" in written  # a query of several lines stays readable: a literal block
    assert parse_contract(written).contract == contract
    assert contract_document(contract)["customProperties"][-1] == {
        "property": "gold",
        "value": [
            {"name": "busy_members", "description": "Bookings per member", "sql": GOLD_SQL},
            {
                "name": "seat_rows",
                "description": "",
                "sql": "WITH s AS (SELECT * FROM seats) SELECT row FROM s",
            },
        ],
    }
    plain = contract_document(parse_contract(CLUB).contract)["customProperties"]
    assert [p["property"] for p in plain] == ["drivingTable"]


@pytest.mark.parametrize(
    ("value", "field", "says"),
    [
        ("{name: x, sql: SELECT 1}", "customProperties[gold]", "must be a list of {name, description, sql}"),
        ("[busy]", "customProperties[gold][0]", "must be a mapping {name, description, sql}"),
        ("[{name: busy, sql: SELECT 1, owner: me}]", "customProperties[gold][0].owner",
         "is not a field of a gold table: name, description, sql"),
        ("[{name: Busy, sql: SELECT 1}]", "customProperties[gold][0].name",
         "'Busy' is not a gold table name; use lower-case letters, digits and _"),
        ("[{sql: SELECT 1}]", "customProperties[gold][0].name",
         "None is not a gold table name; use lower-case letters, digits and _"),
        ("[{name: busy, sql: SELECT 1}, {name: busy, sql: SELECT 2}]", "customProperties[gold][1].name",
         "'busy' names a gold table twice"),
        ("[{name: busy}]", "customProperties[gold][0].sql", "is missing: one SELECT over the silver tables"),
        ("[{name: busy, sql: '  '}]", "customProperties[gold][0].sql",
         "is missing: one SELECT over the silver tables"),
        ("[{name: busy, sql: 'SELECT 1; SELECT 2'}]", "customProperties[gold][0].sql",
         "must be one SELECT statement over the silver tables (found SELECT, SELECT); write a single query"),
        ("[{name: busy, sql: ';'}]", "customProperties[gold][0].sql",
         "must be one SELECT statement over the silver tables (found nothing); write a single query"),
        ("[{name: busy, sql: DELETE FROM members}]", "customProperties[gold][0].sql",
         "must be one SELECT statement over the silver tables (found DELETE); write a single query"),
        ("[{name: busy, sql: SELECT * FROM main.members}]", "customProperties[gold][0].sql",
         "reads main.members: a gold query reads silver tables by name only"),
        ("[{name: busy, sql: SELECT * FROM guests}]", "customProperties[gold][0].sql",
         "reads 'guests', which is not a table of this contract; name one of members, bookings, seats"),
    ],
)  # fmt: skip
def test_a_bad_gold_table_is_refused_with_its_path_and_what_to_change(value, field, says):
    refused = _refused(_gold(value))
    assert (refused.field, str(refused)) == (field, f"{field}: {says}")


def test_gold_sql_that_does_not_parse_is_refused_with_the_parsers_reason():
    refused = _refused(_gold("[{name: busy, sql: 'SELECT (1'}]"))
    assert refused.field == "customProperties[gold][0].sql"
    # the parser's own reason, then what to do
    assert str(refused) == (
        "customProperties[gold][0].sql: is not SQL (Expecting ). Line 1, Col: 9.); write one SELECT over the "
        "silver tables"
    )


def test_gold_sql_is_read_as_duckdb_reads_it():
    text = _gold(
        "[{name: halves, sql: SELECT member_id // 2 AS half FROM members}]"
    )  # // divides whole numbers
    assert parse_contract(text).contract.gold[0].reads == ("members",)


def test_the_written_text_keeps_the_standards_order_its_letters_and_long_lines():
    purpose = "Members of the café and their bookings, " + "kept for the season " * 2  # past 80 columns
    text = _changed("{purpose: Members and their bookings}", f'{{purpose: "{purpose.strip()}"}}')
    written = dump_contract(parse_contract(text).contract)
    assert written.startswith(
        "apiVersion: v3.1.0\nkind: DataContract\nid: club\nname: Club\nversion: 2.1.0\n"
    )
    assert f"  purpose: {purpose.strip()}\n" in written  # one line, é as it is


def test_properties_outside_the_vocabulary_are_left_alone_at_every_level():
    text = _changed(
        "  - {property: drivingTable, value: bookings}\n",
        "  - {property: drivingTable, value: bookings}\n  - {property: owner, value: someone}\n",
    )
    text = _changed(
        "{property: parent, value: members}",
        "{property: parent, value: members}\n      - {property: Kind, value: x}",
        text,
    )
    text = _changed(
        "{property: essential, value: true}]",
        "{property: essential, value: true}, {property: pii, value: true}]",
        text,
    )
    assert parse_contract(text).contract == parse_contract(CLUB).contract


def test_a_quality_check_of_another_kind_gives_no_allowed_values():
    text = _changed(
        "{metric: invalidValues, arguments: {validValues: [gold, silver]}, mustBe: 0}",
        "{metric: invalidValues, arguments: {invalidValues: [bronze]}, mustBe: 0}",
    )
    tier = parse_contract(text).contract.tables["members"].column("tier")
    assert (tier.type, tier.categories) == (m.TEXT, ())


def test_a_column_without_a_logical_type_declares_none():
    text = _changed("{name: phone, logicalType: string}", "{name: remark}")
    remark = parse_contract(text).contract.tables["members"].column("remark")
    assert (remark.type, remark.declared_type, remark.nullable) == (m.TEXT, "", True)


def test_key_columns_without_a_position_come_before_those_with_one():
    text = _changed(
        "{name: row, logicalType: string, primaryKey: true, primaryKeyPosition: 1}",
        "{name: row, logicalType: string, primaryKey: true}",
    )
    assert parse_contract(text).contract.tables["seats"].primary_key == ("row", "booking_id")
    swapped = _changed("        primaryKeyPosition: 2\n", "", CLUB)
    swapped = _changed(
        "primaryKey: true, primaryKeyPosition: 1}", "primaryKey: true, primaryKeyPosition: 3}", swapped
    )
    assert parse_contract(swapped).contract.tables["seats"].primary_key == ("booking_id", "row")


def test_key_columns_without_any_position_keep_their_order_and_a_position_wins_over_none():
    none = _changed("        primaryKeyPosition: 2\n", "")
    none = _changed("primaryKey: true, primaryKeyPosition: 1}", "primaryKey: true}", none)
    assert parse_contract(none).contract.tables["seats"].primary_key == ("booking_id", "row")
    first = _changed("        primaryKeyPosition: 2\n", "        primaryKeyPosition: 1\n")
    first = _changed("primaryKey: true, primaryKeyPosition: 1}", "primaryKey: true}", first)
    # row has no position: it comes before booking_id, whose position is 1
    assert parse_contract(first).contract.tables["seats"].primary_key == ("row", "booking_id")


def test_text_the_yaml_reader_cannot_read_is_named_as_the_whole_document():
    refused = _refused("id: a\x07b\n")  # a control character: no line and column are given for it
    assert refused.field == "(the document)"
    assert str(refused).startswith(
        "(the document): is not valid YAML: unacceptable character #x0007: special characters are not allowed"
    )
