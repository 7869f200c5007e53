"""Camera motion of a clip from the decoder's motion vectors: a small descriptor stored as an embedding.

H.264 and most other codecs already measure how every block moved since its reference frame;
FFmpeg exports those vectors when asked (``flags2=+export_mvs``), so the camera's motion costs
a least-squares fit and no extra image work. Every other frame, its vectors (at most 256)
are fitted by a global affine model ``u = a0 + a1 x + a2 y, v = b0 + b1 x + b2 y`` (x, y and
the vectors in frame widths, from the centre; weighted by block area), refitted once without
the blocks far from the first fit (moving objects): pan ``a0``, tilt ``b0``, zoom
``(a1 + b2) / 2``, rotation ``(b1 - a2) / 2``, what the model leaves unexplained (object
motion) and the share of the frame that moves.

Per clip those frame values become :data:`DIM` numbers (``motion-v1``): the signed means and
their sizes for pan, tilt, zoom and rotation, the mean size per frame, shake (the frame-to-frame
jitter of pan and tilt), object motion and moving share, each ``sign * log1p(|1000 x|)`` so
that slow and fast moves stay on one scale; then the share of all motion that each of pan,
tilt, zoom and rotation explains (the move that dominates, whatever its speed). A clip whose
frames carry no vectors (all intra frames, a one-frame clip) gets zeros. Frames inside
gradual transitions are left out, like for the CLIP embedding. The descriptor is not
L2-normalised: its size is the motion's speed.
"""
from __future__ import annotations

import numpy as np

ENCODER_ID = "motion-v1"
DIM = 20
DECODER_OPTIONS = {"flags2": "+export_mvs"}
FEATURES = ("pan", "tilt", "zoom", "rotation", "object", "moving")


def frame_vectors(frame) -> np.ndarray | None:
    """The motion vectors FFmpeg exported for a decoded frame (a structured array), None if none."""
    from av.sidedata.motionvectors import MotionVectors

    vectors = next((sd for sd in frame.side_data if isinstance(sd, MotionVectors)), None)
    if vectors is None or len(vectors) == 0:
        return None
    return vectors.to_ndarray()


