"""A contract as others publish it (the shape of the ODCS project's example of a sales database): an older
apiVersion, no customProperties, no relationships, composite and text primary keys that need not come first,
foreign keys implied by column names and descriptions, domain types, and a misspelt extra field. It is read
leniently, generated, and profiled by its own rules, without edits."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import duckdb
import pytest
import yaml

from orchestrator.cli import main
from orchestrator.contract_views import columns_frame, contract_diagram
from orchestrator.domain import model as m
from orchestrator.domain.contract import ContractError, parse_contract
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec
from orchestrator.quality import profile_job
from tests.gen_helpers import assert_answer_key_reproduces_raw, assert_references_resolve, raw_records

# table: its columns as "name physicalType", a "*" after the name marking the primary key. Logical types
# follow the physical ones as such contracts have them: number for integers and decimals, date for times,
# object for domain types (Name, Flag, Phone, ...).
TABLES = {
    "salesorderheader": "salesorderid* serial, revisionnumber int2, orderdate timestamp, duedate timestamp, "
    "shipdate timestamp, status int2, onlineorderflag Flag, purchaseordernumber OrderNumber, "
    "accountnumber AccountNumber, customerid int4, salespersonid int4, territoryid int4, "
    "billtoaddressid int4, shiptoaddressid int4, shipmethodid int4, creditcardid int4, "
    "currencyrateid int4, subtotal numeric, taxamt numeric, freight numeric, totaldue numeric, "
    "comment varchar[128], rowguid uuid, modifieddate timestamp",
    "businessentity": "businessentityid* serial, rowguid uuid, modifieddate timestamp",
    "person": "businessentityid* int4, persontype bpchar, namestyle NameStyle, title varchar[8], "
    "firstname Name, middlename Name, lastname Name, suffix varchar[10], emailpromotion int4, "
    "additionalcontactinfo xml, demographics xml, rowguid uuid, modifieddate timestamp",
    "employee": "businessentityid* int4, nationalidnumber varchar[15], loginid varchar[256], "
    "jobtitle varchar[50], birthdate date, maritalstatus bpchar, gender bpchar, hiredate date, "
    "salariedflag Flag, vacationhours int2, sickleavehours int2, currentflag Flag, rowguid uuid, "
    "modifieddate timestamp, organizationnode varchar",
    "department": "departmentid* serial, name Name, groupname Name, modifieddate timestamp",
    "shift": "shiftid* serial, name Name, starttime timestamp, endtime timestamp, modifieddate timestamp",
    "employeedepartmenthistory": "businessentityid* int4, departmentid* int2, shiftid* int2, "
    "startdate* date, enddate date, modifieddate timestamp",
    "employeepayhistory": "businessentityid* int4, ratechangedate* timestamp, rate numeric, "
    "payfrequency int2, modifieddate timestamp",
    "countryregion": "countryregioncode* varchar[3], name Name, modifieddate timestamp",
    "stateprovince": "stateprovinceid* serial, stateprovincecode bpchar, countryregioncode varchar[3], "
    "isonlystateprovinceflag Flag, name Name, territoryid int4, rowguid uuid, modifieddate timestamp",
    "address": "addressid* serial, addressline1 varchar[60], addressline2 varchar[60], city varchar[30], "
    "stateprovinceid int4, postalcode varchar[15], spatiallocation bytea, rowguid uuid, "
    "modifieddate timestamp",
    "addresstype": "addresstypeid* serial, name Name, rowguid uuid, modifieddate timestamp",
    "businessentityaddress": "businessentityid* int4, addressid* int4, addresstypeid* int4, rowguid uuid, "
    "modifieddate timestamp",
    "contacttype": "contacttypeid* serial, name Name, modifieddate timestamp",
    "businessentitycontact": "businessentityid* int4, personid* int4, contacttypeid* int4, rowguid uuid, "
    "modifieddate timestamp",
    "phonenumbertype": "phonenumbertypeid* serial, name Name, modifieddate timestamp",
    "personphone": "businessentityid* int4, phonenumber* Phone, phonenumbertypeid* int4, "
    "modifieddate timestamp",
    "culture": "cultureid* bpchar, name Name, modifieddate timestamp",
    "productcategory": "productcategoryid* serial, name Name, rowguid uuid, modifieddate timestamp",
    "productsubcategory": "productsubcategoryid* serial, productcategoryid int4, name Name, rowguid uuid, "
    "modifieddate timestamp",
    "productmodel": "productmodelid* serial, name Name, catalogdescription xml, instructions xml, "
    "rowguid uuid, modifieddate timestamp",
    "productdescription": "productdescriptionid* serial, description varchar[400], rowguid uuid, "
    "modifieddate timestamp",
    "productmodelproductdescriptionculture": "productmodelid* int4, productdescriptionid* int4, "
    "cultureid* bpchar, modifieddate timestamp",
    "unitmeasure": "unitmeasurecode* bpchar, name Name, modifieddate timestamp",
    "product": "productid* serial, name Name, productnumber varchar[25], makeflag Flag, "
    "finishedgoodsflag Flag, color varchar[15], safetystocklevel int2, reorderpoint int2, "
    "standardcost numeric, listprice numeric, size varchar[5], sizeunitmeasurecode bpchar, "
    "weightunitmeasurecode bpchar, weight numeric, daystomanufacture int4, productline bpchar, "
    "class bpchar, style bpchar, productsubcategoryid int4, productmodelid int4, sellstartdate timestamp, "
    "sellenddate timestamp, discontinueddate timestamp, rowguid uuid, modifieddate timestamp",
    "document": "title varchar[50], owner int4, folderflag Flag, filename varchar[400], "
    "fileextension varchar[8], revision bpchar, changenumber int4, status int2, documentsummary text, "
    "document bytea, rowguid uuid, modifieddate timestamp, documentnode* varchar",
    "productdocument": "productid* int4, documentnode* varchar, modifieddate timestamp",
    "location": "locationid* serial, name Name, costrate numeric, availability numeric, "
    "modifieddate timestamp",
    "productinventory": "productid* int4, locationid* int2, shelf varchar[10], bin int2, quantity int2, "
    "rowguid uuid, modifieddate timestamp",
    "productcosthistory": "productid* int4, startdate* timestamp, enddate timestamp, standardcost numeric, "
    "modifieddate timestamp",
    "productreview": "productreviewid* serial, productid int4, reviewername Name, reviewdate timestamp, "
    "emailaddress varchar[50], rating int4, comments varchar[3850], modifieddate timestamp",
    "specialoffer": "specialofferid* serial, description varchar[255], discountpct numeric, "
    "type varchar[50], category varchar[50], startdate timestamp, enddate timestamp, minqty int4, "
    "maxqty int4, rowguid uuid, modifieddate timestamp",
    "specialofferproduct": "specialofferid* int4, productid* int4, rowguid uuid, modifieddate timestamp",
    "salesterritory": "territoryid* serial, name Name, countryregioncode varchar[3], group varchar[50], "
    "salesytd numeric, saleslastyear numeric, costytd numeric, costlastyear numeric, rowguid uuid, "
    "modifieddate timestamp",
    "salesperson": "businessentityid* int4, territoryid int4, salesquota numeric, bonus numeric, "
    "commissionpct numeric, salesytd numeric, saleslastyear numeric, rowguid uuid, modifieddate timestamp",
    "customer": "customerid* serial, personid int4, storeid int4, territoryid int4, rowguid uuid, "
    "modifieddate timestamp",
    "store": "businessentityid* int4, name Name, salespersonid int4, demographics xml, rowguid uuid, "
    "modifieddate timestamp",
    "shipmethod": "shipmethodid* serial, name Name, shipbase numeric, shiprate numeric, rowguid uuid, "
    "modifieddate timestamp",
    "creditcard": "creditcardid* serial, cardtype varchar[50], cardnumber varchar[25], expmonth int2, "
    "expyear int2, modifieddate timestamp",
    "currency": "currencycode* bpchar, name Name, modifieddate timestamp",
    "currencyrate": "currencyrateid* serial, currencyratedate timestamp, fromcurrencycode bpchar, "
    "tocurrencycode bpchar, averagerate numeric, endofdayrate numeric, modifieddate timestamp",
    "salesorderdetail": "salesorderid* int4, salesorderdetailid* serial, carriertrackingnumber varchar[25], "
    "orderqty int2, productid int4, specialofferid int4, unitprice numeric, unitpricediscount numeric, "
    "rowguid uuid, modifieddate timestamp",
    "salesreason": "salesreasonid* serial, name Name, reasontype Name, modifieddate timestamp",
    "salesorderheadersalesreason": "salesorderid* int4, salesreasonid* int4, modifieddate timestamp",
}
# Foreign keys only a description names, as such contracts say them.
DESCRIBED = {
    ("salesorderheader", "billtoaddressid"): "Customer billing address. Foreign key to Address.AddressID.",
    ("salesorderheader", "shiptoaddressid"): "Customer shipping address. Foreign key to Address.AddressID.",
    ("document", "owner"): "Employee who controls the document. Foreign key to Employee.BusinessEntityID",
    ("product", "sizeunitmeasurecode"): "Unit of the size. Foreign key to UnitMeasure.UnitMeasureCode.",
    ("currencyrate", "fromcurrencycode"): "Exchange rate from. Foreign key to Currency.CurrencyCode.",
    ("currencyrate", "tocurrencycode"): "Exchange rate to. Foreign key to Currency.CurrencyCode.",
}
TAGGED = (("person", "firstname"), ("person", "lastname"), ("creditcard", "cardnumber"))
NUMBER = re.compile(r"^(serial|int\d|numeric)")
TIME = ("timestamp", "date")


def _property(table: str, spec: str) -> dict:
    name, physical = spec.split()
    key = name.endswith("*")
    name = name.rstrip("*")
    logical = "number" if NUMBER.match(physical) else "date" if physical in TIME else "string"
    if physical[:1].isupper() or physical == "xml":
        logical = "object"
    prop = {
        "name": name,
        "physicalType": physical,
        "logicalType": logical,
        "description": DESCRIBED.get((table, name), f"The {name} of a {table} row."),
        "required": False,  # even on primary keys, as such contracts have it
        "unique": False,
        "partitioned": False,
        "criticalDataElement": False,
        "authoritativeDefinitions": [
            {"type": "implementation", "url": f"jdbc:postgresql://localhost:5432/sales/{table}.{name}"}
        ],
    }
    if key:
        prop["primaryKey"] = True
    if (table, name) in TAGGED:
        prop["tag"] = ["sensitive"]  # a misspelt extra field: the schema's is tags
    return prop


def third_party_contract(path: Path) -> Path:
    """Write the contract as others publish it to ``path``."""
    document = {
        "apiVersion": "v3.0.0",
        "kind": "DataContract",
        "id": "sales-database",
        "name": "Sales database",
        "version": "1.0.0",
        "status": "active",
        "description": {},
        "schema": [
            {
                "name": table,
                "physicalName": table,
                "physicalType": "table",
                "description": f"The {table} table.",
                "properties": [_property(table, spec.strip()) for spec in columns.split(",")],
            }
            for table, columns in TABLES.items()
        ],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def published(tmp_path: Path) -> Path:
    return third_party_contract(tmp_path / "sales-database.yaml")


def test_the_fixture_has_the_shape_of_a_published_contract(published):
    document = yaml.safe_load(published.read_text())
    columns = [p for t in document["schema"] for p in t["properties"]]
    assert len(document["schema"]) >= 30 and len(columns) >= 250
    assert "customProperties" not in published.read_text() and "relationships" not in published.read_text()
    assert not any(p["required"] for p in columns)


def test_it_is_read_leniently_and_validate_prints_what_was_ignored(published, capsys):
    source = parse_contract(published.read_text())
    assert source.warnings == tuple(
        f"schema[{table}].properties[{column}].tag: is not a field of ODCS v3.1.0; it is ignored"
        for table, column in TAGGED
    )
    assert main(["contracts", "validate", str(published)]) == 0
    out = capsys.readouterr().out
    assert f"a valid ODCS contract, sales-database 1.0.0, {len(TABLES)} tables" in out
    assert "warning: schema[person].properties[firstname].tag: is not a field" in out
    # a wrong type of a known field is still refused, with its path
    document = yaml.safe_load(published.read_text())
    document["schema"][2]["properties"][1]["required"] = "maybe"
    with pytest.raises(ContractError) as refused:
        parse_contract(yaml.safe_dump(document))
    assert refused.value.field == "schema[person].properties[persontype].required"


def test_keys_and_foreign_keys_are_understood(published):
    tables = parse_contract(published.read_text()).contract.tables
    assert tables["employeedepartmenthistory"].primary_key == (
        "businessentityid",
        "departmentid",
        "shiftid",
        "startdate",
    )
    assert tables["employeedepartmenthistory"].key is None
    document = tables["document"]
    assert (document.primary_key, document.key, document.column_names[-1]) == (
        ("documentnode",),
        None,
        "documentnode",
    )
    assert tables["culture"].column("cultureid").type == m.TEXT
    assert not tables["culture"].column("cultureid").nullable  # a key is required whatever it says
    assert tables["product"].key == "productid"
    references = {(t.name, c.name): c.references for t in tables.values() for c in t.columns if c.references}
    expected = {
        ("salesorderdetail", "productid"): "product",  # the name of another table's key
        ("salesorderdetail", "salesorderid"): "salesorderheader",  # a column of a composite key
        ("employeedepartmenthistory", "businessentityid"): "businessentity",  # of several, the root
        ("businessentitycontact", "personid"): "person",  # a *id column naming a table
        ("salesorderheader", "salespersonid"): "salesperson",
        ("document", "owner"): "employee",  # only the description names it
        ("salesorderheader", "billtoaddressid"): "address",
        ("productmodelproductdescriptionculture", "cultureid"): "culture",  # a text key
        ("productdocument", "documentnode"): "document",
        ("stateprovince", "countryregioncode"): "countryregion",
    }
    assert {k: references.get(k) for k in expected} == expected
    assert ("person", "businessentityid") not in references  # a table's own single key refers to nothing
    assert tables["productdocument"].column("documentnode").type == m.TEXT  # held as its key is
    kinds = {name: tables["product"].column(name).type for name in ("safetystocklevel", "listprice")}
    assert kinds == {"safetystocklevel": m.INT, "listprice": m.MONEY}
    assert tables["salesorderheader"].column("orderdate").type == m.TIMESTAMP
    assert tables["person"].column("firstname").type == m.TEXT  # an object (Name) as text


def _truth(root: Path, result) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name, table in result.tables.items():
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{root / table.truth_path}')")
    return con


def test_it_generates_with_keys_unique_and_every_reference_resolving(data_dir, published, capsys):
    started = time.perf_counter()
    result = generate(GenerationSpec(rows=500, seed=3, contract=str(published), chunk_rows=170), "alice")
    seconds = time.perf_counter() - started
    contract = parse_contract(published.read_text()).contract
    rows = sum(t.truth_rows for t in result.tables.values())
    with capsys.disabled():
        print(
            f"\n{len(contract.tables)} tables, {rows:,} rows in {seconds:.1f} s: {rows / seconds:,.0f} rows/s"
        )
    assert result.tables["salesorderheader"].truth_rows == 500
    con = _truth(data_dir, result)
    for table in contract.tables.values():
        key = ", ".join(table.primary_key)
        assert con.execute(
            f"SELECT count(*) FROM (SELECT {key} FROM {table.name} GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone() == (0,), table.name
        assert con.execute(
            f"SELECT count(*) FROM {table.name} WHERE "
            + " OR ".join(f"{c} IS NULL" for c in table.primary_key)
        ).fetchone() == (0,), table.name
    assert_references_resolve(con, contract)
    manifest = json.loads((data_dir / result.manifest_path).read_text())
    assert manifest["notes"][:3] == list(parse_contract(published.read_text()).warnings)
    assert "person.firstname is declared as object; it was generated as text" in manifest["notes"]
    assert "product.rowguid is stored as uuid; it was generated as a UUID" in manifest["notes"]
    assert "address.spatiallocation is stored as bytea; it was generated as text" in manifest["notes"]
    guids = [row["rowguid"] for row in raw_records(data_dir, result.tables["product"].raw_path)]
    shaped = [
        g
        for g in guids
        if isinstance(g, str) and re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", g)
    ]
    assert len(shaped) > 0.8 * len(guids)
    assert_answer_key_reproduces_raw(data_dir, result)


def test_raw_is_the_same_whatever_the_chunk_size(data_dir, published):
    small = generate(GenerationSpec(rows=240, seed=9, contract=str(published), chunk_rows=53), "alice")
    large = generate(GenerationSpec(rows=240, seed=9, contract=str(published)), "alice")
    assert {t: r.sha256 for t, r in small.tables.items()} == {t: r.sha256 for t, r in large.tables.items()}


def test_its_raw_layer_is_profiled_by_its_own_rules_and_scored(settings, published):
    generated = generate(GenerationSpec(rows=500, seed=7, error_rate=0.4, contract=str(published)), "alice")
    run = profile_job("alice", generated.job_id, "raw", settings, save=False)
    history = run.rule("employeedepartmenthistory.primary_key.unique")
    assert history.columns == ["businessentityid", "departmentid", "shiftid", "startdate"]
    assert run.rule("productdocument.documentnode.foreign_key").check == "foreign_key"
    assert run.rule("culture.cultureid.not_null").severity == "error"
    scores = {score.kind: score for score in run.score.kinds}
    assert {"wrong_type", "orphan_fk", "exact_duplicate", "near_duplicate"} <= set(scores)
    for score in scores.values():
        if score.judgeable:
            assert score.recall >= 0.8 and score.precision >= 0.95, score
    assert scores["missing"].judgeable == 0  # nothing but the keys is required: a null is clean data
    unique = [x for x in run.score.rules if x["rule_id"].endswith(".unique")]
    assert unique and all(x["precision"] == 1.0 for x in unique), unique


QUOTED = """
apiVersion: v3.1.0
kind: DataContract
id: quoted
name: Categories with quotes
version: 1.0.0
status: active
schema:
  - name: signs
    properties:
      - {name: sign_id, logicalType: integer, primaryKey: true}
      - name: label
        logicalType: string
        required: true
        quality:
          - {metric: invalidValues, arguments: {validValues: ['say "hi"', 'back\\slash', plain]}, mustBe: 0}
