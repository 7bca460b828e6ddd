"""The MariaDB server on 127.0.0.1:3306 for tests: started when it is down, one fresh database per module;
and a second server of a module's own that offers TLS."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orchestrator.config import MySQLSettings
from tests.azurite import free_port

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


def server() -> pymysql.connections.Connection:
    """A connection to the local MariaDB server, started here when it is down."""
    try:
        return pymysql.connect(**MARIADB)
    except pymysql.err.OperationalError:
        subprocess.run(
            ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd"],
            check=True,
        )
    for _ in range(60):
        try:
            return pymysql.connect(**MARIADB)
        except pymysql.err.OperationalError:
            time.sleep(0.5)
    pytest.fail("the MariaDB server on 127.0.0.1:3306 did not start within 30 seconds")


@pytest.fixture(scope="module")
def mysql_database() -> Iterator[MySQLSettings]:
    """A uniquely named database for this module, dropped afterwards."""
    name = f"workbench_test_{uuid.uuid4().hex[:12]}"
    admin = server()
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    yield MySQLSettings(database=name, **MARIADB)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE {name}")
    admin.close()


@dataclass(frozen=True)
class TLSServer:
    """A MariaDB server on 127.0.0.1 offering TLS, its certificate naming the address 127.0.0.1 alone."""

    port: int
    ca: Path  # the CA that signed its certificate
    other_ca: Path  # a CA that did not


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    signer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
) -> x509.Certificate:
    """A CA's own certificate, or with ``signer`` (a CA and its key) a server's for 127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(signer[0].subject if signer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if signer is None:
        usage = x509.KeyUsage(
            False, False, False, False, False, True, True, False, False
        )  # signs certificates
        builder = (
            builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
    else:
        address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        builder = (
            builder.add_extension(x509.SubjectAlternativeName([address]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer[1].public_key()), critical=False
            )
        )
    return builder.sign(signer[1] if signer else key, hashes.SHA256())


def _pem(path: Path, item: x509.Certificate | ec.EllipticCurvePrivateKey) -> Path:
    if isinstance(item, x509.Certificate):
        path.write_bytes(item.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(
            item.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return path


@pytest.fixture(scope="module")
def mariadb_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    """A MariaDB server of the module's own (a fresh data folder, a free port, root without a password)
    offering TLS with certificates made here; stopped at the module's end. The shared server is left alone."""
    folder = tmp_path_factory.mktemp("mariadb-tls")
    ca_key, other_key, server_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _issue("workbench test CA", ca_key)
    paths = {
        "ca": _pem(folder / "ca.pem", ca),
        "cert": _pem(folder / "server.pem", _issue("127.0.0.1", server_key, (ca, ca_key))),
        "key": _pem(folder / "server.key", server_key),
    }
    other_ca = _pem(folder / "other-ca.pem", _issue("another CA", other_key))
    data, log, port = folder / "data", folder / "error.log", free_port()
    subprocess.run(
        [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={data}",
            "--user=root",
            "--skip-test-db",
            "--auth-root-authentication-method=normal",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = subprocess.Popen(
        [
            "/usr/sbin/mariadbd",
            "--no-defaults",
            "--user=root",
            f"--datadir={data}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={folder / 'mysqld.sock'}",
            f"--pid-file={folder / 'pid'}",
            f"--log-error={log}",
            "--innodb-buffer-pool-size=16M",
            *(f"--ssl-{name}={path}" for name, path in paths.items()),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                pymysql.connect(**{**MARIADB, "port": port}).close()
                break
            except pymysql.err.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the TLS MariaDB server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
        yield TLSServer(port, paths["ca"], other_ca)
    finally:
        server.terminate()
        server.wait(timeout=60)
