"""Camera motion from the decoder's motion vectors, stored beside CLIP and trained on like it."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.support import footage
from va_core import motion, video
from va_core.config import Settings
from va_core.embeddings import load_corpus
from va_core.encoders import parse_spec
from va_core.ingest import ingest
from va_core.labels import LabelEvent, record_events
from va_core.warehouse import Warehouse

PAN, TILT, ZOOM = 16, 17, 18  # the descriptor's shares of pan, tilt and zoom


@pytest.fixture(scope="module")
def moves(tmp_path_factory):
    return footage.motion_set(tmp_path_factory.mktemp("motion"), per_kind=4, seed=1)


def test_each_synthetic_move_dominates_its_descriptor(moves):
    by_kind: dict[str, list[np.ndarray]] = {}
    for path, row in zip(moves.videos, moves.truth):
        shots = list(video.scan(path, 8, motion=True).shots)
        assert len(shots) == 1, path.name  # a camera move is no cut
        assert shots[0].motion.shape == (motion.DIM,) and shots[0].motion.dtype == np.float32
        by_kind.setdefault(row["motion"], []).append(shots[0].motion)
    for kind, column in (("pan", PAN), ("tilt", TILT), ("zoom", ZOOM)):
        for d in by_kind[kind]:
            others = [c for c in (PAN, TILT, ZOOM) if c != column]
            assert d[column] > max(d[others]), (kind, d)
    moved = np.mean([np.abs(d[:12]).sum() for k in ("pan", "tilt", "zoom") for d in by_kind[k]])
    assert max(np.abs(d[:12]).sum() for d in by_kind["static"]) < 0.2 * moved


def test_motion_is_an_embedding_of_its_own_and_a_label_trains_on_it(moves, settings):
    ingest(settings, [moves.dir], progress=False)
    wh = Warehouse.from_settings(settings)
    clip_id = parse_spec("tiny").encoder_id
    clips = wh.read("clips")
    assert clips.height == len(moves.videos)
    mot = load_corpus(wh, motion.ENCODER_ID)
    both = load_corpus(wh, f"{clip_id}+{motion.ENCODER_ID}")
    clip = load_corpus(wh, clip_id)
    assert sorted(mot.keys) == sorted(clips["clip_key"]) and mot.dim == motion.DIM
    assert both.dim == clip.dim + motion.DIM
    row = both.positions([mot.keys[0]])[0]
    np.testing.assert_array_equal(both.matrix[row, clip.dim:], mot.matrix[0])

    kind_of = {v.name: r["motion"] for v, r in zip(moves.videos, moves.truth)}
    uri_of = dict(wh.read("videos").select("video_id", "uri").iter_rows())
    events = [LabelEvent("pan", key, kind_of[uri_of[vid].rsplit("/", 1)[1]] == "pan", "a")
              for key, vid in clips.select("clip_key", "video_id").iter_rows()]
    record_events(wh, events)
    run = lambda *extra: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "va_cli", "train", "pan", "--json", *extra],
        capture_output=True, text=True, check=True).stdout
    first = json.loads(run("--features", "motion"))
    assert first["encoder_id"] == motion.ENCODER_ID and first["created"]
    again = json.loads(run("--force"))  # the label keeps training on what it was last trained on
    assert again["encoder_id"] == motion.ENCODER_ID and again["model_version"] == 2
    both_run = json.loads(run("--features", "both"))
    assert both_run["encoder_id"] == f"{clip_id}+{motion.ENCODER_ID}"


def test_ingesting_the_same_videos_twice_stores_the_same_motion_embeddings(tmp_path):
    # bikes and carphone_pristine have B-frames: decoded with frame threads, some of them get a
    # partial vector list or none, differently on every decode (every repeated decode differed).
    real = footage.fetch()
    paths = [real["bikes.mp4"], real["carphone_pristine.mp4"]]
    stored = []
    for run in range(3):
        home = tmp_path / f"home{run}"
        settings = Settings(home=home, warehouse_uri=str(home / "warehouse"), encoder="tiny")
        ingest(settings, paths, progress=False)
        stored.append(load_corpus(Warehouse.from_settings(settings), motion.ENCODER_ID))
    first = stored[0]
    assert len(first.keys) > 5 and np.abs(first.matrix).sum() > 0  # clips with motion, not all zeros
    for again in stored[1:]:
        assert list(again.keys) == list(first.keys)
        np.testing.assert_array_equal(again.matrix, first.matrix)


def test_vectors_are_read_field_by_field_as_ffmpeg_lays_them_out():
    """Our prebuilt dtype against PyAV's own reader and the C struct's accessors, on a B-frame file."""
    import av
    from av.sidedata.motionvectors import MotionVectors

    with av.open(str(footage.fetch()["bikes.mp4"])) as container:
        stream = container.streams.video[0]
        stream.thread_type = motion.DECODER_THREAD_TYPE
        stream.codec_context.options = dict(motion.DECODER_OPTIONS)
        checked = 0
        for i, frame in enumerate(container.decode(stream)):
            ours = motion.frame_vectors(frame)
            if ours is None:
                continue
            side = next(sd for sd in frame.side_data if isinstance(sd, MotionVectors))
            assert side.buffer_size == len(ours) * motion.VECTOR_DTYPE.itemsize
            theirs = side.to_ndarray()
            for name in motion.VECTOR_DTYPE.names:
                np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
            for j in (0, len(ours) // 2, len(ours) - 1):
                for name in ("source", "w", "h", "src_x", "src_y", "dst_x", "dst_y", "motion_x", "motion_y",
                             "motion_scale"):
                    assert getattr(side[j], name) == ours[name][j], (i, j, name)
            checked += 1
            if checked == 40:
                break
    assert checked == 40


def _panning_vectors(width: int, height: int, dx: float, dy: float) -> np.ndarray:
    """A frame's vectors (16x16 blocks over the whole frame) of content moved by (dx, dy) pixels."""
    xs, ys = np.meshgrid(np.arange(8, width, 16), np.arange(8, height, 16))
    v = np.zeros(xs.size, dtype=motion.VECTOR_DTYPE)
    v["source"], v["w"], v["h"], v["motion_scale"] = -1, 16, 16, 4
    v["dst_x"], v["dst_y"] = xs.ravel(), ys.ravel()
    v["motion_x"], v["motion_y"] = round(-4 * dx), round(-4 * dy)
    v["src_x"], v["src_y"] = v["dst_x"] - dx, v["dst_y"] - dy
    return v


def test_a_frame_with_a_handful_of_vectors_does_not_swing_its_clips_descriptor():
    width, height = 192, 112
    steady = [_panning_vectors(width, height, 3, 0)] * 10
    stray = _panning_vectors(width, height, 0, 40)[:3]  # a frame after a cut: three inter blocks
    clean = motion.descriptor(list(motion.fit_frames(steady, width, height)))
    mixed = motion.descriptor(list(motion.fit_frames(steady[:5] + [stray] + steady[5:], width, height)))
    assert clean[PAN] > 3.9 and clean[TILT] < 0.01
    # Weighted equally, the stray frame's tilt (13 times the pan) would outweigh ten frames of pan.
    assert mixed[PAN] > 3.5 and mixed[TILT] < 0.3, mixed
    fitted = motion.fit_frames([steady[0], stray], width, height)
    assert fitted[0, -1] == 1.0 and fitted[1, -1] == pytest.approx(3 * 256 / (width * height))
