"""A throwaway PostgreSQL server: initdb and pg_ctl in a temporary folder, listening only on a
Unix socket there (no TCP), fsync off. Used by the tests' fixture and by bench/pg.py."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Server:
    socket_dir: str
    port: int
    user: str

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user={self.user} dbname={dbname}"


def bindir() -> Path | None:
    """Where initdb is: on PATH, else the newest of Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def apt_install(package: str, found: Callable[[], T | None]) -> T:
    """Install a Debian package when ``found()`` finds nothing (CI runs as root on a clean
    machine) and return what ``found()`` finds then; LookupError says why it could not."""
    if not shutil.which("apt-get"):
        raise LookupError(f"{package} is not installed and this machine has no apt-get")
    if os.geteuid() != 0:
        raise LookupError(f"{package} is not installed and installing it needs root (apt-get)")
    proc = subprocess.run(
        f"apt-get update && apt-get install -y -o DPkg::Lock::Timeout=600 {package}",
        shell=True, capture_output=True, text=True, timeout=1800, check=False,
    )
    result = found()
    if proc.returncode != 0 or result is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        raise LookupError(f"installing {package} with apt-get failed: {tail}")
    return result


def _free_port() -> int:
    # Only names the socket file (no TCP listener), but a free number keeps it unambiguous.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(args: list[str], user: str | None) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False,
                          user=user)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed: {proc.stderr or proc.stdout}")


@contextmanager
def temporary_server(binaries: Path, *settings: str) -> Iterator[Server]:
    """A running server, stopped and deleted afterwards; ``settings``: more ``-c`` options."""
    # initdb refuses to run as root: as root, the server runs as the `postgres` OS user.
    os_user = "postgres" if os.geteuid() == 0 else None
    # Not pytest's tmp_path: its parents are private to root, out of the postgres user's reach.
    root = Path(tempfile.mkdtemp(prefix="audit-pg-"))
    if os_user:
        shutil.chown(root, os_user, os_user)
    data, port = root / "data", _free_port()
    _run([str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
          "--no-sync", "-E", "UTF8", "--locale=C"], os_user)
    options = " ".join([f"-k {root} -p {port} -c listen_addresses='' -c fsync=off",
                        *(f"-c {s}" for s in settings)])
    _run([str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
          "-w", "start"], os_user)
    try:
        yield Server(str(root), port, "postgres")
    finally:
        _run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], os_user)
        shutil.rmtree(root, ignore_errors=True)
