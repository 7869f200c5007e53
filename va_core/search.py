"""Similarity search over the clip embeddings of one encoder.

Exact cosine top-k: embeddings and queries are L2-normalised, so cosine is a dot product;
one matrix-vector product and a partial sort. Only the clips embedded by the current
encoder are searched (``embeddings.load_corpus`` filters by encoder id), so two encoders'
embeddings never mix.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from va_core.embeddings import Corpus, load_corpus
from va_core.encoders import parse_spec
from va_core.errors import InputError
from va_core.warehouse import Warehouse

__all__ = ["MAX_K", "search_text", "similar_clips"]

RESULT_COLUMNS = ["rank", "clip_key", "score", "video_id", "uri", "start_s", "end_s", "frame_in", "frame_out"]
MAX_K = 10_000


def top_k(matrix: np.ndarray, vector: np.ndarray, k: int, exclude: np.ndarray | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the ``k`` largest dot products with ``vector``, best first: (indices, scores).

    ``exclude``: row indices never returned (e.g. the query clip itself).
    """
    if matrix.shape[0] == 0 or k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    scores = matrix @ np.asarray(vector, dtype=matrix.dtype).reshape(-1)
    if exclude is not None and len(exclude):
        scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
    n = scores.shape[0]
    k = min(k, n)
    top = np.argpartition(scores, n - k)[n - k:] if k < n else np.arange(n)
    top = top[np.argsort(-scores[top], kind="stable")]
    keep = np.isfinite(scores[top])
    return top[keep], scores[top][keep].astype(np.float32)


def _check_k(k: int) -> int:
    if not isinstance(k, (int, np.integer)) or k < 1 or k > MAX_K:
        raise InputError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return int(k)


def describe_clips(wh: Warehouse, keys: list[str]) -> pl.DataFrame:
    """clip_key, video_id, uri, start_s, end_s, frame_in, frame_out of the given clips."""
    if not keys:
        return pl.DataFrame(schema={"clip_key": pl.String, "video_id": pl.String, "uri": pl.String,
                                    "start_s": pl.Float64, "end_s": pl.Float64,
                                    "frame_in": pl.Int64, "frame_out": pl.Int64})
    clips = wh.read("clips", columns=["clip_key", "video_id", "start_s", "end_s", "frame_in", "frame_out"],
                    where={"clip_key": keys})
    videos = wh.read("videos", columns=["video_id", "uri"],
                     where={"video_id": clips["video_id"].unique().to_list() or [""]})
    return clips.join(videos.unique("video_id"), on="video_id", how="left")


def _results(wh: Warehouse, corpus: Corpus, idx: np.ndarray, scores: np.ndarray) -> pl.DataFrame:
    hits = pl.DataFrame({"rank": np.arange(1, len(idx) + 1, dtype=np.int32),
                         "clip_key": corpus.keys[idx].tolist(), "score": scores})
    return hits.join(describe_clips(wh, hits["clip_key"].to_list()), on="clip_key", how="left") \
        .sort("rank").select(RESULT_COLUMNS)


def search_vector(wh: Warehouse, encoder_id: str, vector: np.ndarray, k: int = 10,
                  exclude_keys: list[str] | None = None) -> pl.DataFrame:
    """Top-k clips of one encoder by cosine similarity to an embedding (RESULT_COLUMNS)."""
    k = _check_k(k)
    corpus = load_corpus(wh, encoder_id)
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    if vector.shape[0] != corpus.dim:
        raise InputError(f"query vector has {vector.shape[0]} dimensions; {encoder_id} embeddings have {corpus.dim}")
    exclude = corpus.positions(exclude_keys) if exclude_keys else None
    idx, scores = top_k(corpus.matrix, vector, k, exclude)
    return _results(wh, corpus, idx, scores)


def search_text(settings, query: str, k: int = 10) -> pl.DataFrame:
    """Text-to-video search: the ``k`` clips whose embeddings are closest to the CLIP text
    embedding of ``query``, over the clips of ``settings.encoder``. Columns: RESULT_COLUMNS."""
    if not isinstance(query, str) or not query.strip():
        raise InputError("the search query is empty: describe what the clips should show")
    k = _check_k(k)
    spec = parse_spec(settings.encoder)
    wh = Warehouse.from_settings(settings)
    load_corpus(wh, spec.encoder_id)  # fails with NotFound before the encoder is loaded
    from va_core.encoders import load_encoder

    vector = load_encoder(spec).encode_text([query.strip()])[0]
    return search_vector(wh, spec.encoder_id, vector, k)


def similar_clips(settings, clip_key: str, k: int = 10) -> pl.DataFrame:
    """The ``k`` clips most similar to a clip (itself excluded), by the current encoder's embeddings."""
    spec = parse_spec(settings.encoder)
    wh = Warehouse.from_settings(settings)
    corpus = load_corpus(wh, spec.encoder_id)
    i = corpus.positions([clip_key])
    return search_vector(wh, spec.encoder_id, corpus.matrix[i[0]], k, exclude_keys=[clip_key])
