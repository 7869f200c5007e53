"""`va dagster` as a background process, for tests, benchmarks and scripted screenshots.

The server runs in its own process group (webserver, daemon, code server and the runs
they launch), so :meth:`DevServer.stop` ends all of it and nothing else.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")

from va_core.process import free_port, stop_group


class ServerError(RuntimeError):
    """The server exited or a condition was not met in time; the message ends with its log."""


@dataclass
class DevServer:
    proc: subprocess.Popen
    port: int
    log: Path
    home: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def is_up(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/server_info", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def wait_for(self, what: str, condition: Callable[[], T], timeout: float, every: float = 0.25) -> T:
        """Poll ``condition`` until it returns something truthy (bounded); raise ServerError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"`va dagster` exited with {self.proc.returncode} while waiting for {what}:\n"
                                  + self.tail())
            value = condition()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise ServerError(f"no {what} within {timeout:.0f} s; server log:\n" + self.tail())
            time.sleep(every)

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM to the whole group (code server, daemon and runs leave with it), SIGKILL after ``timeout``."""
        stop_group(self.proc, timeout=timeout)

    def __enter__(self) -> "DevServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(home: Path, log: Path, env: dict[str, str] | None = None, port: int | None = None,
          startup_timeout: float = 180) -> DevServer:
    """Start `va dagster --home HOME` on 127.0.0.1 and wait until the webserver answers."""
    port = port or free_port()
    environ = {**os.environ, **(env or {}), "VA_HOME": str(home)}
    environ.pop("DAGSTER_HOME", None)  # `va dagster` puts it under the va home
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "va_cli", "dagster", "--home", str(home),
                                 "--port", str(port)], env=environ, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = DevServer(proc, port, log, Path(home))
    try:
        server.wait_for("webserver", server.is_up, startup_timeout)
    except BaseException:
        server.stop()
        raise
    return server