def fit_frames(vectors: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """(n, 6) pan, tilt, zoom, rotation, object, moving of n frames' vectors, all fitted at once.

    The per-frame weighted least squares are solved from their normal equations, summed per
    frame with ``reduceat``: a few dozen array operations for any number of frames instead of
    as many per frame (per-frame fits cost more than decoding small videos).
    """
    n = len(vectors)
    counts = np.fromiter((len(v) for v in vectors), dtype=np.int64, count=n)
    mv = np.concatenate(vectors)
    fid = np.repeat(np.arange(n), counts)
    scale = np.maximum(mv["motion_scale"].astype(np.float32), 1.0) * np.float32(width)
    # FFmpeg gives src = dst + motion / scale; a past reference's content moved by minus that.
    sign = np.where(mv["source"] < 0, np.float32(-1), np.float32(1))
    u = sign * mv["motion_x"] / scale
    v = sign * mv["motion_y"] / scale
    x = ((mv["dst_x"] - width / 2) / width).astype(np.float32)
    y = ((mv["dst_y"] - height / 2) / width).astype(np.float32)
    w = mv["w"].astype(np.float32) * mv["h"]

    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # The normal equations' terms of every block, once: a weighted solve is then one product
    # and one reduceat (a frame's blocks are contiguous).
    basis = np.column_stack([np.ones_like(x), x, y, x * x, x * y, y * y, u, u * x, u * y, v, v * x, v * y])

    def solve(weight):
        sums = np.add.reduceat(basis * weight[:, None], starts, axis=0)
        s1, sx, sy, sxx, sxy, syy = (sums[:, i] for i in range(6))
        normal = np.stack([np.stack([s1, sx, sy], -1), np.stack([sx, sxx, sxy], -1), np.stack([sy, sxy, syy], -1)], -2)
        normal += np.eye(3) * 1e-9  # a frame whose blocks all sit on one line stays solvable
        a = np.linalg.solve(normal, sums[:, 6:9, None])[..., 0]
        b = np.linalg.solve(normal, sums[:, 9:12, None])[..., 0]
        pu = (basis[:, :3] * a[fid]).sum(axis=1)
        pv = (basis[:, :3] * b[fid]).sum(axis=1)
        return a, b, np.hypot(u - pu, v - pv)

    def total(values):
        return np.add.reduceat(values, starts)

    a, b, res = solve(w)
    # Refit without the blocks that move on their own (objects): far from the first fit.
    mean_res = total(w * res) / np.maximum(total(w), 1e-12)
    keep = res <= np.maximum(2.5 * mean_res[fid], 0.5 / width)
    a, b, res = solve(w * keep)
    area = np.maximum(total(w), 1e-12)
    moving = total(w * (np.hypot(u, v) * width > 0.5)) / area
    unexplained = total(w * res) / area
    return np.column_stack([a[:, 0], b[:, 0], (a[:, 1] + b[:, 2]) / 2, (b[:, 1] - a[:, 2]) / 2, unexplained, moving])


class MotionTrack:
    """The camera motion of one clip in progress: vectors kept for at most ``chunk`` frames, then fitted.

    Every ``every``-th frame is fitted, on at most ``max_vectors`` of its vectors (evenly
    spread): a global motion is over-determined by a few hundred blocks, and this keeps the
    cost a small share of decoding at any frame size.
    """

    def __init__(self, chunk: int = 64, every: int = 2, max_vectors: int = 256):
        self.chunk, self.every, self.max_vectors = chunk, every, max_vectors
        self._pending: list[np.ndarray] = []
        self._size = (0, 0)
        self._fitted: list[np.ndarray] = []
        self._seen = 0

    def add(self, frame) -> None:
        self._seen += 1
        if (self._seen - 1) % self.every:
            return
        vectors = frame_vectors(frame)
        if vectors is None:
            return
        if len(vectors) > self.max_vectors:
            vectors = vectors[::-(-len(vectors) // self.max_vectors)]
        size = (frame.width, frame.height)
        if self._pending and size != self._size:
            self._flush()
        self._size = size
        self._pending.append(vectors)
        if len(self._pending) >= self.chunk:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._fitted.append(fit_frames(self._pending, *self._size))
            self._pending = []

    def descriptor(self) -> np.ndarray:
        self._flush()
        return descriptor(list(np.concatenate(self._fitted))) if self._fitted else descriptor([])


def frame_motion(frame) -> np.ndarray | None:
    """(pan, tilt, zoom, rotation, object, moving) of one decoded frame, None if it has no vectors."""
    vectors = frame_vectors(frame)
    return None if vectors is None else fit_frames([vectors], frame.width, frame.height)[0]


def descriptor(frames: list[np.ndarray]) -> np.ndarray:
    """The clip's :data:`DIM`-number motion descriptor from its frames' :func:`frame_motion` values."""
    if not frames:
        return np.zeros(DIM, dtype=np.float32)
    p = np.stack(frames)
    glob = p[:, :4]
    mean = glob.mean(axis=0)
    jitter = np.abs(np.diff(p[:, :2], axis=0)).mean(axis=0) if len(p) > 1 else np.zeros(2)
    raw = np.concatenate([mean, np.abs(mean), np.abs(glob).mean(axis=0), jitter, p[:, 4:6].mean(axis=0)])
    # Which move dominates, whatever its speed: the decoder's vectors span 1 to 4 frames
    # (B-frames), so their size is only known up to that factor; their proportions are not.
    share = np.abs(mean) / (np.abs(mean).sum() + p[:, 4].mean() + 1e-6)
    return np.concatenate([np.sign(raw) * np.log1p(np.abs(1000 * raw)), 4 * share]).astype(np.float32)
