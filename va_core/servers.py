"""The programs behind `va ui`, `va dagster` and `va serve`, with the home's settings in their environment.

They run as separate programs so that va_core never imports gradio, dagster or bentoml. Each
function returns the program's ``(argv, env)``; the command replaces itself with it.
"""
from __future__ import annotations

import os
import shutil
import sys

__all__ = ["ui_command", "dagster_command", "serve_command", "serve_env"]


def _env(settings) -> dict[str, str]:
    env = dict(os.environ)
    env["VA_HOME"] = str(settings.home)
    env["VA_WAREHOUSE_URI"] = settings.warehouse_uri
    env["VA_ENCODER"] = settings.encoder
    return env


def ui_command(settings, host: str, port: int) -> tuple[list[str], dict[str, str]]:
    return [sys.executable, "-m", "va_ui", "--host", host, "--port", str(port)], _env(settings)


def dagster_command(settings, host: str, port: int) -> tuple[list[str], dict[str, str]]:
    env = _env(settings)
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    env["DAGSTER_HOME"] = str(settings.dagster_home)
    # va_assets.dev writes the local instance config (run queue, per-label run limit) on
    # first use, then execs `dagster dev -m va_assets.definitions`.
    return [sys.executable, "-m", "va_assets.dev", "-h", host, "-p", str(port)], env


def serve_env(settings) -> dict[str, str]:
    """The model server's environment.

    Each va home gets its own BentoML store (``$VA_HOME/bentoml``) unless BENTOML_HOME is
    set, so two homes with the same label names never share model tags. Usage tracking is
    off: these machines have no route to it and every attempt costs time.
    """
    env = _env(settings)
    env.setdefault("BENTOML_HOME", str(settings.home / "bentoml"))
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    return env


def serve_command(settings, host: str, port: int) -> tuple[list[str], dict[str, str]]:
    bentoml = shutil.which("bentoml", path=os.path.dirname(sys.executable)) or "bentoml"
    return ([bentoml, "serve", "va_serving.service:VAService", "--host", host, "--port", str(port)],
            serve_env(settings))
