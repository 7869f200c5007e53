"""The corpus embedding matrix of one encoder, loaded once per table version.

Search, training, scoring and feeds all read the same matrix; it is cached in-process
and keyed by the table version, so a new ingestion is picked up on the next call.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from va_core.errors import InputError, NotFound, VAError
from va_core.warehouse import Warehouse, embedding_matrix

__all__ = ["Corpus", "encoder_ids", "feature_set_of", "features_encoder_id", "load_corpus"]


@dataclass(frozen=True)
class Corpus:
    """Clip keys and their L2-normalised embeddings (row i is keys[i])."""

    encoder_id: str
    keys: np.ndarray  # object array of str
    matrix: np.ndarray  # (N, D) float32, C-contiguous
    version: int | None
    _index: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1]) if self.matrix.ndim == 2 else 0

    def positions(self, keys) -> np.ndarray:
        """Row numbers of ``keys``; unknown keys raise NotFound naming them."""
        if not self._index:
            self._index.update({k: i for i, k in enumerate(self.keys.tolist())})
        missing = [k for k in keys if k not in self._index]
        if missing:
            raise NotFound(f"{len(missing)} clip key(s) have no {self.encoder_id} embedding, e.g. {missing[:3]}")
        return np.fromiter((self._index[k] for k in keys), dtype=np.int64, count=len(keys))

    def has(self, key: str) -> bool:
        if not self._index:
            self.positions([])
        return key in self._index


_cache: dict[tuple[str, str], Corpus] = {}
_lock = threading.Lock()


def encoder_ids(wh: Warehouse) -> list[str]:
    """Encoders that have embeddings in the warehouse."""
    if not wh.exists("clip_embeddings"):
        return []
    col = wh.arrow("clip_embeddings", columns=["encoder_id"]).column("encoder_id")
    return sorted(v for v in pc.unique(col).to_pylist() if v is not None)


# -- feature sets: what a label's classifier sees ----------------------------------------
FEATURE_SETS = ("clip", "motion", "both")
JOIN = "+"


def features_encoder_id(clip_encoder_id: str, features: str) -> str:
    """The embeddings of a feature set: the CLIP encoder's, camera motion's, or both side by side."""
    from va_core.motion import ENCODER_ID as MOTION

    if features == "clip":
        return clip_encoder_id
    if features == "motion":
        return MOTION
    if features == "both":
        return f"{clip_encoder_id}{JOIN}{MOTION}"
    raise InputError(f"unknown feature set {features!r}; feature sets are: {', '.join(FEATURE_SETS)}")


def feature_set_of(encoder_id: str) -> str:
    from va_core.motion import ENCODER_ID as MOTION

    if encoder_id == MOTION:
        return "motion"
    return "both" if encoder_id.endswith(JOIN + MOTION) else "clip"


def _joined(wh: Warehouse, encoder_id: str, version: int | None) -> Corpus:
    """Several encoders' embeddings of the clips that have all of them, concatenated in the order named."""
    parts = [load_corpus(wh, part) for part in encoder_id.split(JOIN)]
    keys = parts[0].keys
    for p in parts[1:]:
        keys = keys[np.isin(keys, p.keys)]
    if len(keys) == 0:
        raise NotFound(f"no clip has embeddings of every one of {', '.join(p.encoder_id for p in parts)}")
    matrix = np.ascontiguousarray(np.hstack([p.matrix[p.positions(keys.tolist())] for p in parts]), dtype=np.float32)
    return Corpus(encoder_id, keys, matrix, version)


def load_corpus(wh: Warehouse, encoder_id: str) -> Corpus:
    """All clip embeddings of one encoder, sorted by clip key (cached per table version).

    ``a+b`` (see :func:`features_encoder_id`): the clips that have embeddings of both, each
    row the two embeddings side by side.
    """
    version = wh.version("clip_embeddings")
    cache_key = (wh.uri, encoder_id)
    with _lock:
        hit = _cache.get(cache_key)
        if hit is not None and hit.version == version:
            return hit
    if JOIN in encoder_id:
        corpus = _joined(wh, encoder_id, version)
        with _lock:
            _cache[cache_key] = corpus
        return corpus
    # Read exactly the version the cache entry is labelled with, even if a writer commits meanwhile.
    where = {"encoder_id": encoder_id}
    key_column = wh.arrow("clip_embeddings", columns=["clip_key"], where=where, version=version).column("clip_key")
    if len(key_column) == 0:
        known = encoder_ids(wh)
        raise NotFound(
            f"no clip embeddings for encoder {encoder_id!r} in {wh.uri}; "
            + (f"the warehouse has embeddings of: {', '.join(known)}" if known else "run `va ingest` first")
        )
    key_column = key_column.combine_chunks()
    order = pc.array_sort_indices(key_column)
    sorted_keys = key_column.take(order)
    if pc.count_distinct(sorted_keys).as_py() != len(sorted_keys):
        raise VAError(f"clip_embeddings in {wh.uri} has several rows for one clip key and encoder {encoder_id!r}")
    rank = np.empty(len(order), dtype=np.int64)  # row i of the scan goes to position rank[i]
    rank[order.to_numpy()] = np.arange(len(order))
    # Embeddings stream in batches, each row written straight to its sorted position: the
    # matrix is the only full-size copy (reading the table first would hold two).
    matrix, row = None, 0
    for batch in wh.batches("clip_embeddings", columns=["clip_key", "embedding"], where=where, version=version):
        if batch.num_rows == 0:
            continue
        block = embedding_matrix(batch.column(1))
        if matrix is None:
            matrix = np.empty((len(sorted_keys), block.shape[1]), dtype=np.float32)
        elif block.shape[1] != matrix.shape[1]:
            raise VAError(f"embeddings of encoder {encoder_id!r} have different dimensions")
        batch_keys = batch.column(0)
        if row + len(batch_keys) <= len(key_column) and key_column.slice(row, len(batch_keys)).equals(batch_keys):
            target = rank[row:row + len(batch_keys)]  # the scan came in the same order as the keys
        else:  # a scan in another order: look each key up (slower, same result)
            target = pc.index_in(batch_keys, value_set=sorted_keys).to_numpy()
        matrix[target] = block
        row += len(batch_keys)
    keys = np.array(sorted_keys.to_pylist(), dtype=object)
    del key_column, sorted_keys, order
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed read buffers otherwise
    corpus = Corpus(encoder_id, keys, matrix, version)
    with _lock:
        _cache[cache_key] = corpus
    return corpus
