"""Servers run as child processes in their own process group (`va serve`, `va dagster`, `va ui`).

One place for picking a port and for stopping a server together with every process it
started (workers, daemons, code servers), used by the product and by the tests alike.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

__all__ = ["free_port", "stop_group"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def stop_group(proc: subprocess.Popen, timeout: float = 20.0, linger: float = 30.0) -> int | None:
    """SIGTERM the group led by ``proc`` (started with start_new_session=True), SIGKILL it if
    ``proc`` is not gone after ``timeout``; then wait up to ``linger`` s for the rest of the group
    to leave with it, and SIGKILL what is still there. Returns ``proc``'s exit status."""
    pgid = proc.pid
    if proc.poll() is None:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(10)
    deadline = time.monotonic() + linger
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return proc.returncode
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return proc.returncode
    # a killed process is gone only once the kernel has torn it down: callers that next start
    # a server on the same home (or check that nothing is left) must not find it
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            break
        time.sleep(0.05)
    return proc.returncode
