"""Synthetic clip embeddings with known structure, for benchmarks and tests at scale.

Clips are drawn around ``n_topics`` random unit directions, so a label "is topic t" is
learnable from the embeddings the way a visual concept is from CLIP embeddings.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from va_core.warehouse import Warehouse, embedding_column

SYNTHETIC_ENCODER_ID = "synthetic:gaussian-topics"


@dataclass(frozen=True)
class SyntheticCorpus:
    keys: list[str]
    matrix: np.ndarray  # (N, D) float32, rows L2-normalised
    topics: np.ndarray  # (N,) int: the ground truth a simulated expert labels from
    encoder_id: str


def make_corpus(n: int, dim: int = 512, n_topics: int = 20, noise: float = 1.2, seed: int = 0,
                n_videos: int | None = None, encoder_id: str = SYNTHETIC_ENCODER_ID) -> SyntheticCorpus:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_topics, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    topics = rng.integers(0, n_topics, size=n)
    matrix = np.empty((n, dim), dtype=np.float32)
    step = 200_000  # bounded memory for millions of rows
    for s in range(0, n, step):
        e = min(n, s + step)
        block = centres[topics[s:e]] + (noise / np.sqrt(dim)) * rng.standard_normal((e - s, dim)).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        matrix[s:e] = block
    n_videos = n_videos or max(1, n // 100)
    per = -(-n // n_videos)
    keys = [f"synth{i // per:06d}|{(i % per) * 48}" for i in range(n)]
    return SyntheticCorpus(keys, matrix, topics, encoder_id)


def write_corpus(wh: Warehouse, corpus: SyntheticCorpus, chunk: int = 250_000) -> int:
    """Write clips and embeddings of a synthetic corpus; returns the embeddings table version."""
    video_ids = [k.split("|", 1)[0] for k in corpus.keys]
    frame_in = [int(k.split("|", 1)[1]) for k in corpus.keys]
    version = None
    for s in range(0, len(corpus.keys), chunk):
        e = min(len(corpus.keys), s + chunk)
        wh.append("clips", pa.table({
            "clip_key": corpus.keys[s:e], "video_id": video_ids[s:e], "frame_in": frame_in[s:e],
            "frame_out": [f + 47 for f in frame_in[s:e]],
            "start_s": [f / 24 for f in frame_in[s:e]], "end_s": [(f + 48) / 24 for f in frame_in[s:e]],
        }))
        version = wh.append("clip_embeddings", pa.table({
            "clip_key": corpus.keys[s:e], "video_id": video_ids[s:e],
            "encoder_id": [corpus.encoder_id] * (e - s),
            "embedding": embedding_column(corpus.matrix[s:e]),
        }))
    return version
