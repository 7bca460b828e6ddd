"""Configuration: every setting the code reads is documented in the secrets example, adapters that read
their own settings see the environment first, then the secrets file, and the MySQL TLS settings default by
profile."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from orchestrator.auth import load_auth_settings, open_user_store
from orchestrator.config import (
    DATA_DIR_ENV,
    DEFAULT_SECRETS_FILE,
    SECRETS_FILE_ENV,
    Lookup,
    get_settings,
    private_data_root,
)
from orchestrator.errors import InvalidInput
from orchestrator.jobs.store import JobStore

REPOSITORY = Path(__file__).resolve().parents[1]
READERS = (
    r"(?:lookup|text_setting|number_setting|int_setting|_choice|Editable|_flag)"
    r"\(\s*(?:env,\s*)?\"([A-Z0-9_]+)\""
)


def test_every_setting_the_code_reads_is_documented_in_the_secrets_example():
    sources = [
        *REPOSITORY.glob("orchestrator/**/*.py"),
        REPOSITORY / "app.py",
        *REPOSITORY.glob("pages/*.py"),
    ]
    read = {name for path in sources for name in re.findall(READERS, path.read_text())}
    read |= set(re.findall(r'_ENV = "([A-Z0-9_]+)"', "".join(p.read_text() for p in sources)))
    example = (REPOSITORY / ".streamlit" / "secrets.toml.example").read_text()
    documented = set(re.findall(r"^([A-Z0-9_]+) = ", example, re.MULTILINE))
    assert {"ORCHESTRATOR_SPARK_RUNNER", "DATABRICKS_HOST", "ADF_FACTORY_NAME"} <= read
    assert read - {SECRETS_FILE_ENV} <= documented, sorted(read - documented)


def test_adapters_see_the_environment_over_the_secrets_file_and_never_an_empty_setting(tmp_path, monkeypatch):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        'DATABRICKS_HOST = "https://from-file"\nDATABRICKS_TOKEN = "file-token"\nADF_CA_BUNDLE = ""\n'
    )
    monkeypatch.setenv(SECRETS_FILE_ENV, str(secrets))
    monkeypatch.setenv("DATABRICKS_TOKEN", "env-token")
    settings = Lookup()
    assert settings["DATABRICKS_HOST"] == "https://from-file"
    assert settings.get("DATABRICKS_TOKEN") == "env-token"
    assert "ADF_CA_BUNDLE" not in settings and settings.get("ADF_CA_BUNDLE") is None
    assert {"DATABRICKS_HOST", "DATABRICKS_TOKEN"} <= set(settings)


def test_mysql_tls_is_required_and_verified_by_default_on_azure_and_with_a_ca_file(
    data_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv(SECRETS_FILE_ENV, str(tmp_path / "no-secrets.toml"))
    monkeypatch.setenv("ORCHESTRATOR_MYSQL_HOST", "db.example.com")

    def tls() -> tuple[bool, bool, str]:
        mysql = get_settings().mysql
        return mysql.ssl_required, mysql.ssl_verify, mysql.ssl_ca

    assert tls() == (False, False, "")
    ca = tmp_path / "ca.pem"
    ca.write_text("a CA certificate")
    monkeypatch.setenv("ORCHESTRATOR_MYSQL_SSL_CA", str(ca))
    assert tls() == (True, True, str(ca))
    monkeypatch.setenv("ORCHESTRATOR_MYSQL_SSL_VERIFY", "no")
    assert tls() == (True, False, str(ca))
    monkeypatch.delenv("ORCHESTRATOR_MYSQL_SSL_CA")
    monkeypatch.delenv("ORCHESTRATOR_MYSQL_SSL_VERIFY")
    monkeypatch.setenv("ORCHESTRATOR_PROFILE", "azure")
    monkeypatch.setenv("ORCHESTRATOR_AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")
    assert tls() == (True, True, "")
    monkeypatch.setenv("ORCHESTRATOR_MYSQL_SSL", "false")
    assert tls() == (False, False, "")

    for name, value, said in [
        ("ORCHESTRATOR_MYSQL_SSL", "maybe", "must be true or false (got 'maybe')"),
        ("ORCHESTRATOR_MYSQL_SSL_CA", str(tmp_path / "missing.pem"), "no CA file at"),
    ]:
        monkeypatch.setenv(name, value)
        with pytest.raises(InvalidInput, match=rf"^{name}: {re.escape(said)}"):
            get_settings()
        monkeypatch.delenv(name)


def test_the_data_root_and_what_is_written_under_it_are_private(tmp_path, monkeypatch):
    """Password hashes, jobs and sample rows are for the workbench's own user: a data root an older start
    left open is closed, and every database and file created after is readable by its owner alone."""
    root = tmp_path / "data"
    root.mkdir(mode=0o755)
    monkeypatch.setenv(DATA_DIR_ENV, str(root))
    monkeypatch.setenv(SECRETS_FILE_ENV, str(tmp_path / "no-secrets.toml"))
    before = os.umask(0o022)
    try:
        assert private_data_root(get_settings()) == root
        users = open_user_store()
        users.create_first_admin("alice", "correct horse battery", "correct horse battery")
        JobStore.default().close()
        load_auth_settings()  # the generated cookie key
    finally:
        os.umask(before)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    written = list(root.rglob("*"))
    assert {p.name for p in written} >= {"state", "users.sqlite", "jobs.sqlite", "cookie_key"}
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_the_data_root_and_secrets_are_found_from_the_repository_whatever_the_working_folder(
    tmp_path, monkeypatch
):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(SECRETS_FILE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert get_settings().data_dir == REPOSITORY / "data"
    assert DEFAULT_SECRETS_FILE == REPOSITORY / ".streamlit" / "secrets.toml"
