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
``va_core.servers.serve_env``) unless BENTOML_HOME is set.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from filelock import FileLock

KIND = "va-linear-classifier"
ARTIFACT = "artifact.json"
PREFIX = "va-"
_TAG = re.compile(r"^[a-z0-9]([-._a-z0-9]*[a-z0-9])?$")


def store_name(label: str) -> str:
    """The store name of a label's models: ``va-<label>`` when that is a valid BentoML tag.

    Tags are at most 63 characters and end with a letter or digit; label names may be 64
    long and end with ``-`` or ``_``, so such names get a digest suffix.
    """
    name = PREFIX + label
    if len(name) <= 63 and _TAG.match(name):
        return name
    digest = hashlib.sha1(label.encode()).hexdigest()[:8]
    return f"{PREFIX}{label[:50].rstrip('-_')}-{digest}"


def store_dir(settings=None) -> Path:
    """The model store folder: the given home's, else the running process's (a Bento's own)."""
    if settings is not None:
        from va_core.servers import serve_env

        return Path(serve_env(settings)["BENTOML_HOME"]) / "models"
    return Path(_model_store(None)._path)


def store_location() -> str:
    return str(store_dir())


def _model_store(settings=None):
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.models.model import ModelStore

    if settings is None:
        return BentoMLContainer.model_store.get()
    path = store_dir(settings)
    path.mkdir(parents=True, exist_ok=True)
    return ModelStore(str(path))


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

        model = LinearModel.from_artifact((self.path / ARTIFACT).read_text())
        meta = self.metadata
        lineage = {
            "stage": self.stage, "ap": meta.get("ap"), "n_pos": meta.get("n_pos"), "n_neg": meta.get("n_neg"),
            "trainer": meta.get("trainer"), "trained_at": meta.get("trained_at"),
            "label_events_version": meta.get("label_events_version"), "store_tag": self.tag,
        }
        return ServedModel(self.label, self.version, meta["encoder_id"], model, lineage)


def _entry(model) -> StoreEntry | None:
    info = model.info
    if info.metadata.get("kind") != KIND:
        return None
    labels = info.labels
    return StoreEntry(str(model.tag), labels["label"], int(labels["version"]), labels["stage"],
                      Path(model.path), dict(info.metadata))


def entries(settings=None, stage: str | None = None) -> list[StoreEntry]:
    """va's entries in the store (of ``settings``' home, else this process's), newest version last."""
    store = _model_store(settings)
    found = [e for e in (_entry(m) for m in store.list()) if e is not None]
    if stage is not None:
        found = [e for e in found if e.stage == stage]
    return sorted(found, key=lambda e: (e.label, e.version))


def approved_entries(settings=None) -> list[StoreEntry]:
    return entries(settings, "approved")


def _metadata(row: dict, digest: str) -> dict:
    def num(v, cast):
        return None if v is None else cast(v)

    trained = row.get("trained_at")
    return {
        "kind": KIND, "ap": num(row.get("ap"), float), "n_pos": num(row.get("n_pos"), int),
        "n_neg": num(row.get("n_neg"), int), "encoder_id": row["encoder_id"],
        "label_events_version": num(row.get("label_events_version"), int),
        "trainer": row.get("trainer"), "trained_at": trained.isoformat() if hasattr(trained, "isoformat") else trained,
        "artifact_sha256": digest,
    }


def _set_stage(model, stage: str) -> None:
    """Rewrite the entry's model.yaml with a new stage label, atomically (write, then rename)."""
    import yaml

    path = Path(model.path) / "model.yaml"
    info = yaml.safe_load(path.read_text())
    info.setdefault("labels", {})["stage"] = stage
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(info, sort_keys=False))
    os.replace(tmp, path)


@contextlib.contextmanager
def _sync_lock(store_path: Path) -> Iterator[None]:
    """One sync at a time per store: the server's watcher and a Dagster run may both sync."""
    store_path.mkdir(parents=True, exist_ok=True)
    with FileLock(store_path / ".va-sync.lock"):
        yield


def sync_models(settings, *, into=None) -> list[dict]:
    """Mirror the ``models`` table into the model store; returns what changed.

    ``into`` is ``None`` for the store of ``settings``' home, or ``"process"`` for the store
    this process already uses (the model server: BENTOML_HOME is set for it).
    Each change is ``{"tag", "label", "version", "stage", "action"}`` with action
    ``created`` / ``restaged`` / ``replaced`` / ``removed``.
    """
    import bentoml
    from bentoml._internal.tag import Tag

    from va_core.registry import models_frame
    from va_core.warehouse import Warehouse

    store = _model_store(None if into == "process" else settings)
    rows = models_frame(Warehouse.from_settings(settings)).to_dicts()
    changes = []
    with _sync_lock(Path(store._path)):
        existing = {str(m.tag): m for m in store.list() if m.info.metadata.get("kind") == KIND}
        wanted = set()
        for row in rows:
            label, version, stage = row["label"], int(row["model_version"]), row["stage"]
            tag = Tag(store_name(label), f"v{version}")
            wanted.add(str(tag))
            digest = hashlib.sha256(row["artifact"].encode()).hexdigest()
            model = existing.get(str(tag))
            action = None
            if model is not None and model.info.metadata.get("artifact_sha256") != digest:
                # the warehouse was rebuilt and reused the version number for a different model
                store.delete(tag)
                model, action = None, "replaced"
            if model is None:
                with bentoml.models.create(tag, labels={"label": label, "stage": stage, "version": str(version)},
                                           metadata=_metadata(row, digest), _model_store=store) as created:
                    Path(created.path_of(ARTIFACT)).write_text(row["artifact"])
                action = action or "created"
            elif model.info.labels.get("stage") != stage:
                _set_stage(model, stage)
                action = "restaged"
            if action:
                changes.append({"tag": str(tag), "label": label, "version": version, "stage": stage,
                                "action": action})
        for tag, model in existing.items():
            if tag not in wanted:
                store.delete(model.tag)
                labels = model.info.labels
                changes.append({"tag": tag, "label": labels.get("label"), "version": int(labels.get("version", 0)),
                                "stage": labels.get("stage"), "action": "removed"})
    return changes
