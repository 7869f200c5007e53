"""Video files: identity, probing, shot detection and frame sampling (PyAV).

Shots are found by a content detector in the spirit of PySceneDetect's: every decoded
frame is shrunk to 64x36 YUV, and a frame starts a new shot when its mean absolute
difference to the previous frame is both large in absolute terms and several times the
recent average (so fast camera motion, which raises every difference, does not cut).
Dissolves and fades through black or white are found from the same thumbnails
(:class:`TransitionDetector`); two shots joined by one meet at its middle frame, and its
frames are never sampled. A fade at the very start or end of a video (no shot on that side)
makes no boundary; its frames are not sampled either.

:func:`scan` does everything ingestion needs in one decoding pass: it detects the cuts
and keeps the sampled frames of the shot in progress, yielding each shot with its frames
as soon as the next cut (or the end) closes it. :func:`sample_frames` takes known shots
and seeks to the frames it needs, for re-encoding a video whose shots are already known.

Frame sampling rule (both paths): frames at 0.5 s, 1.5 s, 2.5 s ... into the shot
(1 per second; while scanning, the first frame at or after each time that is not inside a
transition); a shot shorter than half a second gets its middle frame; a shot with more
than ``max_frames`` such frames keeps ``max_frames`` of them, evenly spread.
"""
from __future__ import annotations

import hashlib
import queue
import re
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from va_core.errors import InputError

__all__ = ["Shot", "Transition", "canonical_uri", "content_hash", "find_videos", "probe", "put_until_stopped",
           "sample_frames", "scan", "video_id_for"]

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".3gp")
MAX_FRAMES = 12
SAMPLE_EVERY_S = 1.0
FIRST_SAMPLE_S = 0.5


# -- identity -----------------------------------------------------------------
def canonical_uri(path) -> str:
    """The URI a video is known by: an absolute local path, or a remote URI unchanged."""
    text = str(path)
    if "://" in text and not text.startswith("file://"):
        return text
    return str(Path(text.removeprefix("file://")).expanduser().resolve())


def video_id_for(path) -> str:
    """``{file stem, slugged}-{10 hex of sha256(uri)}``: readable, stable while the file stays put.

    The id follows the file's location, not its bytes: a file whose content changes keeps
    its id (ingestion replaces its rows), two copies of one file are two videos.
    """
    uri = canonical_uri(path)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(uri.rstrip("/")).stem).strip("-.")[:40] or "video"
    return f"{stem}-{hashlib.sha256(uri.encode()).hexdigest()[:10]}"


