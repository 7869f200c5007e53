"""BentoML's model store as a mirror of the ``models`` table.

Every model version of every label is a store entry ``va-<label>:v<version>`` holding the
model's artifact (``artifact.json``, the JSON va_core writes) with the labels
``{label, stage, version}`` and the metadata ``{ap, n_pos, n_neg, encoder_id,
label_events_version}`` (plus the artifact's digest). The ``models`` table stays the
source of truth: :func:`sync_models` creates missing entries, updates the ``stage``
label when a version was approved or retired, and removes entries whose version is no
longer in the table. The stage history lives in ``model_stage_events``; the store only
carries the current stage.

`bentoml build` packs the entries labelled ``stage=approved`` (see service.py), so a
Bento or container serves them without a warehouse.

Each va home has its own store (``$VA_HOME/bentoml/models``, see
``va_core.servers.serve_env``) unless BENTOML_HOME is set. Only BentoML's public API is
used: ``bentoml.models`` works on the store of the process's BENTOML_HOME, so the store of
another home is read and synced in a child process with that home's environment
(``python -m va_serving.store sync|entries --home DIR``, what ``settings=`` does below).
A stage change re-creates the entry with the same tag, artifact and new labels: BentoML
has no public way to change an entry's labels, and its files are not ours to edit.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

KIND = "va-linear-classifier"
ARTIFACT = "artifact.json"
PREFIX = "va-"
_TAG = re.compile(r"[a-z0-9]([-._a-z0-9]*[a-z0-9])?")  # used with fullmatch: no trailing newline


def store_name(label: str) -> str:
    """The store name of a label's models: ``va-<label>`` when that is a valid BentoML tag.

    Tags are at most 63 characters and end with a letter or digit; label names may be 64
    long and end with ``-`` or ``_``, so such names get a digest suffix.
    """
    name = PREFIX + label
    if len(name) <= 63 and _TAG.fullmatch(name):
        return name
    digest = hashlib.sha1(label.encode()).hexdigest()[:8]
    readable = re.sub(r"[^-._a-z0-9]", "", label[:50]).rstrip("-_.")
    return f"{PREFIX}{readable}-{digest}"


def store_dir(settings=None) -> Path:
    """The model store folder: the given home's, else the running process's (a Bento's own)."""
    if settings is not None:
        from va_core.servers import serve_env

        return Path(serve_env(settings)["BENTOML_HOME"]) / "models"
    return Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml").expanduser() / "models"


def store_location() -> str:
    return str(store_dir())


def _in_home(settings, command: str, *extra: str) -> list[dict]:
    """Run ``python -m va_serving.store COMMAND`` with the home's BENTOML_HOME; its JSON answer."""
    import subprocess
    import sys

    from va_core.errors import VAError
    from va_core.servers import serve_env

    argv = [sys.executable, "-m", "va_serving.store", command, "--home", str(settings.home), *extra]
    proc = subprocess.run(argv, env=serve_env(settings), capture_output=True, text=True, timeout=300)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise VAError(f"the model store of {settings.home} could not be read or synced (status "
                      f"{proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return json.loads(lines[-1])


@dataclass(frozen=True)
class StoreEntry:
    tag: str
    label: str
    version: int
    stage: str
    path: Path
    metadata: dict

    def to_served(self):
        """The entry as a served model, scored by va_core's LinearModel."""
        from va_core.learn import LinearModel
        from va_serving.served import ServedModel

        from va_core.operating import curve_from_artifact

        artifact = (self.path / ARTIFACT).read_text()
        model = LinearModel.from_artifact(artifact)
        meta = self.metadata
        lineage = {
            "stage": self.stage, "ap": meta.get("ap"), "ap_low": meta.get("ap_low"), "ap_high": meta.get("ap_high"),
            "n_audit": meta.get("n_audit"), "ap_method": meta.get("ap_method"),
            "n_pos": meta.get("n_pos"), "n_neg": meta.get("n_neg"),
            "trainer": meta.get("trainer"), "trained_at": meta.get("trained_at"),
            "label_events_version": meta.get("label_events_version"), "store_tag": self.tag,
        }
        return ServedModel(self.label, self.version, meta["encoder_id"], model, lineage, curve_from_artifact(artifact))


def _entry(model) -> StoreEntry | None:
    info = model.info
    if info.metadata.get("kind") != KIND:
        return None
    labels = info.labels
    return StoreEntry(str(model.tag), labels["label"], int(labels["version"]), labels["stage"],
                      Path(model.path), dict(info.metadata))


def entries(settings=None, stage: str | None = None) -> list[StoreEntry]:
    """va's entries in the store (of ``settings``' home, else this process's), newest version last."""
    import bentoml

    if settings is not None:
        found = [StoreEntry(d["tag"], d["label"], d["version"], d["stage"], Path(d["path"]), d["metadata"])
                 for d in _in_home(settings, "entries")]
    else:
        found = [e for e in (_entry(m) for m in bentoml.models.list()) if e is not None]
    if stage is not None:
        found = [e for e in found if e.stage == stage]
    return sorted(found, key=lambda e: (e.label, e.version))


def approved_entries(settings=None) -> list[StoreEntry]:
    return entries(settings, "approved")


def _metadata(row: dict, digest: str) -> dict:
    def num(v, cast):
        return None if v is None else cast(v)

    trained = row.get("trained_at")
    meta = {
        "kind": KIND, "ap": num(row.get("ap"), float), "ap_low": num(row.get("ap_low"), float),
        "ap_high": num(row.get("ap_high"), float), "n_audit": num(row.get("n_audit"), int),
        "ap_method": row.get("ap_method"), "n_pos": num(row.get("n_pos"), int),
        "n_neg": num(row.get("n_neg"), int), "encoder_id": row["encoder_id"],
        "label_events_version": num(row.get("label_events_version"), int),
        "trainer": row.get("trainer"), "trained_at": trained.isoformat() if hasattr(trained, "isoformat") else trained,
        "artifact_sha256": digest,
    }
    # BentoML's metadata takes no None: a missing value (e.g. no corpus estimate yet) is left out
    return {k: v for k, v in meta.items() if v is not None}


@contextlib.contextmanager
def _sync_lock(store_path: Path) -> Iterator[None]:
    """One sync at a time per store: the server's watcher and a Dagster run may both sync."""
    store_path.mkdir(parents=True, exist_ok=True)
    with open(store_path / ".va-sync.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _create(tag: str, row: dict, digest: str) -> None:
    import bentoml

    labels = {"label": row["label"], "stage": row["stage"], "version": str(int(row["model_version"]))}
    with bentoml.models.create(tag, labels=labels, metadata=_metadata(row, digest)) as created:
        Path(created.path_of(ARTIFACT)).write_text(row["artifact"])


def sync_models(settings, *, into=None) -> list[dict]:
    """Mirror the ``models`` table into the model store; returns what changed.

    ``into`` is ``None`` for the store of ``settings``' home (synced in a child process),
    or ``"process"`` for the store this process uses (the model server: BENTOML_HOME is
    set for it). Each change is ``{"tag", "label", "version", "stage", "action"}`` with
    action ``created`` / ``restaged`` / ``replaced`` / ``removed``.
    """
    if into != "process":
        return _in_home(settings, "sync")
    import bentoml

    from va_core.registry import models_frame
    from va_core.warehouse import Warehouse

    rows = models_frame(Warehouse.from_settings(settings)).to_dicts()
    changes = []
    with _sync_lock(store_dir()):
        existing = {str(m.tag): m for m in bentoml.models.list() if m.info.metadata.get("kind") == KIND}
        wanted = set()
        for row in rows:
            label, version, stage = row["label"], int(row["model_version"]), row["stage"]
            tag = f"{store_name(label)}:v{version}"
            wanted.add(tag)
            digest = hashlib.sha256(row["artifact"].encode()).hexdigest()
            model = existing.get(tag)
            action = None
            if model is not None and model.info.metadata.get("artifact_sha256") != digest:
                action = "replaced"  # the warehouse was rebuilt and reused the version number for another model
            elif model is not None and model.info.labels.get("stage") != stage:
                action = "restaged"
            elif model is None:
                action = "created"
            if action in ("replaced", "restaged"):
                bentoml.models.delete(tag)
            if action:
                _create(tag, row, digest)
                changes.append({"tag": tag, "label": label, "version": version, "stage": stage, "action": action})
        for tag, model in existing.items():
            if tag not in wanted:
                bentoml.models.delete(tag)
                labels = model.info.labels
                changes.append({"tag": tag, "label": labels.get("label"), "version": int(labels.get("version", 0)),
                                "stage": labels.get("stage"), "action": "removed"})
    return changes


def main(argv: list[str] | None = None) -> int:
    """``python -m va_serving.store sync|entries --home DIR``: one JSON line on stdout (run by ``settings=``)."""
    import argparse

    from va_core.config import Settings

    parser = argparse.ArgumentParser(prog="python -m va_serving.store")
    parser.add_argument("command", choices=["sync", "entries"])
    parser.add_argument("--home", required=True)
    args = parser.parse_args(argv)
    settings = Settings.from_env(home=args.home)
    if args.command == "sync":
        result = sync_models(settings, into="process")
    else:
        result = [{"tag": e.tag, "label": e.label, "version": e.version, "stage": e.stage, "path": str(e.path),
                   "metadata": e.metadata} for e in entries()]
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
