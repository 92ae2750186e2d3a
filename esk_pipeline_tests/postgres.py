"""A throwaway PostgreSQL cluster for tests, when the binaries are on this machine.

`running_postgres()` starts a cluster in a temp folder on a free loopback port and yields its
URL, or skips the test when PostgreSQL or psycopg is missing; `postgres_server` is that as a
module-scoped fixture (import it into a test module, or wrap `running_postgres` in a fixture
of another scope). `fresh_postgres_database(url)` makes an empty database on it
for one test, so tests sharing the cluster never see each other's rows.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa


def _pg_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return candidates[-1].parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Start a PostgreSQL cluster in a temp folder on a free loopback port; yield its URL."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install 'psycopg[binary]'")
    run_as: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="esk-review-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        os.chown(workdir, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = workdir / "data", _free_port()
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "esk", "--auth=trust", "-E", "UTF8"]
    subprocess.run(
        [*run_as, *initdb, "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*run_as, str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*pg_ctl, "-o", options, "-l", str(workdir / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://esk@127.0.0.1:{port}"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    with running_postgres() as url:
        yield url


def fresh_postgres_database(server: str) -> str:
    """An empty database on `server`; returns its URL."""
    name = f"review_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return f"{server}/{name}"
