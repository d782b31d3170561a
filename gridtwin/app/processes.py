"""Background processes that the single-machine platform starts: one pid file and one log each.

Used by `gridtwin infra up` / `gridtwin up` and by the test fixtures, so that what CI starts is
what a developer starts. Starting is idempotent: a process whose pid file names a live process is
left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def _pid_file(var_dir: Path, name: str) -> Path:
    return var_dir / "run" / f"{name}.pid"


def log_file(var_dir: Path, name: str) -> Path:
    return var_dir / "log" / f"{name}.log"


def running_pid(var_dir: Path, name: str) -> int | None:
    path = _pid_file(var_dir, name)
    try:
        pid = int(path.read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    # a zombie child of ours counts as gone
    try:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().split(")")[-1].split()[0] == "Z":
                return None
    except FileNotFoundError:
        return None
    return pid


def spawn(var_dir: Path, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Starts `argv` detached (own session), logging to var/log/<name>.log; returns its pid."""
    if (pid := running_pid(var_dir, name)) is not None:
        return pid
    for sub in ("run", "log"):
        (var_dir / sub).mkdir(parents=True, exist_ok=True)
    with open(log_file(var_dir, name), "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    _pid_file(var_dir, name).write_text(str(proc.pid))
    return proc.pid


def stop(var_dir: Path, name: str, timeout_s: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after `timeout_s`. True when something was running."""
    pid = running_pid(var_dir, name)
    _pid_file(var_dir, name).unlink(missing_ok=True)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child, so it does not linger as a zombie
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False



def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(host: str, port: int, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not port_open(host, port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not listen on {host}:{port} within {timeout_s:.0f} s")
        time.sleep(0.1)
