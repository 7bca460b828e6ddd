"""The Settings page through AppTest: an administrator changes the routing threshold and sees it, where it
comes from and the audit line; a bad value stores nothing; a plain user sees the values but no form; a value
the environment sets is read-only."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from orchestrator.auth import open_user_store
from orchestrator.auth.settings import COOKIE_KEY_ENV
from orchestrator.config import EDITABLE, SECRETS_FILE_ENV, get_settings
from orchestrator.jobs.store import JobStore
from tests.test_app_pages import PASSWORD, signed_in

PAGE = "pages/settings.py"


@pytest.fixture(autouse=True)
def users(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """alice (administrator) and bob, with none of the editable settings set in the environment."""
    monkeypatch.setenv(SECRETS_FILE_ENV, str(tmp_path / "no-secrets.toml"))
    monkeypatch.delenv(COOKIE_KEY_ENV, raising=False)
    for setting in EDITABLE:
        monkeypatch.delenv(setting.name, raising=False)
    store = open_user_store()
    store.create_first_admin("alice", PASSWORD, PASSWORD)
    store.add_user("bob", PASSWORD, PASSWORD)


def routing(at: AppTest) -> dict[str, dict[str, str]]:
    """The routing and schedules table: each setting's value and where it comes from."""
    table = next(table.value for table in at.table if "from" in table.value.columns)
    return {row["setting"]: {"value": row["value"], "from": row["from"]} for row in table.to_dict("records")}


def history(at: AppTest) -> list[dict[str, str]]:
    """The audit table's rows without their times, the latest first."""
    table = next(table.value for table in at.table if "who" in table.value.columns)
    return table.drop(columns="when (UTC)").to_dict("records")


def field(at: AppTest, label: str):
    return next(widget for widget in at.text_input if widget.label == label)


def save(at: AppTest) -> AppTest:
    return next(button for button in at.button if button.label == "Save").click().run()


def test_an_administrator_changes_the_threshold_and_sees_it_and_the_audit_line() -> None:
    at = signed_in("alice", PAGE)
    assert routing(at)["small-batch limit (rows)"] == {"value": "10,000", "from": "default"}
    assert "No setting has been changed here yet." in [c.value for c in at.caption]

    field(at, "Small-batch limit (rows)").input("lots")
    save(at)
    assert [e.value for e in at.error] == [
        "Nothing was saved. ORCHESTRATOR_SMALL_BATCH_MAX_ROWS: must be a whole number from 1 to 100,000,000 "
        "(got 'lots')"
    ]
    assert routing(at)["small-batch limit (rows)"]["value"] == "10,000"
    assert get_settings().small_batch_max_rows == 10_000

    field(at, "Small-batch limit (rows)").input("20000")
    save(at)
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == [
        "Saved (small-batch limit (rows): 10000 → 20000). A running scheduler follows a new schedule within "
        "about a minute."
    ]
    threshold = routing(at)["small-batch limit (rows)"]
    assert threshold["value"] == "20,000" and threshold["from"].startswith("stored by alice, ")
    assert any(c.value.startswith("Batches of up to 20,000 rows take the small route") for c in at.caption)
    assert field(at, "Small-batch limit (rows)").value == "20000"
    assert history(at) == [
        {"who": "alice", "setting": "small-batch limit (rows)", "old value": "10000", "new value": "20000"}
    ]
    assert get_settings().small_batch_max_rows == 20_000  # what the routing uses from now on


def test_a_plain_user_sees_the_values_and_who_set_them_but_no_form() -> None:
    store = JobStore.default()
    try:
        store.set_settings({"ORCHESTRATOR_SMALL_EVERY_MINUTES": "15"}, user="alice")
    finally:
        store.close()
    at = signed_in("bob", PAGE)
    every = routing(at)["small batches every (minutes)"]
    assert every["value"] == "15" and every["from"].startswith("stored by alice, ")
    assert [widget.label for widget in at.text_input] == []
    assert "Save" not in [button.label for button in at.button]
    assert not [table for table in at.table if "who" in table.value.columns]


def test_a_value_the_environment_sets_is_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_LARGE_DAILY_AT_UTC", "03:30")
    at = signed_in("alice", PAGE)
    assert routing(at)["large batches daily at (UTC)"] == {
        "value": "03:30",
        "from": "set by ORCHESTRATOR_LARGE_DAILY_AT_UTC, change it there",
    }
    daily = field(at, "Large batches daily at (UTC)")
    assert (daily.value, daily.disabled) == ("03:30", True)
    assert not field(at, "Small-batch limit (rows)").disabled
