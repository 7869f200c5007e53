"""Playback: each clip is cut once into its own small mp4 under VA_HOME, addressed by key only."""
from __future__ import annotations

import threading
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pytest

from tests.support.footage import video_only
from va_core.errors import InputError, NotFound
from va_core.playback import MAX_SIDE, clip_file, clip_info, clip_infos
from va_core.warehouse import Warehouse


@pytest.fixture
def wh(ui_settings) -> Warehouse:
    return Warehouse.from_settings(ui_settings)


@pytest.fixture
def a_clip(wh) -> dict:
    clips = wh.read("clips").sort("clip_key")
    return clips.filter(clips["frame_in"] > 0).row(0, named=True)  # not the first shot: the cut must seek


def _frames(path: Path) -> tuple[int, int, int, str]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return n, s.codec_context.width, s.codec_context.height, s.codec_context.name


def test_a_clip_is_its_own_shot_cut_once_under_home(ui_settings, a_clip):
    path = clip_file(ui_settings, a_clip["clip_key"])
    assert path.is_relative_to(ui_settings.cache_dir / "clips")
    assert a_clip["clip_key"] not in str(path) and "|" not in path.name
    n, width, height, codec = _frames(path)
    assert n == a_clip["frame_out"] - a_clip["frame_in"] + 1
    assert codec == "h264" and max(width, height) <= MAX_SIDE
    stamp = path.stat().st_mtime_ns
    assert clip_file(ui_settings, a_clip["clip_key"]) == path
    assert path.stat().st_mtime_ns == stamp  # served from the cache, not cut again


def test_viewers_asking_at_once_get_one_cut(ui_settings, a_clip):
    paths, errors = [], []

    def ask():
        try:
            paths.append(clip_file(ui_settings, a_clip["clip_key"]))
        except Exception as exc:  # noqa: BLE001  (collected and asserted below)
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(paths)) == 1
    assert list(paths[0].parent.glob("*.tmp.mp4")) == []
    assert _frames(paths[0])[0] == a_clip["frame_out"] - a_clip["frame_in"] + 1


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "nothing|0"])
def test_keys_that_are_not_clips_reach_no_file(ui_settings, key):
    with pytest.raises(NotFound, match="unknown clip key"):
        clip_file(ui_settings, key)
    assert not (ui_settings.cache_dir / "clips").exists()


@pytest.mark.parametrize("key", ["", "a\x00b", "x" * 600, None])
def test_malformed_keys_are_refused(ui_settings, key):
    with pytest.raises(InputError):
        clip_file(ui_settings, key)


def test_clips_without_video_say_why(ui_settings, wh, a_clip):
    wh.append("clips", pa.table({"clip_key": ["imported|0"], "video_id": ["imported"], "frame_in": [0],
                                 "frame_out": [23], "start_s": [0.0], "end_s": [1.0]}))
    info = clip_info(ui_settings, "imported|0")
    assert not info.playable and "embeddings only" in info.reason
    assert (info.start_s, info.end_s, info.video_id) == (0.0, 1.0, "imported")
    with pytest.raises(NotFound, match="no video to play"):
        clip_file(ui_settings, "imported|0")

    # a video that failed ingestion, and one that was moved away
    video = wh.read("videos", where={"video_id": a_clip["video_id"]}).row(0, named=True)
    wh.replace("videos", {"video_id": video["video_id"]}, [{**video, "status": "failed", "error": "broken"}])
    assert "status is 'failed'" in clip_info(ui_settings, a_clip["clip_key"]).reason
    wh.replace("videos", {"video_id": video["video_id"]}, [{**video, "uri": video["uri"] + ".moved"}])
    assert "missing" in clip_info(ui_settings, a_clip["clip_key"]).reason


def test_many_clips_at_once(ui_settings, wh):
    keys = wh.read("clips")["clip_key"].to_list()
    infos = clip_infos(ui_settings, keys + ["nothing|0"])
    assert all(infos[k].playable for k in keys)
    assert infos["nothing|0"].reason == "unknown clip key"


def _sound(path: Path) -> tuple[np.ndarray, int] | None:
    """The clip's decoded sound (first channel) and its rate, or None without an audio stream."""
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        stream = c.streams.audio[0]
        samples = np.concatenate([f.to_ndarray()[0] for f in c.decode(stream)])
        return samples, stream.codec_context.sample_rate


def _pitch(samples: np.ndarray, rate: int) -> float:
    """The strongest frequency of a stretch of sound (zero-padded FFT: a fraction of a Hz apart)."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)), n=1 << 16))
    return float(np.fft.rfftfreq(1 << 16, 1 / rate)[int(np.argmax(spectrum))])


def test_a_clip_carries_the_sound_of_its_own_span(ui_settings, wh, truth):
    from va_core.sample_corpus import FPS, PITCHES

    clips = wh.read("clips").sort("clip_key").to_dicts()
    # a later shot (the cut seeks) drawn exactly, long enough to hear, of a steady pitch (a pan glides)
    clip = next(c for c in clips if c["frame_in"] > 0 and truth[c["clip_key"]]["truth_overlap"] == 1.0
                and truth[c["clip_key"]]["motion"] != "pan" and c["end_s"] - c["start_s"] >= 1.0)
    path = clip_file(ui_settings, clip["clip_key"])
    sound = _sound(path)
    assert sound is not None, "the source has sound: the clip must carry it"
    samples, rate = sound
    frames = _frames(path)[0]
    assert frames == clip["frame_out"] - clip["frame_in"] + 1
    assert abs(len(samples) / rate - frames / FPS) <= 0.03  # as long as the picture
    # the shot's own tone from its first tenth of a second to its last: the span is the clip's,
    # not its neighbours' (whose colours, and so pitches, differ)
    want = PITCHES[truth[clip["clip_key"]]["colour"]]
    edge = int(0.12 * rate)
    for part in (samples[int(0.02 * rate):edge], samples[-edge:-int(0.02 * rate)], samples):
        heard = _pitch(part, rate)
        assert min(PITCHES.values(), key=lambda p: abs(p - heard)) == want, (heard, want)


def test_a_source_without_sound_gives_a_clip_without_sound(ui_settings, wh, a_clip, tmp_path):
    from va_core.playback import cut

    uri = wh.read("videos", where={"video_id": a_clip["video_id"]})["uri"][0]
    with av.open(uri.removeprefix("file://")) as src:
        assert src.streams.audio, "the sample videos have sound"
    silent = video_only(uri.removeprefix("file://"), tmp_path / "silent.mp4")
    dest = tmp_path / "clip.mp4"
    n = cut(silent, a_clip["start_s"], a_clip["end_s"], dest)
    assert n == a_clip["frame_out"] - a_clip["frame_in"] + 1 == _frames(dest)[0]
    assert _sound(dest) is None
