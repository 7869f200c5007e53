"""Camera motion of a clip from the decoder's motion vectors: a small descriptor stored as an embedding.

H.264 and most other codecs already measure how every block moved since its reference frame;
FFmpeg exports those vectors when asked (``flags2=+export_mvs``), so the camera's motion costs
a least-squares fit and no extra image work. Every other frame, its vectors (at most 256)
are fitted by a global affine model ``u = a0 + a1 x + a2 y, v = b0 + b1 x + b2 y`` (x, y and
the vectors in frame widths, from the centre; weighted by block area), refitted once without
the blocks far from the first fit (moving objects): pan ``a0``, tilt ``b0``, zoom
``(a1 + b2) / 2``, rotation ``(b1 - a2) / 2``, what the model leaves unexplained (object
motion), the share of the frame that moves, and the frame's evidence: the share of its area
that its vectors cover (a frame of intra blocks after a cut may carry a handful).

Per clip those frame values become :data:`DIM` numbers (``motion-v1``), every frame weighted by
its evidence: the signed means and their sizes for pan, tilt, zoom and rotation, the mean size
per frame, shake (the frame-to-frame jitter of pan and tilt), object motion and moving share,
each ``sign * log1p(|1000 x|)`` so that slow and fast moves stay on one scale; then the share
of all motion that each of pan, tilt, zoom and rotation explains (the move that dominates,
whatever its speed). A clip whose frames carry no vectors (all intra frames, a one-frame
clip) gets zeros. Frames inside gradual transitions are left out, like for the CLIP
embedding. The descriptor is not L2-normalised: its size is the motion's speed.
"""
from __future__ import annotations

import numpy as np

__all__ = ["DECODER_OPTIONS", "DECODER_THREAD_TYPE", "ENCODER_ID", "MotionTrack"]

ENCODER_ID = "motion-v1"
DIM = 20
DECODER_OPTIONS = {"flags2": "+export_mvs"}
# No frame threading while vectors are exported: with frame threads FFmpeg's H.264 decoder (8.1)
# gives some B-frames a partial vector list or none, differently on every decode of the same file
# (their pixels are the same; the vectors are read from the frame's macroblock tables when it is
# output, apparently before its decoding thread has filled them all). With slice threads (or one)
# every decode gives the same vectors, field by field.
DECODER_THREAD_TYPE = "SLICE"
FEATURES = ("pan", "tilt", "zoom", "rotation", "object", "moving", "evidence")  # fit_frames' columns


# FFmpeg's AVMotionVector, as PyAV's MotionVectors.to_ndarray reads it (which builds this dtype on
# every call, a large share of the cost, and returns a view that keeps the whole decoded frame alive).
VECTOR_DTYPE = np.dtype([("source", "int32"), ("w", "uint8"), ("h", "uint8"), ("src_x", "int16"),
                         ("src_y", "int16"), ("dst_x", "int16"), ("dst_y", "int16"), ("flags", "uint64"),
                         ("motion_x", "int32"), ("motion_y", "int32"), ("motion_scale", "uint16")], align=True)


def frame_vectors(frame) -> np.ndarray | None:
    """The motion vectors FFmpeg exported for a decoded frame (a structured array of its own), None if none."""
    from av.sidedata.motionvectors import MotionVectors

    vectors = next((sd for sd in frame.side_data if isinstance(sd, MotionVectors)), None)
    if vectors is None or len(vectors) == 0:
        return None
    return np.frombuffer(bytes(vectors), dtype=VECTOR_DTYPE)


