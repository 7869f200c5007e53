"""A video file -> its shots and their clip embeddings, the way `va ingest` makes them.

Nothing is written to the warehouse: a classified upload is not part of the corpus.
Shot detection and frame sampling are va_core.video's single decoding pass
(:func:`va_core.video.scan`, the function ingestion uses); frames are encoded by the
home's encoder in batches; a shot's embedding is the mean of its frame embeddings,
L2-normalised, as ingestion stores it. tests/serving checks that /classify's scores
equal the scores of the embeddings `va ingest` stored for the same file.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from va_core.errors import InputError

BATCH_FRAMES = 64

_encoders: dict[str, object] = {}
_lock = threading.Lock()


def encoder_for(spec: str):
    """The encoder of ``spec``, loaded once per process (loading torch takes seconds)."""
    from va_core.encoders import load_encoder

    with _lock:
        if spec not in _encoders:
            _encoders[spec] = load_encoder(spec)
        return _encoders[spec]


@dataclass(frozen=True)
class EmbeddedVideo:
    info: object  # va_core.video.VideoInfo
    shots: list  # va_core.video.Shot
    n_sampled: list[int]
    matrix: np.ndarray  # (n_shots, D) float32, rows L2-normalised

    def describe_shots(self) -> list[dict]:
        return [{"index": i, "frame_in": s.frame_in, "frame_out": s.frame_out, "start_s": s.start_s,
                 "end_s": s.end_s, "n_sampled": n} for i, (s, n) in enumerate(zip(self.shots, self.n_sampled))]


def _pool(frame_embeddings: np.ndarray) -> np.ndarray:
    pooled = frame_embeddings.mean(axis=0)
    return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)


def embed_video(path, encoder) -> EmbeddedVideo:
    """Shots of one video file with their embeddings; InputError when it is not a readable video."""
    from va_core.video import scan

    result = scan(path, encoder.image_size, fit=encoder.frame_fit)
    shots, counts, pending, vectors = [], [], [], []

    def flush():
        if not pending:
            return
        emb = encoder.encode_images(np.concatenate(pending))
        start = 0
        for frames in pending:
            vectors.append(_pool(emb[start:start + len(frames)]))
            start += len(frames)
        pending.clear()

    n_pending = 0
    for item in result.shots:
        shots.append(item.shot)
        counts.append(len(item.frames))
        pending.append(item.frames)
        n_pending += len(item.frames)
        if n_pending >= BATCH_FRAMES:
            flush()
            n_pending = 0
    flush()
    if not shots:
        raise InputError(f"{path}: no shots found")
    return EmbeddedVideo(result.info, shots, counts, np.stack(vectors))
