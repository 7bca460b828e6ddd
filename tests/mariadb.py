"""The MariaDB server on 127.0.0.1:3306 for tests: started when it is down, one fresh database per module."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator

import pymysql
import pytest

from orchestrator.config import MySQLSettings

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
