"""The paper's released dataset: one folder, read as the paper's own code reads it.

Layout (``DIR``)::

    embeddings.h5          dataset "embeddings", N x D float32; row i is row i of shot-data.csv
    shot-data.csv          key ({yt_id}|{frame_in}), yt_id, desc, genre, frame_in, frame_out,
                           start, end, fps, cluster_index
    text-embeddings.json   label -> D floats (the CLIP text embedding of the label's name)
    agg/{label}.json       {"data": [{"key", "agg", "pos_cnt", "primary"?, "secondaries"?}],
                            "primary"?: annotator, "secondaries"?: [annotators]}
    checkpoints/{label}.json  [{"pos": [keys], "neg": [keys]}, ...] growing snapshots
    cmp/{label}.json       {"zero_shot": [{"key", "value"}], "random": [...]} in order

Only what a caller asks for is read: the embedding rows of one label's clips, not the
whole 1 GB matrix, so a process pool of workers stays small.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from va_core.errors import InputError, NotFound

__all__ = ["AggLabels", "Checkpoint", "KeyVectors", "VADataset"]

EMBEDDINGS_FILE = "embeddings.h5"
SHOTS_FILE = "shot-data.csv"
TEXT_FILE = "text-embeddings.json"
SHOT_COLUMNS = ("key", "yt_id", "desc", "genre", "frame_in", "frame_out", "start", "end", "fps", "cluster_index")
LABEL_KINDS = ("agg", "checkpoints", "cmp")
CMP_LISTS = ("zero_shot", "random")


@dataclass(frozen=True)
class AggItem:
    key: str
    agg: bool
    pos_cnt: int | None
    votes: dict[str, bool] | None  # annotator -> vote, when the file names them


@dataclass(frozen=True)
class AggLabels:
    """The experts' aggregated labels of one label."""

    label: str
    items: tuple[AggItem, ...]

    @cached_property
    def pos(self) -> frozenset[str]:
        return frozenset(i.key for i in self.items if i.agg)

    @cached_property
    def neg(self) -> frozenset[str]:
        return frozenset(i.key for i in self.items if not i.agg)


@dataclass(frozen=True)
class Checkpoint:
    pos: frozenset[str]
    neg: frozenset[str]

    def __len__(self) -> int:
        return len(self.pos) + len(self.neg)


def _load_json(path: Path) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from exc


