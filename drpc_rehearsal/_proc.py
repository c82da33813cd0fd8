"""Process plumbing shared by the rehearsal services: free ports, spawning, stopping.

Every service process is started in its own session (so its process group is its PID and a
terminal's Ctrl-C does not reach it directly: the harness decides the order of shutdown) and,
when spawned from the main thread, with a parent-death signal, so that even a SIGKILLed harness
leaves nothing running. Stopping sends a signal to the whole group, waits, then SIGKILLs it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from .errors import ServiceError

__all__ = ["HOST", "ServiceError", "clean_env", "free_port", "group_alive", "read_line",
           "spawn", "stop_process"]

HOST = "127.0.0.1"

_PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up on first use (None when not on Linux)."""
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None
    return prctl


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the caller retries if someone takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _pdeathsig_preexec(sig: int) -> Callable[[], None] | None:
    """A preexec_fn that makes the child get `sig` when the spawning thread dies.

    Linux ties the parent-death signal to the *thread* that forked: only the main thread lives
    as long as the harness, so from any other thread we rely on the children's own watchdogs.
    The call runs after Popen's user/group switch (which would clear it)."""
    prctl = _prctl()
    if prctl is None or threading.current_thread() is not threading.main_thread():
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return preexec


def spawn(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
          log: Path | None = None, pipe_stdout: bool = False, user: str | None = None,
          deathsig: int = signal.SIGTERM) -> subprocess.Popen[bytes]:
    """Start a service process in its own session (process group == its PID).

    Its output is appended to `log` (stderr only when `pipe_stdout`: stdout is then a pipe)."""
    fh = open(log, "ab") if log is not None else None  # noqa: SIM115 (closed below)
    sink: int | IO[bytes] = fh if fh is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            list(argv), env=dict(env) if env is not None else None, cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe_stdout else sink,
            stderr=sink if pipe_stdout else subprocess.STDOUT,
            start_new_session=True, user=user, group=_group_of(user),
            preexec_fn=_pdeathsig_preexec(deathsig),  # one prctl call: fork-safe
        )
    finally:
        if fh is not None:
            fh.close()


def _group_of(user: str | None) -> str | int | None:
    if user is None:
        return None
    import pwd

    return pwd.getpwnam(user).pw_gid


def group_alive(pgid: int) -> bool:
    """Whether any process of process group `pgid` still exists (zombies count as gone only
    once reaped; our own children are reaped by `stop_process`)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process(proc: subprocess.Popen[bytes] | None, *, sig: int = signal.SIGTERM,
                 grace: float = 10.0) -> None:
    """Signal the process group of `proc`, wait up to `grace` s, then SIGKILL the group.

    Idempotent; also cleans up a group whose leader already exited."""
    if proc is None:
        return
    pgid = proc.pid
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # The leader is gone (or stuck): nothing it started may survive.
    deadline = time.monotonic() + grace
    while group_alive(pgid) and time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.wait(timeout=grace)


def clean_env(venv: Path | None = None) -> dict[str, str]:
    """os.environ minus the calling venv's traces; `venv`'s bin first on PATH when given."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "__PYVENV_LAUNCHER__",
            "RUCIO_CLIENT_MODE", "RUCIO_CONFIG", "RUCIO_ACCOUNT")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    own_bin = str(Path(sys.prefix) / "bin")
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != own_bin]
    if venv is not None:
        path.insert(0, str(venv / "bin"))
        env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join(path)
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def read_line(proc: subprocess.Popen[bytes], timeout: float, what: str) -> str:
    """The next line `proc` writes to its stdout pipe, within `timeout` seconds."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServiceError(f"{what}: no answer within {timeout} s")
            if not sel.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 1)
            if not chunk:
                raise ServiceError(f"{what}: exited (code {proc.poll()}) before answering")
            buf += chunk
            if chunk == b"\n":
                return buf.decode()