def content_hash(path, block: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            h.update(chunk)
    return h.hexdigest()


# -- probing ------------------------------------------------------------------
@dataclass(frozen=True)
class VideoInfo:
    duration_s: float
    fps: float
    width: int
    height: int
    n_frames: int  # from the container; an estimate for some formats, exact after a scan
    codec: str
    declared_frames: int = 0  # the frame count the container states (0: it states none)


def _open(path):
    """Open a file with PyAV, turning every way it can fail into an InputError that says why."""
    import av

    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    if p.is_dir():
        raise InputError(f"{path}: is a folder, not a video file")
    if p.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(str(p), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable video ({exc})") from exc
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        container.close()
        raise InputError(f"{path}: no video stream (it has: {', '.join(kinds)})")
    return container


def _info(container) -> VideoInfo:
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    else:
        duration = 0.0
    n = stream.frames or int(round(duration * fps))
    ctx = stream.codec_context
    return VideoInfo(duration, fps, int(ctx.width or 0), int(ctx.height or 0), int(n), ctx.name or "",
                     int(stream.frames or 0))


def probe(path) -> VideoInfo:
    """Duration, frame rate, size and frame count of anything PyAV opens (InputError otherwise)."""
    container = _open(path)
    try:
        info = _info(container)
        if info.width <= 0 or info.height <= 0:
            raise InputError(f"{path}: its video stream has no frame size")
        return info
    finally:
        container.close()


# -- shots --------------------------------------------------------------------
@dataclass(frozen=True)
class Shot:
    frame_in: int
    frame_out: int  # inclusive
    start_s: float
    end_s: float

    @property
    def n_frames(self) -> int:
        return self.frame_out - self.frame_in + 1


@dataclass
class CutDetector:
    """Causal content-change cut detector over 64x36 YUV thumbnails.

    ``threshold``: minimum mean absolute YUV difference (0..255 scale) of a cut.
    ``ratio``: a cut's difference must also exceed ``ratio`` times the mean of the last
    ``window`` differences inside the shot. ``min_shot_s``: no cut closer than this to the last.
    """

    threshold: float = 14.0
    ratio: float = 3.0
    window: int = 8
    min_shot_s: float = 0.3
    _prev: np.ndarray | None = field(default=None, repr=False)
    _recent: list = field(default_factory=list, repr=False)
    last_score: float = field(default=0.0, repr=False)
    _reformatter: object = field(default=None, repr=False)

    def reset(self) -> None:
        self._prev, self._recent = None, []

    def thumbnail(self, frame) -> np.ndarray:
        if self._reformatter is None:
            self._reformatter = _reformatter()
        small = self._reformatter.reformat(frame, width=64, height=36, format="yuv444p", interpolation="AREA")
        return small.to_ndarray().astype(np.int16)

    def score(self, thumb: np.ndarray) -> float:
        if self._prev is None:
            return 0.0
        diff = np.abs(thumb - self._prev)
        # Colour planes count double: a cut usually changes hue, camera motion mostly luma.
        return float(diff[0].mean() + 2.0 * diff[1].mean() + 2.0 * diff[2].mean()) / 2.5

    def is_cut(self, thumb: np.ndarray, frames_since_cut: int, fps: float) -> bool:
        """Feed the next frame's thumbnail; True if it starts a new shot (``last_score``: its score)."""
        s = self.last_score = self.score(thumb)
        self._prev = thumb
        if not self._recent and frames_since_cut == 0:
            return False
        baseline = float(np.mean(self._recent)) if self._recent else 0.0
        cut = (s >= self.threshold and s >= self.ratio * baseline
               and frames_since_cut >= max(1, round(self.min_shot_s * fps)))
        if cut:
            self._recent = []
        else:
            self._recent.append(s)
            del self._recent[:-self.window]
        return cut


@dataclass(frozen=True)
class Transition:
    """A boundary between two shots: a hard cut (``frame_start == frame_end``, the new shot's first
    frame) or a gradual one (dissolve, fade through black or white) spanning its frames, inclusive."""

    kind: str  # cut | dissolve | fade_black | fade_white
    frame_start: int
    frame_end: int
    start_s: float
    end_s: float

    @property
    def boundary(self) -> int:
        """The first frame of the shot after it: a cut's own frame, a gradual transition's middle."""
        return self.frame_start if self.kind == "cut" else (self.frame_start + self.frame_end + 1) // 2


_PLANE_WEIGHTS = np.array([1.0, 2.0, 2.0], dtype=np.float32) / 5.0  # the cut score's weighting


def _weighted(thumb: np.ndarray) -> np.ndarray:
    """A thumbnail flattened and weighted so that :func:`_distance` is one subtraction and a sum."""
    return (thumb.reshape(3, -1).astype(np.float32) * (_PLANE_WEIGHTS[:, None] / (thumb[0].size))).ravel()


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """Half the cut score: plane-weighted mean absolute difference of two :func:`_weighted` thumbnails."""
    return float(np.abs(a - b).sum())


@dataclass
class TransitionDetector:
    """Gradual transitions from the same thumbnails as the cuts, decided a few frames late.

    Inside a dissolve or a fade every frame is a blend of its neighbours: frame ``c`` is close to
    the mean of frames ``c - k`` and ``c + k`` although those two differ. Camera and object
    motion do not blend (a moving edge is not the average of two shifted edges), and a hard cut
    is as far from that mean as half the cut. A run of such blend frames (a flat black or white
    frame counts as one) is then checked as a whole: its ends must differ like two shots do,
    and each frame must fit the straight line between the frames before and after it (for a
    fade, each half between a shot and the flat frame), its position along the line growing.

    ``blend``: largest residual, as a share of the change from ``c - k`` to ``c + k``.
    ``min_change``: smallest such change (below it the residual is noise). ``min_total``: the
    smallest difference between the shots on either side. ``max_frames``: longer runs are motion.

    The blend test runs ``block`` frames at a time on the int16 thumbnails, in a window the
    thumbnails are copied into as they come: a few whole-array operations per block (exact
    integer sums, weighted per plane at the end) instead of a dozen small numpy calls and a
    float copy per frame, which cost as much CPU as making the frame's thumbnail.
    """

    k: int = 2
    blend: float = 0.3
    min_change: float = 2.0
    min_total: float = 10.0
    fit: float = 0.3
    max_frames: int = 40
    gap: int = 1
    block: int = 16
    # frame index -> (time, thumbnail, brightness if flat else None)
    _ring: dict = field(default_factory=dict, repr=False)
    # the last 2k tested frames, then the frames waiting to be tested as centres (_filled of them)
    _window: np.ndarray | None = field(default=None, repr=False)
    _filled: int = field(default=0, repr=False)
    _run: list | None = field(default=None, repr=False)  # [first, last] blend frame of the open run
    _last: int = field(default=-1, repr=False)  # the last frame tested (as the c + k of a centre)

    def reset(self) -> None:
        self._ring, self._window, self._filled, self._run, self._last = {}, None, 0, None, -1

    def push(self, index: int, t: float, thumb: np.ndarray) -> list[Transition]:
        """Feed frame ``index`` (consecutive from 0); returns the transitions it confirms (most often none)."""
        if self._window is None:
            self._window = np.empty((2 * self.k + self.block, *thumb.shape), dtype=np.int16)
        self._window[self._filled] = thumb
        self._filled += 1
        self._ring[index] = (t, thumb, None)
        return self._test(index) if self._filled == len(self._window) else []

    def finish(self) -> list[Transition]:
        """The end of the video: the frames not yet tested, then a run still open there, judged
        with what is known."""
        found = self._test(max(self._ring, default=-1)) if self._filled > min(2 * self.k, self._last + 1) else []
        run, self._run = self._run, None
        if run is not None and run[1] + 1 in self._ring:
            found.append(self._judge(*run))
        return [f for f in found if f is not None]

    @property
    def settled(self) -> int:
        """Frames up to this index will never join a transition that is not yet reported."""
        # A run can still start at the next centre, and a cut up to k frames before a run joins it.
        horizon = self._last - 2 * self.k - self.gap - 1
        return min(horizon, self._run[0] - self.k - 1) if self._run else horizon

    @staticmethod
    def _flat(thumbs: np.ndarray) -> np.ndarray:
        """Which of the (n, 3, h, w) thumbnails are flat black, white or grey frames."""
        n = len(thumbs)
        # every other pixel of luma first: a quarter of the work decides for nearly every frame
        flat = thumbs[:, 0, ::2, ::2].reshape(n, -1).std(axis=1) < 2.5
        for j in np.flatnonzero(flat):
            flat[j] = thumbs[j, 0].std() < 2.5 and thumbs[j, 1].std() < 2.0 and thumbs[j, 2].std() < 2.0
        return flat

    def _test(self, last: int) -> list[Transition]:
        """Test every frame whose c + k has come as the centre of a blend, then follow the runs in order."""
        k, w, filled = self.k, self._window, self._filled
        first = last - filled + 1  # the frame in the window's first row
        held = min(2 * k, self._last + 1)  # rows already tested as new frames (the previous tail)
        new = w[held:filled]
        flat = self._flat(new)
        for j in np.flatnonzero(flat):
            i = first + held + j
            self._ring[i] = (*self._ring[i][:2], float(new[j, 0].mean()))  # a flat frame's brightness
        found = []
        m = filled - 2 * k  # centres with both neighbours in the window
        if m > 0:
            flat_all = np.array([self._ring[first + p][2] is not None for p in range(k, k + m)])
            before, here, after = w[:m], w[k:k + m], w[2 * k:filled]
            d = after - before
            np.abs(d, out=d)
            change = d.reshape(m, 3, -1).sum(axis=2, dtype=np.int64) @ self._weights(w)
            r = here * 2
            r -= after
            r -= before
            np.abs(r, out=r)  # twice the distance to the mean of the neighbours (|2h - a - b| <= 1020)
            residual = r.reshape(m, 3, -1).sum(axis=2, dtype=np.int64) @ self._weights(w) / 2
            blend = flat_all | ((change > self.min_change) & (residual < self.blend * change))
            for c, is_blend in zip(range(first + k, first + k + m), blend.tolist()):
                if is_blend:
                    if self._run is None:
                        self._run = [c, c]
                    else:
                        self._run[1] = c
                    if self._run[1] - self._run[0] + 1 > self.max_frames:
                        self._run = None  # too long for a transition: sustained motion
                elif self._run is not None and c - self._run[1] > self.gap:
                    found.append(self._judge(*self._run))
                    self._run = None
        self._last = last
        tail = min(2 * k, filled)
        w[:tail] = w[filled - tail:filled]
        self._filled = tail
        keep = min(last - 2 * k - self.gap - 2, self._run[0] - 2) if self._run else last - 2 * k - 2
        for i in [i for i in self._ring if i < keep]:
            del self._ring[i]
        return [f for f in found if f is not None]

    @staticmethod
    def _weights(window: np.ndarray) -> np.ndarray:
        """Per-plane weights turning a thumbnail's summed absolute differences into :func:`_distance`."""
        return _PLANE_WEIGHTS.astype(np.float64) / (window.shape[2] * window.shape[3])

    def _judge(self, s: int, e: int) -> Transition | None:
        ring = self._ring
        if e - s < 1 or s - 1 not in ring or e + 1 not in ring:
            return None
        flats = [i for i in range(s, e + 1) if ring[i][2] is not None]
        before, after = _weighted(ring[s - 1][1]), _weighted(ring[e + 1][1])
        if _distance(before, after) < self.min_total:
            return None
        if flats:  # a fade: out of one shot to the flat colour, then in from it
            middle = ring[flats[len(flats) // 2]]
            flat = _weighted(middle[1])
            fade_out, fade_in = range(s, flats[0]), range(flats[-1] + 1, e + 1)
            if not (self._fits(before, flat, fade_out) and self._fits(flat, after, fade_in)):
                return None
            kind = "fade_black" if middle[2] < 128 else "fade_white"
        elif self._fits(before, after, range(s, e + 1)):
            kind = "dissolve"
        else:
            return None
        return Transition(kind, s, e, ring[s][0], ring[e][0])

    def _fits(self, a: np.ndarray, b: np.ndarray, span: range) -> bool:
        """Frames of ``span`` lie on the line from ``a`` to ``b``, moving along it."""
        if len(span) == 0:
            return True
        d = b - a
        norm = float(d @ d)
        total = _distance(a, b)
        if norm <= 0 or total < self.min_total / 2:
            return False
        alphas, misfit = [], 0.0
        for i in span:
            f = _weighted(self._ring[i][1])
            alpha = float((f - a) @ d) / norm
            alphas.append(alpha)
            misfit = max(misfit, _distance(f, a + alpha * (b - a)))
        steps = np.diff([0.0, *alphas, 1.0])
        return misfit < self.fit * total and bool((steps > -0.05).all()) and -0.1 < alphas[0] and alphas[-1] < 1.1


def sample_offsets(duration_s: float, max_frames: int = MAX_FRAMES) -> np.ndarray:
    """Seconds into a shot of the frames to sample (the rule in the module docstring)."""
    grid = np.arange(FIRST_SAMPLE_S, duration_s, SAMPLE_EVERY_S)
    if len(grid) == 0:
        return np.array([duration_s / 2])
    return grid[_spread(len(grid), max_frames)]


def _spread(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))


def _reformatter():
    """A PyAV reformatter that keeps its scaling context between frames of one size.

    ``VideoFrame.reformat`` builds a new context per call, which costs 20 times the scaling.
    """
    from av.video.reformatter import VideoReformatter

    return VideoReformatter()


RESIZE_MODES = ("shortest", "longest", "squash")


@dataclass(frozen=True)
class FrameFit:
    """How a decoded frame becomes the square an encoder is fed, as the encoder's preprocessing
    says (``va_core.encoders.Encoder.frame_fit``): ``shortest`` scales the shorter side and
    centre-crops; ``squash`` scales straight to the square, aspect not kept; ``longest`` scales
    the longer side and pads with the grey level ``fill``, centred. The encoder's own resize
    then leaves the square as it is."""

    resize_mode: str = "shortest"
    fill: int = 0

    def __post_init__(self):
        if self.resize_mode not in RESIZE_MODES:
            raise InputError(f"resize_mode {self.resize_mode!r} is not one of {', '.join(RESIZE_MODES)}")
        if not 0 <= self.fill <= 255:
            raise InputError(f"fill colour {self.fill} is not a grey level 0..255")


SHORTEST = FrameFit()


def to_rgb(frame, size: int, reformatter=None, fit: FrameFit = SHORTEST) -> np.ndarray:
    """A decoded frame as (size, size, 3) uint8 RGB, fitted to the square as ``fit`` says."""
    w, h = frame.width, frame.height
    reformat = (reformatter or _reformatter()).reformat
    if fit.resize_mode == "squash":
        return np.ascontiguousarray(reformat(frame, width=size, height=size, format="rgb24",
                                             interpolation="BICUBIC").to_ndarray())
    if fit.resize_mode == "longest":
        # rounded as open_clip's ResizeKeepRatio rounds, padded as its CenterCropOrPad pads
        ratio = max(w, h) / size
        nw, nh = max(1, round(w / ratio)), max(1, round(h / ratio))
        rgb = reformat(frame, width=nw, height=nh, format="rgb24", interpolation="BICUBIC").to_ndarray()
        out = np.full((size, size, 3), fit.fill, np.uint8)
        top, left = (size - nh) // 2, (size - nw) // 2
        out[top:top + nh, left:left + nw] = rgb
        return out
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    rgb = reformat(frame, width=nw, height=nh, format="rgb24", interpolation="BICUBIC").to_ndarray()
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(rgb[top:top + size, left:left + size])


@dataclass
class ShotFrames:
    """One shot and its sampled frames (k, size, size, 3), k in 1..max_frames."""

    shot: Shot
    frames: np.ndarray
    times: list[float]
    motion: np.ndarray | None = None  # the camera-motion descriptor (va_core.motion), when asked for


class _ShotSampler:
    """Keeps the sampled frames of the shot in progress with bounded memory."""

    def __init__(self, size: int, max_frames: int, motion: bool = False, fit: FrameFit = SHORTEST):
        self.size, self.max_frames, self.with_motion, self.fit = size, max_frames, motion, fit
        self.reformatter = _reformatter()
        self.start(0, 0.0)

    def start(self, frame_in: int, t0: float) -> None:
        self.frame_in, self.t0 = frame_in, t0
        self.kept: list[tuple[float, np.ndarray]] = []
        self.early: list = []  # decoded frames before the first sample time (for very short shots)
        self.skipped: list = []  # transition frames, the last resort of a shot that has nothing else
        self.motion = None  # the shot's camera motion (va_core.motion.MotionTrack), when asked for
        if self.with_motion:
            from va_core.motion import MotionTrack

            self.motion = MotionTrack()
        self.next_offset, self.step = FIRST_SAMPLE_S, SAMPLE_EVERY_S

    def offer(self, frame, t: float, skip: bool = False) -> None:
        """The next decoded frame of the shot; ``skip``: a transition frame, never sampled."""
        offset = t - self.t0
        if self.motion is not None and not skip:
            self.motion.add(frame)
        if skip:
            if not self.kept and not self.early and len(self.skipped) < 64:
                self.skipped.append((t, frame))
            return
        if offset + 1e-6 < self.next_offset:
            if not self.kept:
                self.early.append((t, frame))
            return
        self.kept.append((t, to_rgb(frame, self.size, self.reformatter, self.fit)))
        self.early = []
        while self.next_offset <= offset + 1e-6:
            self.next_offset += self.step
        if len(self.kept) > 2 * self.max_frames:
            # A long shot: keep every other sample and sample half as often from now on.
            self.kept = self.kept[::2]
            self.step *= 2
            self.next_offset = self.kept[-1][0] - self.t0 + self.step

    def close(self, frame_out: int, end_s: float) -> ShotFrames:
        shot = Shot(self.frame_in, frame_out, self.t0, end_s)
        if self.kept:
            chosen = [self.kept[i] for i in _spread(len(self.kept), self.max_frames)]
        else:  # shorter than the first sample time: its middle frame, as sample_offsets says
            middle = self.t0 + float(sample_offsets(end_s - self.t0, self.max_frames)[0])
            pool = self.early or self.skipped  # a shot made only of transition frames still gets one
            t, frame = next((e for e in pool if e[0] >= middle - 1e-6), pool[-1])
            chosen = [(t, to_rgb(frame, self.size, self.reformatter, self.fit))]
        motion = self.motion.descriptor() if self.motion is not None else None
        return ShotFrames(shot, np.stack([c[1] for c in chosen]), [c[0] for c in chosen], motion)


def _short(info: VideoInfo, decoded: int) -> bool:
    """Fewer frames decoded than the container lists (beyond its rounding)."""
    return bool(info.declared_frames) and decoded < 0.98 * info.declared_frames - 2


_DECODED = object()  # the end of a stream decoded ahead


def put_until_stopped(out: queue.Queue, item, stop: threading.Event, poll_s: float) -> bool:
    """Put ``item`` into a bounded queue, waiting while it is full, unless ``stop`` is set first
    (False then): a producer thread whose consumer has gone must not block for ever."""
    while not stop.is_set():
        try:
            out.put(item, timeout=poll_s)
            return True
        except queue.Full:
            continue
    return False


def _decoded_ahead(container, stream, depth: int = 16) -> Iterator:
    """The stream's frames, decoded by a thread of its own up to ``depth`` frames ahead.

    Without frame threads (motion vectors) FFmpeg decodes in the calling thread; PyAV lets go
    of the GIL while it decodes, so a thread of its own overlaps decoding with the scan's
    detection and fits, as frame threads did. Decoding errors are raised here, in order. The
    caller must close this generator before the container (it stops and joins the thread).
    """
    ahead: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(item) -> bool:
        return put_until_stopped(ahead, item, stop, 0.05)

    def decode() -> None:
        try:
            for frame in container.decode(stream):
                if not put(frame):
                    return
            put(_DECODED)
        except BaseException as exc:  # handed to the scan, which raises it where the frame would be
            put(exc)

    worker = threading.Thread(target=decode, name="va-decode-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = ahead.get()
            if item is _DECODED:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


@dataclass
class Scan:
    """Result of :func:`scan`: ``info`` now, ``shots`` as they are decoded."""

    info: VideoInfo
    shots: Iterator[ShotFrames]
    n_decoded: int = 0
    transitions: list[Transition] = field(default_factory=list)  # complete once ``shots`` is exhausted


def scan(path, size: int, max_frames: int = MAX_FRAMES, detector: CutDetector | None = None,
         decode_threads: int = 0, transitions: TransitionDetector | None = None, gradual: bool = True,
         motion: bool = False, fit: FrameFit = SHORTEST) -> Scan:
    """Open a video and return its info and a generator of its shots with sampled frames.

    One decoding pass; shots are yielded as soon as the next cut is seen. Decoding errors
    mid-file raise InputError naming the frame. ``decode_threads``: FFmpeg's decoding
    threads (0: as many as it likes). ``gradual``: also find dissolves and fades (else cuts
    only). ``motion``: each shot carries its camera-motion descriptor (the decoder exports its
    motion vectors, with slice threads only: ``va_core.motion.DECODER_THREAD_TYPE`` says why;
    decoding then runs in a thread of its own). ``fit``: how frames become ``size`` x ``size``
    squares (the encoder's).
    """
    import av

    container = _open(path)
    try:
        info = _info(container)
    except Exception:
        container.close()
        raise
    detector = detector or CutDetector()
    detector.reset()
    tracker = (transitions or TransitionDetector()) if gradual else None
    result = Scan(info, iter(()))

    def shots() -> Iterator[ShotFrames]:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = decode_threads
        fps = info.fps or 25.0
        if motion:
            from va_core import motion as camera

            stream.thread_type = camera.DECODER_THREAD_TYPE
            stream.codec_context.options = {**stream.codec_context.options, **camera.DECODER_OPTIONS}
        sampler = _ShotSampler(size, max_frames, motion, fit)
        if tracker is not None:
            tracker.reset()
        boundaries: dict[int, Transition] = {}  # first frame of a shot -> the transition before it
        skip: set[int] = set()  # frames inside gradual transitions
        held: deque = deque()  # decoded frames waiting for the transitions around them to be decided
        index, last_t, step, last_cut = -1, 0.0, 1.0 / fps, 0

        def confirm(found: Transition, at_end: bool = False) -> None:
            # A fade in at the very start (less than a shot's shortest length before it) or a run
            # still open at the end has no shot on one side: no boundary (it would cut off a clip
            # of fading frames), only frames that are never sampled.
            first = 0 if found.frame_start < max(1, round(detector.min_shot_s * fps)) else None
            if first is not None or at_end:
                for i in [i for i in boundaries if (first if first is not None else found.frame_start - tracker.k)
                          <= i <= (index if at_end else found.frame_end + 1)]:
                    del boundaries[i]
                skip.update(range(found.frame_start if first is None else first,
                                  index + 1 if at_end else found.frame_end + 1))
                return
            # A cut inside a fade or dissolve is part of it; a short one's first frame can look like a
            # cut (it is a blend of the shot and the next frame), so a cut just before it starts it.
            inside = [i for i in boundaries if found.frame_start - tracker.k <= i <= found.frame_end + 1]
            for i in inside:
                del boundaries[i]
            if inside and min(inside) < found.frame_start:
                found = replace(found, frame_start=min(inside), start_s=float(held_time(min(inside))))
            boundaries[found.boundary] = found
            skip.update(range(found.frame_start, found.frame_end + 1))

        def held_time(i: int) -> float:
            return next(t for j, t, _ in held if j == i)

        def release(upto: int) -> Iterator[ShotFrames]:
            while held and held[0][0] <= upto:
                i, t, frame = held.popleft()
                if i == 0:
                    sampler.start(0, t)
                elif i in boundaries:
                    result.transitions.append(boundaries.pop(i))
                    yield sampler.close(i - 1, t)
                    sampler.start(i, t)
                sampler.offer(frame, t, skip=i in skip)
                skip.discard(i)

        # Frame threads decode ahead by themselves; without them (motion) a thread of its own does.
        frames = _decoded_ahead(container, stream) if motion else container.decode(stream)
        try:
            for frame in frames:
                index += 1
                t = float(frame.time) if frame.time is not None else index / fps
                thumb = detector.thumbnail(frame)
                if detector.is_cut(thumb, index - last_cut, fps):
                    boundaries[index] = Transition("cut", index, index, t, t)
                    last_cut = index
                held.append((index, t, frame))
                if tracker is not None:
                    for found in tracker.push(index, t, thumb):
                        confirm(found)
                yield from release(tracker.settled if tracker is not None else index)
                last_t = t
                result.n_decoded = index + 1
            for found in tracker.finish() if tracker is not None else ():
                confirm(found, at_end=found.frame_end >= index - tracker.k - tracker.gap)
            yield from release(index)
        except av.error.FFmpegError as exc:
            if _short(info, index + 1):
                # Without frame threads (motion) a cut-off file's last packet fails to decode
                # instead of ending the stream quietly: from here it cannot be told from a corrupt one.
                raise InputError(f"{path}: truncated or corrupt: decoding failed after frame {index} of the "
                                 f"{info.declared_frames} frames its container lists: {exc}") from exc
            raise InputError(f"{path}: decoding failed after frame {index}: {exc}") from exc
        finally:
            frames.close()
            container.close()
        if index < 0:
            raise InputError(f"{path}: its video stream has no decodable frames")
        if _short(info, index + 1):
            # FFmpeg stops quietly at the end of a cut-off file; the container's index knows better.
            raise InputError(f"{path}: truncated: decoded {index + 1} of the {info.declared_frames} frames its "
                             "container lists")
        result.transitions.sort(key=lambda tr: tr.frame_start)
        yield sampler.close(index, last_t + step)

    result.shots = shots()
    return result


def detect_shots(path) -> list[Shot]:
    """Shot boundaries of a video (one decoding pass)."""
    return [s.shot for s in scan(path, size=8).shots]


def detect_transitions(path) -> list[Transition]:
    """Every cut and gradual transition between two shots of a video, in order (one decoding pass);
    a fade at the very start or end, with no shot on that side, is not one."""
    result = scan(path, size=8)
    for _ in result.shots:
        pass
    return result.transitions


def sample_frames(path, shots: list[Shot], size: int, max_frames: int = MAX_FRAMES,
                  seek_gap_s: float = 5.0, stats: dict | None = None,
                  transitions: list[Transition] | None = None, fit: FrameFit = SHORTEST) -> Iterator[ShotFrames]:
    """Sampled frames of known shots, seeking over gaps longer than ``seek_gap_s``.

    For shots already in the warehouse (a new encoder over an ingested corpus) this decodes
    a few frames per needed second instead of the whole video. ``stats`` (a dict) receives
    ``decoded`` and ``seeks`` counts. ``transitions``: the video's, whose frames are not sampled. ``fit``: as :func:`scan`'s.
    """
    gradual = [g for g in transitions or () if g.kind != "cut"]
    import av

    container = _open(path)
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    decoder, current = None, None  # current: (time, frame) last decoded
    reformatter = _reformatter()
    counts = stats if stats is not None else {}
    counts.update(decoded=0, seeks=0)

    def frame_at(target: float):
        nonlocal decoder, current
        if decoder is None or current is None or target - current[0] > seek_gap_s or target < current[0] - 1e-6:
            container.seek(int(max(0.0, target - start) / stream.time_base) + (stream.start_time or 0),
                           stream=stream, backward=True, any_frame=False)
            decoder, current = container.decode(stream), None
            counts["seeks"] += 1
        while current is None or current[0] + 1e-6 < target:
            try:
                frame = next(decoder)
            except StopIteration:
                break
            current = (float(frame.time), frame)
            counts["decoded"] += 1
        if current is None:
            raise InputError(f"{path}: no frame at {target:.2f} s")
        return current

    try:
        for shot in shots:
            times, frames = [], []
            for off in sample_offsets(shot.end_s - shot.start_s, max_frames):
                target = shot.start_s + float(off)
                inside = next((g for g in gradual if g.start_s - 1e-6 <= target <= g.end_s + 1e-6), None)
                if inside is not None:  # as the scan does: the first frame after the transition
                    target = inside.end_s + 1e-3
                    if target >= shot.end_s - 1e-6 or (times and target <= times[-1] + 1e-6):
                        continue
                t, frame = frame_at(target)
                times.append(t)
                frames.append(to_rgb(frame, size, reformatter, fit))
            if not frames:  # only transition frames: the middle one, as the scan does
                t, frame = frame_at(shot.start_s + float(sample_offsets(shot.end_s - shot.start_s, 1)[0]))
                times, frames = [t], [to_rgb(frame, size, reformatter, fit)]
            yield ShotFrames(shot, np.stack(frames), times)
    except av.error.FFmpegError as exc:
        raise InputError(f"{path}: decoding failed: {exc}") from exc
    finally:
        container.close()


def find_videos(paths) -> tuple[list[Path], list[str]]:
    """Files named on the command line plus video files (by suffix) found in folders.

    Returns (files, problems): a path that does not exist is a problem, not an exception,
    so one typo does not stop a batch.
    """
    files, problems, seen = [], [], set()
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES)
        elif p.exists():
            found = [p]
        else:
            problems.append(f"{raw}: no such file or folder")
            found = []
        for f in found:
            key = canonical_uri(f)
            if key not in seen:
                seen.add(key)
                files.append(Path(key))
    return files, problems
