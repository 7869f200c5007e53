"""Playable shots: each clip cut once from its video into a small mp4 cached under VA_HOME.

Clips are addressed by clip key only. The key is looked up in the ``clips`` and ``videos``
tables; the source path comes from the ``videos`` row and the cache file name is a hash
computed here, so nothing a browser sends ever becomes a file-system path.

A clip whose video is unavailable (an embeddings-only import, a failed or moved video,
a remote URI) has no player: :func:`clip_info` says why, and the UI shows its key and
metadata instead.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from va_core.errors import InputError, NotFound
from va_core.warehouse import Warehouse

__all__ = ["clip_file", "clip_infos"]

log = logging.getLogger(__name__)

MAX_SIDE = 480  # editors judge content, not pixels: small files start playing at once
CRF = 28
MAX_KEY_LENGTH = 512
CUT_FORMAT_VERSION = 2  # bump when the encoding changes so cached cuts are redone (2: with the source's sound)
AAC_RATES = (96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000)
AUDIO_BIT_RATE = 64_000  # per channel: speech and music stay clear, the file small


@dataclass(frozen=True)
class ClipInfo:
    clip_key: str
    video_id: str | None
    start_s: float | None
    end_s: float | None
    frame_in: int | None
    frame_out: int | None
    uri: str | None
    playable: bool
    reason: str | None  # why there is no player, for people
    # gradual transitions at the clip's ends: (kind, start, end) in seconds from the clip's start
    transitions: tuple = ()

    @property
    def duration_s(self) -> float | None:
        if self.start_s is None or self.end_s is None:
            return None
        return self.end_s - self.start_s

    def as_dict(self) -> dict:
        return {**asdict(self), "duration_s": self.duration_s}


def _check_key(clip_key) -> str:
    if not isinstance(clip_key, str) or not clip_key or len(clip_key) > MAX_KEY_LENGTH:
        raise InputError(f"a clip key is a non-empty string of at most {MAX_KEY_LENGTH} characters, got {clip_key!r}")
    if any(ord(c) < 32 for c in clip_key):
        raise InputError(f"clip key {clip_key[:40]!r} holds control characters")
    return clip_key


def _wh(settings) -> Warehouse:
    return Warehouse.from_settings(settings)


def clip_infos(settings, clip_keys: list[str]) -> dict[str, ClipInfo]:
    """Metadata and playability of many clips with two table reads (one per table)."""
    keys = sorted({_check_key(k) for k in clip_keys})
    if not keys:
        return {}
    wh = _wh(settings)
    clips = {r["clip_key"]: r for r in wh.arrow(
        "clips", columns=["clip_key", "video_id", "frame_in", "frame_out", "start_s", "end_s"],
        where={"clip_key": keys}).to_pylist()}
    video_ids = sorted({r["video_id"] for r in clips.values() if r["video_id"] is not None})
    videos = {}
    if video_ids:
        videos = {r["video_id"]: r for r in wh.arrow(
            "videos", columns=["video_id", "uri", "status"], where={"video_id": video_ids}).to_pylist()}
    gradual: dict[str, list[dict]] = {}
    if video_ids and wh.exists("transitions"):
        for r in wh.arrow("transitions", columns=["video_id", "kind", "frame_start", "frame_end", "start_s", "end_s"],
                          where={"video_id": video_ids}).to_pylist():
            if r["kind"] != "cut":
                gradual.setdefault(r["video_id"], []).append(r)
    embedded: set[str] = set()
    if len(clips) < len(keys):
        embedded = set(wh.arrow("clip_embeddings", columns=["clip_key"],
                                where={"clip_key": [k for k in keys if k not in clips]}).column("clip_key").to_pylist())
    out = {}
    for key in keys:
        clip = clips.get(key)
        if clip is None:
            why = "imported as embeddings only" if key in embedded else "unknown clip key"
            out[key] = ClipInfo(key, key.split("|", 1)[0] if "|" in key else None, None, None, None, None, None,
                                False, why)
            continue
        video = videos.get(clip["video_id"])
        uri = video["uri"] if video else None
        reason = None
        if video is None:
            reason = "no video row: imported as embeddings only"
        elif video["status"] != "ok":
            reason = f"video status is {video['status']!r}"
        elif not uri or "://" in uri and not uri.startswith("file://"):
            reason = f"video is not a local file ({uri})"
        elif not Path(_local(uri)).is_file():
            reason = f"video file is missing ({uri})"
        elif clip["start_s"] is None or clip["end_s"] is None:
            reason = "clip has no start and end times"
        marks = tuple((t["kind"], round(max(t["start_s"], clip["start_s"]) - clip["start_s"], 3),
                       round(min(t["end_s"], clip["end_s"]) - clip["start_s"], 3))
                      for t in gradual.get(clip["video_id"], [])
                      if clip["start_s"] is not None and t["frame_start"] <= clip["frame_out"]
                      and t["frame_end"] >= clip["frame_in"])
        out[key] = ClipInfo(key, clip["video_id"], clip["start_s"], clip["end_s"], clip["frame_in"],
                            clip["frame_out"], uri, reason is None, reason, marks)
    return out


def clip_info(settings, clip_key: str) -> ClipInfo:
    return clip_infos(settings, [clip_key])[clip_key]


def _local(uri: str) -> str:
    return uri[len("file://"):] if uri.startswith("file://") else uri


def cache_path(settings, info: ClipInfo) -> Path:
    """Where a clip's cut lives: a hash of what the cut depends on, never request text."""
    source = Path(_local(info.uri))
    stat = source.stat()
    digest = hashlib.sha256(
        f"{CUT_FORMAT_VERSION}\n{info.clip_key}\n{source.resolve()}\n{stat.st_size}\n{stat.st_mtime_ns}\n"
        f"{info.start_s!r}\n{info.end_s!r}".encode()
    ).hexdigest()[:40]
    return Path(settings.cache_dir) / "clips" / digest[:2] / f"{digest}.mp4"


