"""A real, throw-away PostgreSQL server for the tests: the distribution's binaries, a temporary cluster, loopback only.

The server refuses to run as root, so as root the cluster belongs to the ``postgres`` system user (made by the
distribution's package). Password authentication (SCRAM) is on: the tests reach it the way a site does, with
the password in ``PGPASSWORD``, never in the URL.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BIN = Path(os.environ.get("GAITWATCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "gaitwatch"
PASSWORD = "test-only-password"


class Unavailable(Exception):
    """No PostgreSQL server can run here (the reason says why): tests that need one skip."""


@dataclass
class Server:
    folder: Path
    port: int
    owner: str | None  # the system user running it, where this process is root

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/gaitwatch"

    def env(self) -> dict[str, str]:
        """The environment a gaitwatch process needs to reach it: the password from the environment."""
        return {**os.environ, "PGPASSWORD": PASSWORD}

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = [str(BIN / command[0]), *command[1:]]
        if self.owner is not None:
            argv = ["runuser", "-u", self.owner, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> None:
        options = f"-k {self.folder} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run(
            "pg_ctl", "-D", str(self.folder / "data"), "-o", options, "-l", str(self.folder / "log"), "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", mode, "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def start_server() -> Server:
    """initdb a cluster in a new temporary folder and start it on a free loopback port."""
    if not (BIN / "initdb").exists():
        raise Unavailable(f"no PostgreSQL server binaries in {BIN} (install the distribution's postgresql package)")
    owner = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no 'postgres' user to own the test cluster") from None
        owner = "postgres"
    folder = Path(tempfile.mkdtemp(prefix="gaitwatch-pg-"))
    password_file = folder / "password"
    password_file.write_text(PASSWORD)
    if owner is not None:
        record = pwd.getpwnam(owner)
        for path in (folder, password_file):
            os.chown(path, record.pw_uid, record.pw_gid)
    server = Server(folder, _free_port(), owner)
    try:
        server._run(
            "initdb", "-D", str(folder / "data"), "-U", USER, "--auth=scram-sha-256", f"--pwfile={password_file}",
            "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        server.start()
        _wait_ready(server)
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(server.port), "-U", USER, "-d", "postgres", "-c",
             "CREATE DATABASE gaitwatch"],
            env=server.env(), capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as err:
        detail = getattr(err, "stderr", "") or str(err)
        server.remove()
        raise Unavailable(f"the test PostgreSQL server did not start: {detail.strip()[-300:]}") from None
    return server


def _wait_ready(server: Server, deadline_s: float = 60) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", server.port)) == 0:
                return
        time.sleep(0.1)
    raise subprocess.TimeoutExpired("pg_ctl start", deadline_s)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
