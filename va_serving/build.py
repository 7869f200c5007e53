"""Build a Bento holding the service and the approved models of a va home.

``python -m va_serving.build [--home DIR]`` mirrors the ``models`` table into the home's
BentoML store (va_serving.store), then runs `bentoml build` with that store, so the
Bento packs exactly the versions approved now. The Bento serves them without a
warehouse (``VA_SERVING_SOURCE=store``) and uses the home's encoder for /classify.
Containerise it with ``bentoml containerize va-classifiers:latest`` (needs Docker).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from va_core.errors import VAError

ROOT = Path(__file__).resolve().parent.parent


class BuildError(VAError, RuntimeError):
    """`bentoml build` failed; the message carries its output."""


def build_bento(settings, version: str | None = None) -> dict:
    """Sync the store, build the Bento; returns ``{"tag", "models", "store_changes", "bentoml_home"}``."""
    import yaml

    from va_core.servers import serve_env
    from va_serving.store import approved_entries, sync_models

    changes = sync_models(settings)
    approved = approved_entries(settings)
    if not approved:
        raise BuildError("no approved model to pack: approve one with `va approve LABEL` first")
    env = serve_env(settings)
    config = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    config.setdefault("envs", []).append({"name": "VA_ENCODER", "value": settings.encoder})
    with tempfile.TemporaryDirectory() as tmp:
        bentofile = Path(tmp) / "bentofile.yaml"
        bentofile.write_text(yaml.safe_dump(config, sort_keys=False))
        argv = [str(Path(sys.executable).with_name("bentoml")), "build", "-f", str(bentofile), "-o", "tag", str(ROOT)]
        if version:
            argv[2:2] = ["--version", version]
        proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    found = re.search(r"__tag__:(\S+)", proc.stdout)
    if proc.returncode != 0 or not found:
        raise BuildError(f"`bentoml build` failed (status {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return {"tag": found.group(1), "models": [e.tag for e in approved], "store_changes": changes,
            "bentoml_home": env["BENTOML_HOME"]}


def main(argv: list[str] | None = None) -> int:
    from va_core.config import Settings

    parser = argparse.ArgumentParser(prog="python -m va_serving.build", description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="the va home folder (default $VA_HOME or ./.va)")
    parser.add_argument("--version", help="Bento version (default: generated)")
    args = parser.parse_args(argv)
    try:
        result = build_bento(Settings.from_env(home=args.home), args.version)
    except VAError as exc:
        print(f"build: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, default=str))
    print(f"built {result['tag']} with {', '.join(result['models'])}\n"
          f"containerise: BENTOML_HOME={result['bentoml_home']} bentoml containerize {result['tag']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
