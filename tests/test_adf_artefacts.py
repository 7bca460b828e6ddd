"""The Data Factory JSON in adf/ loads into the SDK's models with no unknown keys, and says what it should."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.datafactory import models

ADF = Path(__file__).resolve().parent.parent / "adf"
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
        ("datasets", "ds_mysql_silver_table"),
        ("datasets", "ds_silver_parquet"),
        ("datasets", "ds_synapse_gold_table"),
        ("linkedServices", "ls_databricks"),
        ("linkedServices", "ls_key_vault"),
        ("linkedServices", "ls_lake"),
        ("linkedServices", "ls_mysql"),
        ("linkedServices", "ls_synapse"),
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


def test_the_large_batch_pipeline_runs_the_notebook_with_the_job_identifiers_then_loads():
    steps = activities("pipelines", "large_batch")

    notebook = steps["clean_large_batch"]
    assert isinstance(notebook, models.DatabricksNotebookActivity)
    assert notebook.linked_service_name.reference_name == "ls_databricks"
    assert notebook.type_properties.notebook_path.endswith("/notebooks/clean_large_batch")
    base = {key: value["value"] for key, value in notebook.type_properties.base_parameters.items()}
    assert base == IDENTIFIERS
    load_step = steps["load_outputs"]
    assert isinstance(load_step, models.ExecutePipelineActivity)
    assert load_step.depends_on[0].activity == "clean_large_batch"
    assert load_step.depends_on[0].dependency_conditions == ["Succeeded"]
    assert load_step.type_properties.parameters == IDENTIFIERS


def test_the_small_batch_pipeline_only_loads_what_was_cleaned_in_process():
    steps = activities("pipelines", "small_batch")

    assert set(steps) == {"load_outputs"}
    assert steps["load_outputs"].type_properties.pipeline.reference_name == "load_outputs"
    assert steps["load_outputs"].type_properties.parameters == IDENTIFIERS


def test_the_load_pipeline_copies_gold_into_synapse_and_silver_into_mysql():
    steps = activities("pipelines", "load_outputs")

    gold = steps["copy_gold_table"]
    assert isinstance(gold, models.CopyActivity)
    assert isinstance(gold.type_properties.source, models.ParquetSource)
    assert isinstance(gold.type_properties.sink, models.SqlDWSink)
    assert (gold.inputs[0].reference_name, gold.outputs[0].reference_name) == (
        "ds_gold_parquet",
        "ds_synapse_gold_table",
    )
    silver = steps["load_silver_to_mysql"]
    assert isinstance(silver.type_properties.source, models.ParquetSource)
    assert isinstance(silver.type_properties.sink, models.AzureMySqlSink)
    assert silver.inputs[0].reference_name == "ds_silver_parquet"
    assert silver.inputs[0].parameters == IDENTIFIERS
    assert {k: v for k, v in gold.inputs[0].parameters.items() if k != "table"} == IDENTIFIERS


def test_every_dataset_and_activity_reference_points_at_an_artefact_in_the_repository():
    names = {name for _, name in ALL_FILES}
    referenced = set()
    for kind, name in ALL_FILES:
        text = (ADF / kind / f"{name}.json").read_text()
        for line in text.split('"referenceName"')[1:]:
            referenced.add(line.split('"')[1])

    assert referenced
    assert referenced <= names


def test_the_triggers_run_small_every_10_minutes_and_large_daily_at_0200_utc():
    small = concrete(load("triggers", "tr_small_batch_every_10_minutes").properties)
    large = concrete(load("triggers", "tr_large_batch_daily_0200_utc").properties)

    assert isinstance(small, models.ScheduleTrigger)
    assert (small.type_properties.recurrence.frequency, small.type_properties.recurrence.interval) == (
        "Minute",
        10,
    )
    assert small.pipelines[0].pipeline_reference.reference_name == "small_batch"
    recurrence = large.type_properties.recurrence
    assert (recurrence.frequency, recurrence.interval, recurrence.time_zone) == ("Day", 1, "UTC")
    assert (recurrence.schedule.hours, recurrence.schedule.minutes) == ([2], [0])
    assert large.pipelines[0].pipeline_reference.reference_name == "large_batch"


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
    for attr in ("password", "access_token"):
        reference = (
            getattr(service.type_properties, attr, None) if hasattr(service, "type_properties") else None
        )
        if reference is not None:
            assert isinstance(reference, models.AzureKeyVaultSecretReference)
            assert reference.store.reference_name == "ls_key_vault"