class VADataset:
    """Read access to one folder in the released format."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise NotFound(f"dataset folder {self.root} does not exist")

    def __repr__(self) -> str:
        return f"VADataset({str(self.root)!r})"

    def path(self, kind: str, label: str | None = None) -> Path:
        if label is None:
            return self.root / {"embeddings": EMBEDDINGS_FILE, "shots": SHOTS_FILE, "text": TEXT_FILE}[kind]
        return self.root / kind / f"{label}.json"

    # -- checks ------------------------------------------------------------
    def validate(self, files: Sequence[str] = ("embeddings", "shots", "text")) -> None:
        """Fail with one message naming every missing file and a row-count mismatch."""
        missing = [self.path(f).name for f in files if not self.path(f).is_file()]
        if not (self.root / "agg").is_dir():
            missing.append("agg/")
        if missing:
            raise InputError(f"{self.root} is not a dataset in the released format: missing {', '.join(missing)}")
        if "embeddings" in files and "shots" in files:
            n_rows, dim = self.shape
            if n_rows != len(self.shot_keys):
                raise InputError(f"{self.path('embeddings')} has {n_rows} rows but {self.path('shots')} has "
                                 f"{len(self.shot_keys)}: row i of one must be row i of the other")

    def labels(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "agg").glob("*.json"))

    def select_labels(self, labels: Iterable[str] | None, kinds: Sequence[str] = LABEL_KINDS) -> list[str]:
        """The labels to run (all of agg/ by default); unknown ones or missing files are an error."""
        known = self.labels()
        chosen = list(dict.fromkeys(labels)) if labels else known
        unknown = [label for label in chosen if label not in known]
        if unknown:
            raise NotFound(f"no agg/{{label}}.json for {', '.join(unknown)} in {self.root}; "
                           f"labels are: {', '.join(known) or '(none)'}")
        missing = [f"{k}/{label}.json" for label in chosen for k in kinds if not self.path(k, label).is_file()]
        if missing:
            raise InputError(f"{self.root} lacks files the experiment needs: {', '.join(missing[:10])}"
                             + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
        return chosen

    # -- per-label files ---------------------------------------------------
    def agg(self, label: str) -> AggLabels:
        path = self.path("agg", label)
        doc = _load_json(path)
        rows = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(rows, list):
            raise InputError(f"{path}: expected an object with a 'data' list")
        items = []
        for i, row in enumerate(rows):
            try:
                key, agg = str(row["key"]), row["agg"]
            except (KeyError, TypeError):
                raise InputError(f"{path}: item {i} lacks 'key' or 'agg'") from None
            if not isinstance(agg, bool):
                raise InputError(f"{path}: item {i} ({key}) has agg={agg!r}, expected true or false")
            items.append(AggItem(key, agg, _int_or_none(row.get("pos_cnt")), _votes(doc, row)))
        keys = [i.key for i in items]
        if len(set(keys)) != len(keys):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            raise InputError(f"{path}: clip keys appear more than once, e.g. {dup[:3]}")
        return AggLabels(label, tuple(items))

    def checkpoints(self, label: str) -> list[Checkpoint]:
        path = self.path("checkpoints", label)
        doc = _load_json(path)
        if not isinstance(doc, list):
            raise InputError(f"{path}: expected a list of {{'pos': [...], 'neg': [...]}}")
        out = []
        for i, snap in enumerate(doc):
            try:
                out.append(Checkpoint(frozenset(map(str, snap["pos"])), frozenset(map(str, snap["neg"]))))
            except (KeyError, TypeError):
                raise InputError(f"{path}: checkpoint {i} lacks 'pos' or 'neg' lists") from None
        return out

    def cmp(self, label: str) -> dict[str, list[tuple[str, bool]]]:
        """The baseline label lists, in the order they were drawn."""
        path = self.path("cmp", label)
        doc = _load_json(path)
        out = {}
        for name in CMP_LISTS:
            rows = doc.get(name) if isinstance(doc, dict) else None
            if not isinstance(rows, list):
                raise InputError(f"{path}: expected a '{name}' list of {{'key', 'value'}}")
            try:
                out[name] = [(str(r["key"]), bool(r["value"])) for r in rows]
            except (KeyError, TypeError):
                raise InputError(f"{path}: an item of '{name}' lacks 'key' or 'value'") from None
        return out

    # -- corpus --------------------------------------------------------------
    @cached_property
    def text_embeddings(self) -> dict[str, np.ndarray]:
        doc = _load_json(self.path("text"))
        if not isinstance(doc, dict):
            raise InputError(f"{self.path('text')}: expected an object label -> vector")
        return {str(k): np.asarray(v, dtype=np.float64) for k, v in doc.items()}

    def text_embedding(self, label: str) -> np.ndarray:
        try:
            return self.text_embeddings[label]
        except KeyError:
            raise NotFound(f"{self.path('text')} has no text embedding for {label!r}") from None

    @cached_property
    def shape(self) -> tuple[int, int]:
        import h5py

        with h5py.File(self.path("embeddings"), "r") as f:
            if "embeddings" not in f:
                raise InputError(f"{self.path('embeddings')} has no dataset named 'embeddings'")
            n, d = f["embeddings"].shape
        return int(n), int(d)

    @cached_property
    def shot_keys(self) -> np.ndarray:
        import polars as pl

        try:
            keys = pl.read_csv(self.path("shots"), columns=["key"], schema_overrides={"key": pl.String})["key"]
        except (pl.exceptions.ColumnNotFoundError, pl.exceptions.ComputeError) as exc:
            raise InputError(f"{self.path('shots')}: cannot read its 'key' column: {exc}") from exc
        return keys.to_numpy().astype(object)

    @cached_property
    def _row_index(self) -> dict[str, int]:
        index = {k: i for i, k in enumerate(self.shot_keys.tolist())}
        if len(index) != len(self.shot_keys):
            raise InputError(f"{self.path('shots')}: clip keys appear more than once")
        return index

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        index = self._row_index
        missing = [k for k in keys if k not in index]
        if missing:
            raise NotFound(f"{len(missing)} clip key(s) are not in {SHOTS_FILE}, e.g. {missing[:3]}")
        return np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))

    def embeddings(self, keys: Sequence[str]) -> np.ndarray:
        """Rows of ``embeddings.h5`` for ``keys``, in the order given (float32, as stored)."""
        import h5py

        rows = self.rows(keys)
        uniq, inverse = np.unique(rows, return_inverse=True)  # h5py reads increasing indices only
        with h5py.File(self.path("embeddings"), "r") as f:
            block = f["embeddings"][uniq] if len(uniq) else np.zeros((0, self.shape[1]), np.float32)
        return np.ascontiguousarray(block[inverse])

    def shots(self):
        """The whole shot table as a polars frame (for import)."""
        import polars as pl

        frame = pl.read_csv(self.path("shots"), schema_overrides={"key": pl.String, "yt_id": pl.String,
                                                                   "desc": pl.String, "genre": pl.String})
        absent = [c for c in SHOT_COLUMNS if c not in frame.columns]
        if absent:
            raise InputError(f"{self.path('shots')}: missing columns {', '.join(absent)}")
        return frame


class KeyVectors:
    """Embeddings of a fixed set of clip keys, looked up by key."""

    def __init__(self, keys: Sequence[str], matrix: np.ndarray):
        self._index = {k: i for i, k in enumerate(keys)}
        self.matrix = matrix

    @classmethod
    def load(cls, ds: VADataset, keys: Iterable[str]) -> "KeyVectors":
        keys = sorted(set(keys))
        return cls(keys, ds.embeddings(keys))

    def __call__(self, keys: Sequence[str]) -> np.ndarray:
        return self.matrix[[self._index[k] for k in keys]]


def _int_or_none(value) -> int | None:
    return None if value is None else int(value)


def _votes(doc: dict, row: dict) -> dict[str, bool] | None:
    """Each annotator's vote, when the file names the primary and the secondaries."""
    primary, secondaries = doc.get("primary"), row.get("secondaries")
    if not isinstance(primary, str) or "primary" not in row or not isinstance(secondaries, dict):
        return None
    votes = {primary: bool(row["primary"])}
    votes.update({str(k): bool(v) for k, v in secondaries.items()})
    return votes
