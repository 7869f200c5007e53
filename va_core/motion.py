"""Camera motion of a clip from the decoder's motion vectors: a small descriptor stored as an embedding.

H.264 and most other codecs already measure how every block moved since its reference frame;
FFmpeg exports those vectors when asked (``flags2=+export_mvs``), so the camera's motion costs a
least-squares fit per decoded frame and no extra image work. Per frame, the vectors are fitted
by a global similarity-plus-shear model ``u = a0 + a1 x + a2 y, v = b0 + b1 x + b2 y`` (x, y and
the vectors in frame widths, from the centre), refitted once without the worst-fitting blocks
(moving objects): pan ``a0``, tilt ``b0``, zoom ``(a1 + b2) / 2``, rotation ``(b1 - a2) / 2``,
what the model leaves unexplained (object motion) and the share of the frame that moves.

Per clip those frame values become :data:`DIM` numbers (``motion-v1``): the signed means and
their sizes for pan, tilt, zoom and rotation, the mean size per frame, shake (the frame-to-frame
jitter of pan and tilt), object motion and moving share, each ``sign * log1p(|1000 x|)`` so
that slow and fast moves stay on one scale; then the share of all motion that each of pan,
tilt, zoom and rotation explains (the move that dominates, whatever its speed). A clip whose frames carry no vectors (all intra
frames, a one-frame clip) gets zeros. Frames inside gradual transitions are left out, like
for the CLIP embedding. The descriptor is not L2-normalised: its size is the motion's speed.
"""
from __future__ import annotations

import numpy as np

ENCODER_ID = "motion-v1"
DIM = 20
DECODER_OPTIONS = {"flags2": "+export_mvs"}
FEATURES = ("pan", "tilt", "zoom", "rotation", "object", "moving")


def frame_motion(frame) -> np.ndarray | None:
    """(pan, tilt, zoom, rotation, object, moving) of one decoded frame, None if it has no vectors."""
    from av.sidedata.motionvectors import MotionVectors

    vectors = next((sd for sd in frame.side_data if isinstance(sd, MotionVectors)), None)
    if vectors is None or len(vectors) == 0:
        return None
    mv = vectors.to_ndarray()
    width, height = float(frame.width), float(frame.height)
    scale = np.maximum(mv["motion_scale"].astype(np.float64), 1.0)
    # FFmpeg gives src = dst + motion / scale; a past reference's content moved by minus that.
    sign = np.where(mv["source"] < 0, -1.0, 1.0)
    u = sign * mv["motion_x"] / scale / width
    v = sign * mv["motion_y"] / scale / width
    x = (mv["dst_x"] - width / 2) / width
    y = (mv["dst_y"] - height / 2) / width
    w = mv["w"].astype(np.float64) * mv["h"]
    design = np.column_stack([np.ones_like(x), x, y])
    keep = np.ones(len(u), dtype=bool)
    for _ in range(2):  # fit, then refit without the blocks that move on their own
        sw = np.sqrt(w[keep])[:, None]
        a = np.linalg.lstsq(design[keep] * sw, u[keep] * sw[:, 0], rcond=None)[0]
        b = np.linalg.lstsq(design[keep] * sw, v[keep] * sw[:, 0], rcond=None)[0]
        res = np.hypot(u - design @ a, v - design @ b)
        cut = max(3 * float(np.median(res[keep])), 0.5 / width)
        keep = res <= cut
        if keep.sum() < 3:
            keep = np.ones(len(u), dtype=bool)
            break
    moving = float(w[np.hypot(u, v) * width > 0.5].sum() / w.sum())
    unexplained = float((res * w).sum() / w.sum())
    return np.array([a[0], b[0], (a[1] + b[2]) / 2, (b[1] - a[2]) / 2, unexplained, moving])


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
