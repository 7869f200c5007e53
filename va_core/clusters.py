"""K-means clusters of the embedding space (K=10), for the data diversity score.

Stored in ``clip_clusters`` per encoder together with the ``clip_embeddings`` version
they were computed from; recomputed when the corpus of that encoder changes.
"""
from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from va_core.embeddings import Corpus
from va_core.learn import N_CLUSTERS
from va_core.warehouse import Warehouse

__all__ = ["corpus_clusters", "refresh_clusters"]

FIT_SAMPLE = 20_000  # k-means is fitted on at most this many clips, then every clip is assigned
SEED = 0

log = logging.getLogger(__name__)


def fit_clusters(matrix: np.ndarray, k: int = N_CLUSTERS, seed: int = SEED) -> np.ndarray:
    """Cluster index of every row: k-means fitted on a seeded sample, all rows assigned."""
    from sklearn.cluster import KMeans

    n = len(matrix)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    k = min(k, n)
    rng = np.random.default_rng(seed)
    sample = matrix if n <= FIT_SAMPLE else matrix[np.sort(rng.choice(n, FIT_SAMPLE, replace=False))]
    km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(np.asarray(sample, dtype=np.float32))
    centres = km.cluster_centers_.astype(np.float32)
    out = np.empty(n, dtype=np.int32)
    half = (centres * centres).sum(1) / 2
    for s in range(0, n, 262_144):  # nearest centre = argmax(x.c - |c|^2/2), in blocks
        block = np.asarray(matrix[s:s + 262_144], dtype=np.float32)
        out[s:s + len(block)] = np.argmax(block @ centres.T - half, axis=1)
    return out


def stored_clusters(wh: Warehouse, corpus: Corpus) -> np.ndarray | None:
    """The stored cluster of each corpus row, or None when they are missing or stale."""
    table = wh.arrow("clip_clusters", columns=["clip_key", "cluster_index", "embeddings_version"],
                     where={"encoder_id": corpus.encoder_id})
    if table.num_rows != len(corpus):
        return None
    table = table.sort_by("clip_key")
    keys = table.column("clip_key").to_pylist()
    if keys != corpus.keys.tolist():
        return None
    return table.column("cluster_index").to_numpy().astype(np.int32)


def refresh_clusters(wh: Warehouse, corpus: Corpus, force: bool = False) -> tuple[np.ndarray, bool]:
    """Clusters of ``corpus``, recomputed and stored when the corpus changed; (clusters, recomputed)."""
    if not force:
        stored = stored_clusters(wh, corpus)
        if stored is not None:
            return stored, False
    log.info("clustering %d clips of %s into %d clusters", len(corpus), corpus.encoder_id, N_CLUSTERS)
    clusters = fit_clusters(corpus.matrix)
    wh.replace("clip_clusters", {"encoder_id": corpus.encoder_id}, pa.table({
        "clip_key": pa.array(corpus.keys.tolist(), pa.string()),
        "encoder_id": [corpus.encoder_id] * len(corpus),
        "cluster_index": pa.array(clusters, pa.int32()),
        "embeddings_version": pa.array([corpus.version] * len(corpus), pa.int64()),
    }))
    return clusters, True


_cache: dict[tuple[str, str, int | None], np.ndarray] = {}


def corpus_clusters(wh: Warehouse, corpus: Corpus) -> np.ndarray:
    """Clusters of the corpus rows, cached per embeddings version in this process."""
    key = (wh.uri, corpus.encoder_id, corpus.version)
    if key not in _cache:
        _cache[key] = refresh_clusters(wh, corpus)[0]
    return _cache[key]
