"""Configuration: every setting the code reads is documented in the secrets example, adapters that read
their own settings see the environment first, then the secrets file, and the MySQL TLS settings default by
profile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.config import SECRETS_FILE_ENV, Lookup, get_settings
from orchestrator.errors import InvalidInput

REPOSITORY = Path(__file__).resolve().parents[1]
READERS = (
    r"(?:lookup|text_setting|number_setting|int_setting|_choice|_daily_time|_flag)"
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