def fit_frames(vectors: list[np.ndarray], width: int, height: int, steps=None) -> np.ndarray:
    """(n, 7) pan, tilt, zoom, rotation, object, moving, evidence of n frames' vectors, fitted at once.

    ``vectors``: :func:`frame_vectors` arrays; ``steps``: of frame i only every ``steps[i]``-th
    vector counts (default: all). The per-frame weighted least squares are solved from their
    normal equations, summed per frame with ``reduceat``: a few dozen array operations
    for any number of frames instead of as many per frame (per-frame fits cost more than
    decoding small videos). The frames' arrays are joined as plain bytes and their fields read
    as strided columns: copying FFmpeg's structured records field by field cost more than the fit.
    """
    n = len(vectors)
    given = np.fromiter((len(v) for v in vectors), dtype=np.int64, count=n)
    steps = np.ones(n, dtype=np.int64) if steps is None else np.asarray(steps, dtype=np.int64)
    counts = -(-given // steps)
    starts = np.cumsum(counts) - counts
    mv = np.concatenate([np.ascontiguousarray(v).view(np.uint8) for v in vectors]).view(vectors[0].dtype)
    if (steps > 1).any():
        local = np.arange(counts.sum()) - np.repeat(starts, counts)
        mv = mv[np.repeat(np.cumsum(given) - given, counts) + local * np.repeat(steps, counts)]
    f32 = np.float32
    scale = np.maximum(mv["motion_scale"], 1).astype(np.float64)
    scale *= width
    # FFmpeg gives src = dst + motion / scale; a past reference's content moved by minus that.
    scale[mv["source"] < 0] *= -1
    u = mv["motion_x"] / scale
    v = mv["motion_y"] / scale
    x = mv["dst_x"].astype(f32)
    x -= f32(width / 2)
    x /= f32(width)
    y = mv["dst_y"].astype(f32)
    y -= f32(height / 2)
    y /= f32(width)
    w = mv["w"].astype(f32)
    w *= mv["h"]
    # The normal equations' terms of every block, once: a weighted solve is then one product
    # and one reduceat (a frame's blocks are contiguous).
    basis = np.empty((len(mv), 12))  # float64: a nearly singular frame (blocks on a line) needs it
    basis[:, 0] = 1
    for col, (p, q) in enumerate(((x, None), (y, None), (x, x), (x, y), (y, y), (u, None), (u, x), (u, y),
                                  (v, None), (v, x), (v, y)), start=1):
        if q is None:
            basis[:, col] = p
        else:
            np.multiply(p, q, out=basis[:, col])
    ridge = np.eye(3) * 1e-9  # a frame whose blocks all sit on one line stays solvable

    def solve(weight):
        sums = np.add.reduceat(basis * weight[:, None], starts, axis=0)
        normal = sums[:, [0, 1, 2, 1, 3, 4, 2, 4, 5]].reshape(n, 3, 3) + ridge
        ab = np.linalg.solve(normal, sums[:, 6:].reshape(n, 2, 3).transpose(0, 2, 1))  # (n, 3, 2): a, b
        per = np.repeat(ab.reshape(n, 6), counts, axis=0)  # a0 b0 a1 b1 a2 b2 of each block's frame
        ru = u - per[:, 0]
        ru -= per[:, 2] * x
        ru -= per[:, 4] * y
        rv = v - per[:, 1]
        rv -= per[:, 3] * x
        rv -= per[:, 5] * y
        return ab[..., 0], ab[..., 1], np.hypot(ru, rv)

    def total(values):
        return np.add.reduceat(values, starts)

    a, b, res = solve(w)
    area = np.maximum(total(w), 1e-12)
    # Refit without the blocks that move on their own (objects): far from the first fit.
    mean_res = total(w * res) / area
    keep = res <= np.maximum(2.5 * np.repeat(mean_res, counts), 0.5 / width)
    a, b, res = solve(w * keep)
    moving = total(w * (np.hypot(u, v) * width > 0.5)) / area
    unexplained = total(w * res) / area
    # Bi-predicted blocks carry two vectors each, so the covered area can exceed the frame's.
    evidence = np.minimum(area * steps / (width * height), 1.0)
    return np.column_stack([a[:, 0], b[:, 0], (a[:, 1] + b[:, 2]) / 2, (b[:, 1] - a[:, 2]) / 2, unexplained, moving,
                            evidence])


class MotionTrack:
    """The camera motion of one clip in progress: vectors kept for at most ``chunk`` frames, then fitted.

    Every ``every``-th frame is fitted, on at most ``max_vectors`` of its vectors (evenly
    spread): a global motion is over-determined by a few hundred blocks, and this keeps the
    cost a small share of decoding at any frame size.
    """

    def __init__(self, chunk: int = 64, every: int = 2, max_vectors: int = 256):
        self.chunk, self.every, self.max_vectors = chunk, every, max_vectors
        self._pending: list[np.ndarray] = []
        self._steps: list[int] = []  # of each pending frame, every steps-th vector is fitted
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
        size = (frame.width, frame.height)
        if self._pending and size != self._size:
            self._flush()
        self._size = size
        self._pending.append(vectors)
        self._steps.append(-(-len(vectors) // self.max_vectors))
        if len(self._pending) >= self.chunk:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._fitted.append(fit_frames(self._pending, *self._size, steps=self._steps))
            self._pending, self._steps = [], []

    def descriptor(self) -> np.ndarray:
        self._flush()
        return descriptor(list(np.concatenate(self._fitted))) if self._fitted else descriptor([])


def frame_motion(frame) -> np.ndarray | None:
    """:data:`FEATURES` of one decoded frame, None if it has no vectors."""
    vectors = frame_vectors(frame)
    return None if vectors is None else fit_frames([vectors], frame.width, frame.height)[0]


def descriptor(frames: list[np.ndarray]) -> np.ndarray:
    """The clip's :data:`DIM`-number motion descriptor from its frames' :func:`frame_motion` values."""
    if not frames:
        return np.zeros(DIM, dtype=np.float32)
    p = np.stack(frames)
    glob, evidence = p[:, :4], p[:, 6]
    mean = np.average(glob, axis=0, weights=evidence)
    # A step between two frames is as reliable as the weaker of them.
    jitter = (np.average(np.abs(np.diff(p[:, :2], axis=0)), axis=0,
                         weights=np.minimum(evidence[1:], evidence[:-1])) if len(p) > 1 else np.zeros(2))
    others = np.average(p[:, 4:6], axis=0, weights=evidence)  # object motion, moving share
    raw = np.concatenate([mean, np.abs(mean), np.average(np.abs(glob), axis=0, weights=evidence), jitter, others])
    # Which move dominates, whatever its speed: the decoder's vectors span 1 to 4 frames
    # (B-frames), so their size is only known up to that factor; their proportions are not.
    share = np.abs(mean) / (np.abs(mean).sum() + others[0] + 1e-6)
    return np.concatenate([np.sign(raw) * np.log1p(np.abs(1000 * raw)), 4 * share]).astype(np.float32)
