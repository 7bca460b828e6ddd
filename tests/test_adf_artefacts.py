"""The Data Factory JSON in adf/ loads into the SDK's models with no unknown keys, and says what it should."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.datafactory import models

from orchestrator.clouds.azure.functions import small_batches
from orchestrator.domain import shop as s
from orchestrator.loading.operational import sql_columns
from orchestrator.runners import RunRequest
from orchestrator.storage import paths
from tests.functions_host import indexed

REPOSITORY = Path(__file__).resolve().parent.parent
ADF = REPOSITORY / "adf"
KINDS = {
    "pipelines": models.PipelineResource,
    "triggers": models.TriggerResource,
    "linkedServices": models.LinkedServiceResource,
    "datasets": models.DatasetResource,
}
ALL_FILES = sorted((kind, path.stem) for kind in KINDS for path in (ADF / kind).glob("*.json"))
IDENTIFIERS = {name: f"@pipeline().parameters.{name}" for name in ("job_id", "user", "parent_job_id")}


def load(kind: str, name: str) -> Any:
    return KINDS[kind](json.loads((ADF / kind / f"{name}.json").read_text()))


def concrete(value: Any) -> Any:
    """The value as the SDK model its "type" names, searching the whole discriminator tree.

    The SDK resolves only one level (Activity -> ExecutionActivity), so a DatabricksNotebook activity
    or a ScheduleTrigger would otherwise stay a plain base model.
    """
    mapping = getattr(type(value), "__mapping__", None)
    if mapping is None or not isinstance(value.get("type"), str):
        return value
    pending, seen = [type(value)], set()
    while pending:
        for key, model in getattr(pending.pop(), "__mapping__", {}).items():
            if key == value["type"]:
                return model(dict(value))
            if model not in seen:  # subclasses without a mapping of their own share their parent's
                seen.add(model)
                pending.append(model)
    raise AssertionError(f"the SDK has no model of type {value['type']!r} under {type(value).__name__}")


def unknown_keys(value: Any, where: str) -> list[str]:
    """Every JSON key its SDK model does not declare, walking typed fields (a misspelt key shows up here)."""
    if isinstance(value, list):
        return [key for i, item in enumerate(value) for key in unknown_keys(item, f"{where}[{i}]")]
    if getattr(type(value), "_attr_to_rest_field", None) is None:
        return []
    value = concrete(value)
    fields = type(value)._attr_to_rest_field
    known = {field._rest_name for field in fields.values()}
    found = [f"{where}.{key}" for key in value if key not in known]
    for attr in fields:
        found += unknown_keys(getattr(value, attr), f"{where}.{attr}")
    return found


def activities(kind: str, name: str) -> dict[str, Any]:
    """The pipeline's activities by name, including those inside ForEach loops."""
    found: dict[str, Any] = {}
    pending = list(load(kind, name).properties.activities)
    while pending:
        activity = concrete(pending.pop())
        found[activity.name] = activity
        if isinstance(activity, models.ForEachActivity):
            pending += activity.type_properties.activities
    return found


def test_the_expected_artefacts_exist():
    assert ALL_FILES == [
        ("datasets", "ds_gold_parquet"),
        ("datasets", "ds_job_outputs_folder"),
        ("datasets", "ds_mysql_silver_table"),
        ("datasets", "ds_silver_parquet"),
        ("datasets", "ds_synapse_gold_table"),
        ("linkedServices", "ls_azure_function"),
        ("linkedServices", "ls_databricks"),
        ("linkedServices", "ls_key_vault"),
        ("linkedServices", "ls_lake"),
        ("linkedServices", "ls_mysql"),
        ("linkedServices", "ls_synapse"),
        ("pipelines", "drain_queue"),
        ("pipelines", "large_batch"),
        ("pipelines", "load_outputs"),
        ("pipelines", "small_batch"),
        ("triggers", "tr_large_batch_daily_0200_utc"),
        ("triggers", "tr_small_batch_every_10_minutes"),
    ]


@pytest.mark.parametrize(("kind", "name"), ALL_FILES)
def test_each_file_deserialises_into_its_sdk_model_without_unknown_keys(kind, name):
    resource = load(kind, name)

    assert resource.name == name
    assert type(concrete(resource.properties)).__name__ not in {"Trigger", "LinkedService", "Dataset"}
    assert unknown_keys(resource, name) == []


def test_the_large_batch_pipeline_runs_the_notebook_with_the_job_and_its_lake_then_loads():
    steps = activities("pipelines", "large_batch")

    notebook = steps["clean_large_batch"]
    assert isinstance(notebook, models.DatabricksNotebookActivity)
    assert notebook.linked_service_name.reference_name == "ls_databricks"
    assert notebook.type_properties.notebook_path.endswith("/notebooks/clean_large_batch")
    base = {key: value["value"] for key, value in notebook.type_properties.base_parameters.items()}
    assert base == {**IDENTIFIERS, "lake_root": "@pipeline().parameters.lake_root"}
    load_step = steps["load_outputs"]
    assert isinstance(load_step, models.ExecutePipelineActivity)
    assert load_step.depends_on[0].activity == "clean_large_batch"
    assert load_step.depends_on[0].dependency_conditions == ["Succeeded"]
    assert load_step.type_properties.parameters == IDENTIFIERS
    # What the Data Factory runner sends is what the pipeline takes, with no defaults to run on.
    parameters = load("pipelines", "large_batch").properties.parameters
    assert set(parameters) == {*RunRequest("c-1", "alice", "g-1").run_parameters(), "lake_root"}
    assert all(p.default_value is None for p in parameters.values())


