"""A real PostgreSQL server of the machine's own (Debian's `postgresql` package), started on a
loopback port and a temporary data directory, for the deployment tests."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2

USER, PASSWORD, DATABASE = "m3sync", "deploy-test-password", "dagster"


def _bindir() -> Path:
    """Where `initdb` and `pg_ctl` are: Debian keeps them off PATH, per major version."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not versions:
        raise RuntimeError(
            "PostgreSQL is not installed: the deploy suite's README command installs Debian's "
            "`postgresql` package"
        )
    return Path(versions[-1]).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Postgres:
    """One server: `start`, `stop` and `restart` it; `env` is what dagster.yaml reads."""

    data: Path
    port: int
    bindir: Path
    owner: str | None  # PostgreSQL refuses to run as root: then it runs as this user

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self.owner:
            command = ["runuser", "-u", self.owner, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data} -c fsync=off"
        log = str(self.data / "server.log")
        self._run("pg_ctl", "-D", str(self.data / "db"), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data / "db"), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def env(self) -> dict[str, str]:
        return {
            "M3SYNC_PG_HOST": "127.0.0.1",
            "M3SYNC_PG_PORT": str(self.port),
            "M3SYNC_PG_DB": DATABASE,
            "M3SYNC_PG_USER": USER,
            "M3SYNC_PG_PASSWORD": PASSWORD,
        }

    def connect(self) -> psycopg2.extensions.connection:
        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=USER, password=PASSWORD, dbname=DATABASE
        )

    def fresh_database(self) -> None:
        """Drop and make the database again, for a test that needs an instance of its own."""
        admin = psycopg2.connect(
            host="127.0.0.1", port=self.port, user=USER, password=PASSWORD, dbname="postgres"
        )
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            cursor.execute(f"CREATE DATABASE {DATABASE} OWNER {USER}")
        admin.close()


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    """initdb, start, yield, stop and remove. The data directory is made outside pytest's
    temporary tree, which another user (the server's, when tests run as root) cannot enter."""
    owner = "postgres" if os.geteuid() == 0 else None
    data = Path(tempfile.mkdtemp(prefix="m3sync-pg-"))
    if owner:
        record = pwd.getpwnam(owner)
        os.chown(data, record.pw_uid, record.pw_gid)
    server = Postgres(data, free_port(), _bindir(), owner)
    password_file = data / "password"
    password_file.write_text(PASSWORD + "\n")
    if owner:
        os.chown(password_file, record.pw_uid, record.pw_gid)
    server._run(
        "initdb",
        "-D",
        str(data / "db"),
        "-U",
        USER,
        "--pwfile",
        str(password_file),
        "-A",
        "scram-sha-256",
        "-E",
        "UTF8",
    )
    server.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                server.fresh_database()
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield server
    finally:
        try:
            server.stop("immediate")
        finally:
            shutil.rmtree(data, ignore_errors=True)
