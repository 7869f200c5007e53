"""`va ui`, `va dagster` and `va serve`: each replaces this process with its server.

They run as separate programs so that va_core never imports gradio, dagster or bentoml.
"""
from __future__ import annotations

import os
import shutil
import sys


def _env(settings) -> dict[str, str]:
    env = dict(os.environ)
    env["VA_HOME"] = str(settings.home)
    env["VA_WAREHOUSE_URI"] = settings.warehouse_uri
    env["VA_ENCODER"] = settings.encoder
    return env


def _exec(argv: list[str], env: dict[str, str]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, env)


def cli_ui(args, settings):
    _exec([sys.executable, "-m", "va_ui", "--host", args.host, "--port", str(args.port)], _env(settings))


def cli_dagster(args, settings):
    env = _env(settings)
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    env["DAGSTER_HOME"] = str(settings.dagster_home)
    # va_assets.dev writes the local instance config (run queue, per-label run limit) on
    # first use, then execs `dagster dev -m va_assets.definitions`.
    _exec([sys.executable, "-m", "va_assets.dev", "-h", args.host, "-p", str(args.port)], env)


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


def cli_serve(args, settings):
    bentoml = shutil.which("bentoml", path=os.path.dirname(sys.executable)) or "bentoml"
    _exec([bentoml, "serve", "va_serving.service:VAService", "--host", args.host, "--port", str(args.port)],
          serve_env(settings))
