"""Broken and special video files for the core tests (real files, made by the tests)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.support.footage import video_only


def write_video(path, frames_yuv, fps=24, gop=None, options=None):
    """Write yuv420p frames (H*3/2, W) uint8 as H.264 with PyAV."""
    import av

    h = frames_yuv[0].shape[0] * 2 // 3
    w = frames_yuv[0].shape[1]
    with av.open(str(path), "w", format="mp4", options=options or {}) as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "threads": "1", **({"g": str(gop)} if gop else {})}
        for f in frames_yuv:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="yuv420p")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def flat_frames(n, h=64, w=64, level_of=lambda i: int(90 + 30 * np.sin(i / 150))):
    """n small grey frames whose brightness drifts slowly (no cuts)."""
    frames = []
    for i in range(n):
        f = np.full((h * 3 // 2, w), 128, np.uint8)
        f[:h] = level_of(i)
        f[:h, (i % w)] = 250  # a moving line so frames differ
        frames.append(f)
    return frames


@pytest.fixture(scope="session")
def long_video(tmp_path_factory):
    """One 100-second shot at 24 fps (2400 frames), a keyframe every 2 s."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    return write_video(path, flat_frames(2400), gop=48)


@pytest.fixture(scope="session")
def broken_dir(tmp_path_factory, sample_corpus_dir):
    """Files that are not usable videos, each in the way its name says, plus one good video."""
    import av

    d = tmp_path_factory.mktemp("broken")
    good = sample_corpus_dir / "sample_000.mp4"
    shutil.copy(good, d / "good.mp4")
    (d / "zero_bytes.mp4").write_bytes(b"")
    data = good.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: lost
    (d / "text.mp4").write_text("this is a text file with a video suffix\n")
    with av.open(str(d / "audio_only.mp4"), "w") as c:
        s = c.add_stream("aac", rate=16000)
        for i in range(10):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 16000, i * 1024
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    # The index first (faststart), then half the frames: it opens, and decoding stops early.
    video_only(good, d / "faststart_full.tmp", options={"movflags": "faststart"})
    full = (d / "faststart_full.tmp").read_bytes()
    (d / "cut_off.mp4").write_bytes(full[: len(full) // 2])
    (d / "faststart_full.tmp").unlink()
    return d


# name -> what the error says about it
BROKEN = {
    "zero_bytes.mp4": "empty file",
    "truncated.mp4": "not a readable video",
    "text.mp4": "not a readable video",
    "audio_only.mp4": "no video stream",
    "cut_off.mp4": "truncated",
}


@pytest.fixture(scope="session")
def broken_reasons():
    return dict(BROKEN)


@pytest.fixture(scope="session")
def video_writer():
    """write_video(path, frames_yuv, fps=24, gop=None) and flat_frames(n, level_of=...)."""
    return write_video, flat_frames


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """(spec, arch): the tiny weights saved as a checkpoint of an open_clip config registered
    under a new name, so ``open_clip:ARCH:/path`` goes through open_clip's real loading code."""
    import json

    import open_clip
    import torch

    from va_core.encoders import load_encoder

    d = tmp_path_factory.mktemp("checkpoint")
    arch = "va-tiny-test"
    (d / f"{arch}.json").write_text(json.dumps({
        "embed_dim": 64,
        "vision_cfg": {"layers": 2, "width": 64, "head_width": 32, "patch_size": 8, "image_size": 64},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }))
    open_clip.add_model_config(d / f"{arch}.json")
    path = d / "tiny-weights.pt"
    torch.save(load_encoder("tiny").model.state_dict(), path)
    return f"open_clip:{arch}:{path}", arch
