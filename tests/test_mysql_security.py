"""TLS and local files on the MySQL connections (the job store's and the operational database's), against
real MariaDB servers: one of this module's own that offers TLS, and the shared one, which does not."""

from __future__ import annotations

from pathlib import Path

import pymysql
import pytest

from orchestrator.config import Settings, get_settings
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs.store import JobStore
from orchestrator.loading import operational
from orchestrator.service import execute_job, generate_job, launch_clean
from tests.mariadb import MARIADB, TLSServer


@pytest.fixture(scope="module")
def tls_database(mariadb_tls: TLSServer) -> str:
    """A database on the TLS server."""
    with pymysql.connect(**{**MARIADB, "port": mariadb_tls.port}) as con:
        con.cursor().execute("CREATE DATABASE workbench")
    return "workbench"


def _on(monkeypatch: pytest.MonkeyPatch, port: int, database: str, **settings: str) -> Settings:
    """The settings with MySQL at 127.0.0.1:``port`` (the job store there too), and ORCHESTRATOR_MYSQL_* as
    given."""
    values = {"HOST": "127.0.0.1", "PORT": str(port), "DATABASE": database, **settings}
    for name, value in values.items():
        monkeypatch.setenv(f"ORCHESTRATOR_MYSQL_{name}", value)
    monkeypatch.setenv("ORCHESTRATOR_JOB_STORE", "mysql")
    return get_settings()


def _cipher(settings: Settings) -> str:
    """The TLS cipher of the operational database's connection, empty when it is not encrypted."""
    with operational._connect(settings) as (con, _):
        cur = con.cursor()
        cur.execute("SHOW STATUS LIKE 'Ssl_cipher'")
        return cur.fetchone()[1]


def test_a_ca_file_makes_both_connections_encrypted_and_verified(
    data_dir, mariadb_tls, tls_database, monkeypatch
):
    settings = _on(monkeypatch, mariadb_tls.port, tls_database, SSL_CA=str(mariadb_tls.ca))
    assert (settings.mysql.ssl_required, settings.mysql.ssl_verify) == (True, True)
    assert _cipher(settings)
    check = operational.test_connection(settings)
    assert check.ok, check.message
    store = JobStore.default()
    try:
        assert store.list_jobs("alice") == []
    finally:
        store.close()


@pytest.mark.parametrize(
    ("host", "ca", "said"),
    [
        ("127.0.0.1", "other_ca", "(self-signed certificate in certificate chain)"),
        ("localhost", "ca", "(Hostname mismatch, certificate is not valid for 'localhost'.)"),
    ],
)
def test_a_server_that_cannot_prove_who_it_is_is_refused_by_both_connections(
    data_dir, mariadb_tls, tls_database, monkeypatch, host, ca, said
):
    """A certificate from another CA, or one for another name, is refused before any password is sent."""
    settings = _on(
        monkeypatch, mariadb_tls.port, tls_database, HOST=host, SSL_CA=str(getattr(mariadb_tls, ca))
    )
    check = operational.test_connection(settings)
    assert (check.ok, check.field) == (False, "ORCHESTRATOR_MYSQL_SSL_CA")
    assert check.message.startswith(f"the operational database at {host}:{mariadb_tls.port} did not prove")
    assert said in check.message
    with pytest.raises(pymysql.err.OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
        JobStore.default()
    monkeypatch.setenv("ORCHESTRATOR_MYSQL_SSL_VERIFY", "false")  # encrypted, the server taken on trust
    assert _cipher(get_settings())


def test_a_server_without_tls_is_refused_when_tls_is_required(data_dir, mysql_database, monkeypatch):
    settings = _on(monkeypatch, mysql_database.port, mysql_database.database, SSL="true")
    check = operational.test_connection(settings)
    assert (check.ok, check.field) == (False, "ORCHESTRATOR_MYSQL_SSL")
    assert check.message == (
        f"the operational database at 127.0.0.1:{mysql_database.port} does not offer TLS, which"
        " ORCHESTRATOR_MYSQL_SSL requires"
    )
    with pytest.raises(pymysql.err.OperationalError, match="SSL is required"):
        JobStore.default()
    monkeypatch.delenv("ORCHESTRATOR_MYSQL_SSL")
    assert operational.test_connection(get_settings()).ok  # the local default does not require it


def test_the_loader_sends_the_server_only_the_file_its_statement_loads(
    data_dir, tmp_path: Path, mariadb_tls, tls_database, monkeypatch
):
    """The server names the file LOAD DATA LOCAL reads: a path other than the loader's own gets nothing of
    that file, whatever the statement, while the loader's own files still go (over TLS)."""
    settings = _on(monkeypatch, mariadb_tls.port, tls_database, SSL_CA=str(mariadb_tls.ca))
    ours = tmp_path / "ours.csv"
    ours.write_text("ours\n")
    secret = Path("/etc/passwd")
    assert secret.read_text()
    load = "LOAD DATA LOCAL INFILE %s INTO TABLE leak (line)"
    with operational._connect(settings, local_files=True) as (con, _):
        cur = con.cursor()
        cur.execute("CREATE TABLE leak (line TEXT)")
        with pytest.raises(operational.LocalFileRefused, match="'/etc/passwd'"):
            cur.execute(load, (str(secret),))
        with con.sending(str(ours)), pytest.raises(operational.LocalFileRefused):
            cur.execute(load, (str(secret),))  # allowing one file allows no other
        with con.sending(str(ours)):
            cur.execute(load, (str(ours),))
        con.commit()
        cur.execute("SELECT line FROM leak")
        assert cur.fetchall() == (("ours",),)

    server = {**MARIADB, "port": mariadb_tls.port, "database": tls_database}
    loads = "SHOW GLOBAL STATUS LIKE 'Com_load'"  # LOAD DATA statements the server has run
    with pymysql.connect(**server) as con:
        cur = con.cursor()
        cur.execute(loads)
        before = int(cur.fetchone()[1])
    job = generate_job(GenerationSpec(rows=40, seed=5, tables=("customers", "orders")), "alice")
    cleaned = execute_job(launch_clean("alice", job.job_id).job.job_id)
    assert cleaned.state == "succeeded", cleaned.error
    with pymysql.connect(**server) as con:
        cur = con.cursor()
        cur.execute(loads)
        assert int(cur.fetchone()[1]) - before == 2  # one file per silver table
        rows = 0
        for table in ("silver_customers", "silver_orders"):
            cur.execute(f"SELECT count(*) FROM {table} WHERE job_id = %s", (cleaned.job_id,))
            rows += cur.fetchone()[0]
        assert rows == cleaned.rows_out