_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def clip_file(settings, clip_key: str) -> Path:
    """The clip's own mp4 (H.264, at most 480 px, with the source's sound as AAC if it has any), cut on
    first use and cached.

    Raises NotFound when the clip has no playable video; the message says why.
    """
    info = clip_info(settings, clip_key)
    if not info.playable:
        raise NotFound(f"clip {clip_key!r} has no video to play: {info.reason}")
    path = cache_path(settings, info)
    if path.exists():
        return path
    with _lock_for(path):  # two viewers asking for one new clip cut it once
        if path.exists():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.mp4")
        try:
            cut(Path(_local(info.uri)), info.start_s, info.end_s, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


def _even(n: float) -> int:
    return max(2, int(round(n / 2)) * 2)


@dataclass(frozen=True)
class SourceAudio:
    """The decoded sound around a clip's span: planar float samples from ``start_s`` of the source."""

    samples: np.ndarray  # (channels, n) float32
    rate: int
    layout: str
    start_s: float

    def span(self, first: int, n: int) -> np.ndarray:
        """``n`` samples from sample ``first`` on, counted from ``start_s``; silence outside what was decoded."""
        out = np.zeros((self.samples.shape[0], n), np.float32)
        lo, hi = max(first, 0), min(first + n, self.samples.shape[1])
        if hi > lo:
            out[:, lo - first:hi - first] = self.samples[:, lo:hi]
        return out


def source_audio(source: Path, start_s: float, end_s: float) -> SourceAudio | None:
    """The first audio stream of ``source`` decoded over [start_s - 1, end_s + 1) s, or None without one.

    Mono stays mono, anything else becomes stereo; a rate AAC has no table for becomes 48 kHz.
    A sound that cannot be decoded is logged and the clip is cut without it: the picture is
    what the expert answers on.
    """
    import av

    with av.open(str(source)) as src:
        if not src.streams.audio:
            return None
        stream = src.streams.audio[0]
        channels = stream.codec_context.channels
        rate = stream.codec_context.sample_rate if stream.codec_context.sample_rate in AAC_RATES else 48_000
        layout = "mono" if channels == 1 else "stereo"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        chunks, first = [], None
        try:
            if start_s > 1.0 and stream.time_base:
                src.seek(int((start_s - 1.0) / stream.time_base), stream=stream, backward=True, any_frame=False)
            for frame in src.decode(stream):
                if frame.time is None:
                    continue
                if first is None:
                    first = frame.time
                chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
                if frame.time >= end_s + 1.0:
                    break
            chunks.extend(f.to_ndarray() for f in resampler.resample(None))
        except (av.error.FFmpegError, ValueError) as exc:  # ValueError: the layout changes mid-stream
            log.warning("%s: its sound could not be decoded (%s); the clip is cut without it", source.name, exc)
            return None
    if first is None or not chunks:
        return None
    return SourceAudio(np.concatenate(chunks, axis=1).astype(np.float32, copy=False), rate, layout, float(first))


def cut(source: Path, start_s: float, end_s: float, dest: Path, max_side: int = MAX_SIDE) -> int:
    """Re-encode the frames of [start_s, end_s) of ``source`` into ``dest``; returns the frame count.

    Seeks to the keyframe before ``start_s`` rather than decoding from the beginning. When
    the source has sound, the clip carries the same span of it (AAC), starting at the first
    frame kept and as long as the frames, interleaved with them.
    """
    import av

    if end_s <= start_s:
        raise InputError(f"clip span [{start_s}, {end_s}) of {source.name} is empty")
    sound = source_audio(source, start_s, end_s)
    with av.open(str(source)) as src:
        if not src.streams.video:
            raise NotFound(f"{source.name} has no video stream")
        stream = src.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        half = 0.5 / float(rate)
        if start_s > 0 and stream.time_base:
            src.seek(int(max(0.0, start_s - 1.0) / stream.time_base), stream=stream, backward=True, any_frame=False)
        scale = min(1.0, max_side / max(stream.codec_context.width, stream.codec_context.height))
        width, height = _even(stream.codec_context.width * scale), _even(stream.codec_context.height * scale)
        n = 0
        with av.open(str(dest), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
            enc = out.add_stream("libx264", rate=rate)
            enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
            enc.options = {"crf": str(CRF), "preset": "veryfast", "tune": "fastdecode"}
            track = _SoundTrack(out, sound) if sound is not None else None
            for frame in src.decode(stream):
                t = frame.time
                if t is None or t < start_s - half:
                    continue
                if t >= end_s - half:
                    break
                image = frame.reformat(width=width, height=height, format="yuv420p")
                image.pts = n
                image.time_base = Fraction(1) / rate
                for packet in enc.encode(image):
                    out.mux(packet)
                n += 1
                if track is not None:
                    if n == 1:
                        track.align(t)
                    track.until(n / rate)
            for packet in enc.encode(None):
                out.mux(packet)
            if track is not None:
                track.close()
    if n == 0:
        dest.unlink(missing_ok=True)
        raise NotFound(f"no frames of {source.name} fall in [{start_s:.3f}, {end_s:.3f}) s")
    return n


class _SoundTrack:
    """The clip's audio stream, written as far as the frames written so far."""

    def __init__(self, out, sound: SourceAudio):
        self.out, self.sound = out, sound
        self.stream = out.add_stream("aac", rate=sound.rate, layout=sound.layout, time_base=Fraction(1, sound.rate),
                                     bit_rate=AUDIO_BIT_RATE * (1 if sound.layout == "mono" else 2))
        self.offset = 0  # the source sample under the clip's first frame
        self.written = 0

    def align(self, first_frame_s: float) -> None:
        """The clip's sound starts under its first frame, at ``first_frame_s`` in the source."""
        self.offset = int(round((first_frame_s - self.sound.start_s) * self.sound.rate))

    def until(self, clip_s) -> None:
        """Write the samples up to ``clip_s`` seconds into the clip."""
        import av

        upto = int(round(float(clip_s) * self.sound.rate))
        if upto <= self.written:
            return
        frame = av.AudioFrame.from_ndarray(self.sound.span(self.offset + self.written, upto - self.written),
                                           format="fltp", layout=self.sound.layout)
        frame.sample_rate, frame.pts = self.sound.rate, self.written
        frame.time_base = Fraction(1, self.sound.rate)
        self.written = upto
        for packet in self.stream.encode(frame):
            self.out.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self.out.mux(packet)