def test_the_small_batch_pipeline_asks_the_function_app_to_drain_with_a_request_its_trigger_takes():
    (step,) = activities("pipelines", "small_batch").values()
    assert isinstance(step, models.AzureFunctionActivity)
    assert step.linked_service_name.reference_name == "ls_azure_function"
    # Data Factory calls {functionAppUrl}/api/{functionName}: the app's drain trigger, by its route and method
    trigger = indexed()["drain_small_batches_now"].get_trigger()
    assert step.type_properties.function_name == trigger.route == small_batches.ROUTE
    assert [step.type_properties.method] == [str(m.value) for m in trigger.methods]
    assert small_batches.read_request(json.dumps(step.type_properties.body).encode()) == {
        "requested_by": "data-factory"
    }
    assert not load("pipelines", "small_batch").properties.parameters  # it drains the queue, not one job
    service = concrete(load("linkedServices", "ls_azure_function").properties)
    assert isinstance(service, models.AzureFunctionLinkedService)
    assert service.type_properties.function_app_url.endswith(".azurewebsites.net")


def test_the_cluster_drains_only_the_large_queue_with_the_workers_code():
    (step,) = activities("pipelines", "drain_queue").values()
    assert isinstance(step, models.DatabricksNotebookActivity)
    assert step.type_properties.notebook_path.endswith("/notebooks/drain_queue")
    assert step.type_properties.base_parameters["route"]["value"] == "@pipeline().parameters.route"
    assert (
        (REPOSITORY / "notebooks" / "drain_queue.py").read_text().startswith("# Databricks notebook source")
    )


def evaluate(expression: Any, scope: dict[str, Any]) -> Any:
    """The value of a Data Factory expression made of string literals, concat() and replace(), and the
    references ``dataset().x``, ``item().x`` and ``pipeline().parameters.x[key]`` (from ``scope``)."""
    if isinstance(expression, dict) and expression.get("type") == "Expression":
        expression = expression["value"]
    if not isinstance(expression, str) or not expression.startswith("@"):
        return expression
    text, at = expression[1:], 0

    def skip_spaces() -> None:
        nonlocal at
        while at < len(text) and text[at] == " ":
            at += 1

    def parse() -> Any:
        nonlocal at
        if text[at] == "'":
            end = at + 1
            while not (text[end] == "'" and text[end + 1 : end + 2] != "'"):
                end += 2 if text[end] == "'" else 1
            value, at = text[at + 1 : end].replace("''", "'"), end + 1
            return value
        name = re.match(r"[a-z]+", text[at:], re.I).group()
        at += len(name) + 1  # the name and its "("
        arguments = []
        while text[at] != ")":
            arguments.append(parse())
            skip_spaces()
            if text[at] == ",":
                at += 1
                skip_spaces()
        at += 1
        if name not in ("dataset", "item", "pipeline"):
            return {"concat": lambda *parts: "".join(parts), "replace": str.replace}[name](*arguments)
        value = scope[name]
        while at < len(text) and text[at] in ".[":
            if text[at] == ".":
                key = re.match(r"[a-z_]+", text[at + 1 :], re.I).group()
                value, at = value[key], at + 1 + len(key)
            else:
                at += 1
                key = parse()
                assert text[at] == "]", f"unsupported expression {expression!r}"
                value, at = value[key], at + 1
        return value

    value = parse()
    assert at == len(text), f"unparsed rest of {expression!r}"
    return value


def _dataset_path(reference: Any, scope: dict[str, Any]) -> str:
    """The lake path (folder, or folder and file) a dataset reference resolves to."""
    dataset = json.loads((ADF / "datasets" / f"{reference.reference_name}.json").read_text())["properties"]
    values = {key: evaluate(value, scope) for key, value in reference.parameters.items()}
    location = dataset["typeProperties"]["location"]
    folder = evaluate(location["folderPath"], {**scope, "dataset": values})
    if "fileName" not in location:
        return folder
    return f"{folder}/{evaluate(location['fileName'], {**scope, 'dataset': values})}"


