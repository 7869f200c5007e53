"""Fixtures for the labelling app: an ingested sample corpus, and the app served on 127.0.0.1."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from va_core.config import Settings
from va_core.process import free_port


@pytest.fixture
def ui_settings(ingested_home) -> Settings:
    """A fresh copy of the shared home with the sample corpus ingested (tiny encoder)."""
    return ingested_home


@pytest.fixture(scope="session")
def truth(ingested_truth) -> dict[str, dict]:
    """Ground truth per ingested clip key: colour, object, motion."""
    return {r["clip_key"]: r for r in ingested_truth.iter_rows(named=True)}


class AppServer:
    """``python -m va_ui`` in a subprocess, exactly as ``va ui`` runs it."""

    def __init__(self, home: Path, log: Path, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, VA_HOME=str(home), VA_ENCODER="tiny", GRADIO_ANALYTICS_ENABLED="False",
                   PYTHONUNBUFFERED="1", **(env or {}))
        self.log = log
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "va_ui", "--host", "127.0.0.1", "--port", str(self.port)],
                                     env=env, stdout=self._log_file, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 90.0) -> "AppServer":
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"va ui exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2):
                    return self
            except urllib.error.HTTPError:  # 401 before login: the server is up
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"va ui did not answer within {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log_file.close()


@pytest.fixture(scope="session")
def app_server():
    """``app_server(home, log, env=None) -> AppServer`` (started and answering)."""
    return lambda home, log, env=None: AppServer(home, log, env).wait()