"""


def test_a_category_with_a_quote_or_backslash_is_written_as_valid_json(data_dir, tmp_path):
    path = tmp_path / "quoted.yaml"
    path.write_text(QUOTED, encoding="utf-8")
    assert parse_contract(QUOTED).contract.tables["signs"].column("label").categories == (
        'say "hi"',
        "back\\slash",
        "plain",
    )
    result = generate(GenerationSpec(rows=200, seed=1, contract=str(path), error_rate=0), "alice")
    labels = {row["label"] for row in raw_records(data_dir, result.tables["signs"].raw_path)}
    assert labels == {'say "hi"', "back\\slash", "plain"}
    dirty = generate(GenerationSpec(rows=200, seed=1, contract=str(path), error_rate=0.5), "alice")
    assert_answer_key_reproduces_raw(data_dir, dirty)


def test_the_contracts_page_shows_composite_keys_and_their_references(published):
    contract = parse_contract(published.read_text()).contract
    history = columns_frame(contract.tables["employeedepartmenthistory"]).set_index("column")["key"]
    assert history.to_dict() == {
        "businessentityid": "primary key → businessentity",
        "departmentid": "primary key → department",
        "shiftid": "primary key → shift",
        "startdate": "primary key",
        "enddate": "",
        "modifieddate": "",
    }
    assert '"productdocument\\nkey: productid, documentnode\\n' in contract_diagram(contract)