def test_the_load_pipeline_copies_each_table_the_job_has_where_the_workbench_loads_it():
    """Gold aggregates into Synapse's gold.gold_<name> and silver tables into MySQL's silver_<table>, listed
    from the job's folders and read at their medallion paths, with the job's user and id added and the job's
    earlier rows deleted first; silver's columns map onto the tables the workbench's loader creates."""
    steps = activities("pipelines", "load_outputs")
    user, parent, job = "alice", "g-20260101t000000-aaaaaa", "c-20260101t000000-bbbbbb"
    parameters = load("pipelines", "load_outputs").properties.parameters
    scope = {
        "pipeline": {
            "parameters": {
                "user": user,
                "parent_job_id": parent,
                "job_id": job,
                "silver_columns": parameters["silver_columns"].default_value,
            }
        }
    }
    assert _dataset_path(steps["list_gold"].type_properties.dataset, scope) == paths.gold_dir(
        user, parent, job
    )
    assert _dataset_path(steps["list_silver"].type_properties.dataset, scope) == paths.silver_dir(
        user, parent, job
    )
    gold = [g.name for g in s.CONTRACT.gold]
    layers = {
        "copy_gold_table": (gold, lambda name: paths.gold_table(user, parent, job, name), "gold.gold_"),
        "copy_silver_table": (s.TABLES, lambda name: paths.silver_table(user, parent, job, name), "silver_"),
    }
    for step, (names, path_of, prefix) in layers.items():
        copy = steps[step]
        added = {
            c["name"]: evaluate(c["value"], scope) for c in copy.type_properties.source.additional_columns
        }
        assert added == {"user": user, "job_id": job}
        for name in names:
            item = {**scope, "item": {"name": f"{name}.parquet", "type": "File"}}
            assert _dataset_path(copy.inputs[0], item) == path_of(name)
            table = evaluate(copy.outputs[0].parameters["table"], item)
            assert f"{prefix}{name}".endswith(table)
            script = evaluate(copy.type_properties.sink.pre_copy_script, item)
            assert script.endswith(f"DELETE FROM {prefix}{name} WHERE job_id = '{job}'")
    for name, table in s.TABLES.items():
        item = {**scope, "item": {"name": f"{name}.parquet", "type": "File"}}
        mappings = evaluate(steps["copy_silver_table"].type_properties.translator, item)["mappings"]
        assert [m["sink"]["name"] for m in mappings] == [c for c, _ in sql_columns(table, mysql=True)]
        assert [m["source"]["name"] for m in mappings] == ["user", "job_id", *table.column_names, "_issues"]


def test_every_dataset_and_activity_reference_points_at_an_artefact_in_the_repository():
    names = {name for _, name in ALL_FILES}
    referenced = set()
    for kind, name in ALL_FILES:
        text = (ADF / kind / f"{name}.json").read_text()
        for line in text.split('"referenceName"')[1:]:
            referenced.add(line.split('"')[1])

    assert referenced
    assert referenced <= names


def test_the_triggers_drain_small_every_10_minutes_and_large_daily_at_0200_utc():
    small = concrete(load("triggers", "tr_small_batch_every_10_minutes").properties)
    large = concrete(load("triggers", "tr_large_batch_daily_0200_utc").properties)

    assert isinstance(small, models.ScheduleTrigger)
    assert (small.type_properties.recurrence.frequency, small.type_properties.recurrence.interval) == (
        "Minute",
        10,
    )
    recurrence = large.type_properties.recurrence
    assert (recurrence.frequency, recurrence.interval, recurrence.time_zone) == ("Day", 1, "UTC")
    assert (recurrence.schedule.hours, recurrence.schedule.minutes) == ([2], [0])
    (small_run,) = small.pipelines  # small batches on the Azure Functions app
    assert (small_run.pipeline_reference.reference_name, small_run.parameters) == ("small_batch", None)
    (large_run,) = large.pipelines  # large ones on the cluster
    assert (large_run.pipeline_reference.reference_name, large_run.parameters) == (
        "drain_queue",
        {"route": "large"},
    )


def secret_values(value: Any, path: str = "") -> list[str]:
    """Paths of secret-looking properties whose value is not a Key Vault reference."""
    if isinstance(value, str):
        return [path] if any(word in value.lower() for word in ("password=", "pwd=", "accountkey=")) else []
    if not isinstance(value, dict) or value.get("type") == "AzureKeyVaultSecret":
        return []
    found = []
    for key, item in value.items():
        secretive = any(
            word in key.lower() for word in ("password", "secret", "token", "accountkey", "sastoken")
        )
        if secretive and not (isinstance(item, dict) and item.get("type") == "AzureKeyVaultSecret"):
            found.append(f"{path}.{key}")
        found += secret_values(item, f"{path}.{key}")
    return found


@pytest.mark.parametrize("name", [name for kind, name in ALL_FILES if kind == "linkedServices"])
def test_linked_services_hold_no_secret_values_only_key_vault_references(name):
    raw = json.loads((ADF / "linkedServices" / f"{name}.json").read_text())
    service = concrete(load("linkedServices", name).properties)

    assert secret_values(raw) == []
    for attr in ("password", "access_token", "function_key"):
        reference = (
            getattr(service.type_properties, attr, None) if hasattr(service, "type_properties") else None
        )
        if reference is not None:
            assert isinstance(reference, models.AzureKeyVaultSecretReference)
            assert reference.store.reference_name == "ls_key_vault"
