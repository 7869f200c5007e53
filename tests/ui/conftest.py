"""Fixtures for the labelling app: an ingested sample corpus, and the app served on 127.0.0.1."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from va_core.config import Settings

N_VIDEOS = 6


@pytest.fixture(scope="session")
def ui_template(tmp_path_factory):
    """A sample corpus ingested once with the tiny encoder; tests work on copies."""
    from va_core.ingest import ingest
    from va_core.sample_corpus import generate

    root = tmp_path_factory.mktemp("ui-template")
    corpus = generate(root / "corpus", n_videos=N_VIDEOS, seed=3)
    home = root / "home"
    old = {k: os.environ.get(k) for k in ("VA_HOME", "VA_ENCODER", "VA_WAREHOUSE_URI", "VA_STORAGE_OPTIONS")}
    os.environ.update(VA_HOME=str(home), VA_ENCODER="tiny")
    os.environ.pop("VA_WAREHOUSE_URI", None)
    os.environ.pop("VA_STORAGE_OPTIONS", None)
    try:
        settings = Settings.from_env()
        report = ingest(settings, [corpus.dir], progress=False)
        assert not report.problems, report.problems
        settings.remember_encoder("tiny")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {"home": home, "corpus": corpus}


@pytest.fixture
def ui_home(ui_template, tmp_path, monkeypatch) -> Path:
    home = tmp_path / "va-home"
    shutil.copytree(ui_template["home"], home)
    monkeypatch.setenv("VA_HOME", str(home))
    monkeypatch.setenv("VA_ENCODER", "tiny")
    monkeypatch.delenv("VA_WAREHOUSE_URI", raising=False)
    monkeypatch.delenv("VA_STORAGE_OPTIONS", raising=False)
    monkeypatch.delenv("VA_USERS_FILE", raising=False)
    return home


@pytest.fixture
def ui_settings(ui_home) -> Settings:
    return Settings.from_env()


@pytest.fixture
def truth(ui_template, ui_settings):
    """Ground truth per ingested clip key: colour, object, motion."""
    from va_core.sample_corpus import truth_for_clips
    from va_core.warehouse import Warehouse

    clips = Warehouse.from_settings(ui_settings).read("clips")
    frame = truth_for_clips(ui_template["corpus"].dir, clips)
    return {r["clip_key"]: r for r in frame.iter_rows(named=True)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """``python -m va_ui`` in a subprocess, exactly as ``va ui`` runs it."""

    def __init__(self, home: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, VA_HOME=str(home), VA_ENCODER="tiny", GRADIO_ANALYTICS_ENABLED="False",
                   PYTHONUNBUFFERED="1")
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
    """``app_server(home, log) -> AppServer`` (started and answering)."""
    return lambda home, log: AppServer(home, log).wait()
