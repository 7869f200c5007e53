"""Probing, shot detection and frame sampling on generated and broken files."""
from __future__ import annotations

import threading

import numpy as np
import polars as pl
import pytest

from va_core import video
from va_core.errors import InputError
from va_core.sample_corpus import FPS, HEIGHT, WIDTH, generate, load_truth


def test_generated_corpus_is_deterministic(sample_corpus_dir, tmp_path):
    again = generate(tmp_path / "again", n_videos=2, seed=0)
    truth = load_truth(sample_corpus_dir)
    assert again.truth.equals(truth.filter(pl.col("video").is_in(["sample_000.mp4", "sample_001.mp4"])))
    assert (again.dir / "sample_001.mp4").read_bytes() == (sample_corpus_dir / "sample_001.mp4").read_bytes()
    other = generate(tmp_path / "other", n_videos=2, seed=1)
    assert not other.truth.equals(again.truth)


def test_generated_corpus_covers_every_motion_and_short_shots(sample_corpus_dir):
    truth = load_truth(sample_corpus_dir)
    assert set(truth["motion"]) == {"static", "pan", "zoom", "shake"}
    assert set(truth["object"]) == {"ball", "box", "bar"}
    assert len(set(truth["colour"])) >= 6
    assert truth.filter((pl.col("end_s") - pl.col("start_s")) < 1.0).height >= 2
    # neighbouring shots never share a colour: every cut is a visible one
    for _, shots in truth.group_by("video"):
        colours = shots.sort("shot")["colour"].to_list()
        assert all(a != b for a, b in zip(colours, colours[1:]))


def test_probe_reads_the_generated_files(sample_corpus_dir):
    truth = load_truth(sample_corpus_dir)
    info = video.probe(sample_corpus_dir / "sample_000.mp4")
    n = truth.filter(pl.col("video") == "sample_000.mp4")["frame_out"].max() + 1
    assert (info.width, info.height, info.fps, info.codec) == (WIDTH, HEIGHT, FPS, "h264")
    assert info.n_frames == n
    assert info.duration_s == pytest.approx(n / FPS, abs=1 / FPS)


BROKEN_NAMES = ["zero_bytes.mp4", "truncated.mp4", "text.mp4", "audio_only.mp4", "cut_off.mp4"]


@pytest.mark.parametrize("motion", [False, True], ids=["frame-threads", "motion-decoding-thread"])
@pytest.mark.parametrize("name", BROKEN_NAMES)
def test_broken_files_are_refused_with_the_reason(broken_dir, broken_reasons, name, motion):
    assert set(broken_reasons) == set(BROKEN_NAMES)
    with pytest.raises(InputError, match=broken_reasons[name]) as err:
        sc = video.scan(broken_dir / name, 32, motion=motion)
        list(sc.shots)
    assert name in str(err.value)
    assert not [t for t in threading.enumerate() if t.name == "va-decode-ahead"]


def test_a_scan_left_early_stops_its_decoding_thread(sample_corpus_dir):
    sc = video.scan(sample_corpus_dir / "sample_000.mp4", 32, motion=True)
    first = next(sc.shots)
    assert first.motion is not None
    assert [t for t in threading.enumerate() if t.name == "va-decode-ahead"]  # the rest is still being decoded
    sc.shots.close()
    assert not [t for t in threading.enumerate() if t.name == "va-decode-ahead"]


def test_shot_detection_finds_every_generated_cut_within_two_frames(sample_corpus_dir):
    truth = load_truth(sample_corpus_dir)
    misses, extras, worst = [], [], 0
    for name, shots in truth.group_by("video"):
        want = shots.sort("shot")["frame_in"].to_list()
        got = [s.frame_in for s in video.detect_shots(sample_corpus_dir / name[0])]
        for cut in want:
            d = min(abs(cut - g) for g in got)
            worst = max(worst, d)
            if d > 2:
                misses.append((name[0], cut))
        extras += [(name[0], g) for g in got if min(abs(g - c) for c in want) > 2]
    assert not misses, f"cuts not found: {misses}"
    assert not extras, f"cuts found that were not drawn: {extras}"
    assert worst <= 2


def test_shots_tile_the_video(sample_corpus_dir):
    shots = video.detect_shots(sample_corpus_dir / "sample_003.mp4")
    assert shots[0].frame_in == 0 and shots[0].start_s == 0.0
    for a, b in zip(shots, shots[1:]):
        assert b.frame_in == a.frame_out + 1
        assert b.start_s == pytest.approx(a.end_s)
    assert shots[-1].frame_out + 1 == video.probe(sample_corpus_dir / "sample_003.mp4").n_frames


def test_sample_offsets_rule():
    assert video.sample_offsets(0.3).tolist() == [0.15]  # under half a second: the middle
    assert video.sample_offsets(0.8).tolist() == [0.5]  # under a second: still one frame
    assert video.sample_offsets(2.2).tolist() == [0.5, 1.5]
    long = video.sample_offsets(60.0)
    assert len(long) == 12 and long[0] == 0.5 and long[-1] == 59.5
    assert np.all(np.diff(long) > 0)


def test_scan_samples_one_frame_per_second_within_each_shot(sample_corpus_dir):
    sc = video.scan(sample_corpus_dir / "sample_000.mp4", 48)
    shots = list(sc.shots)
    assert sc.n_decoded == sc.info.n_frames
    for s in shots:
        expected = len(video.sample_offsets(s.shot.end_s - s.shot.start_s))
        assert len(s.frames) == len(s.times) == expected >= 1
        assert s.frames.shape[1:] == (48, 48, 3) and s.frames.dtype == np.uint8
        assert all(s.shot.start_s <= t < s.shot.end_s for t in s.times)


def test_short_shots_get_their_middle_frame(tmp_path, video_writer):
    write_video, flat_frames = video_writer
    # 10 dark frames, 8 bright (a third of a second), 30 dark again: three shots
    levels = [40] * 10 + [200] * 8 + [40] * 30
    path = write_video(tmp_path / "short.mp4", flat_frames(len(levels), level_of=lambda i: levels[i]))
    shots = list(video.scan(path, 32).shots)
    assert [s.shot.frame_in for s in shots] == [0, 10, 18]
    short = shots[1]
    assert len(short.frames) == 1
    assert short.times[0] == pytest.approx(14 / 24)  # frame 14: 4 of 8 frames into the shot
    assert short.frames[0].mean() > 120  # a bright frame, from inside the shot


def test_seeking_decodes_a_fraction_of_a_long_video_and_matches_the_scan(long_video):
    scanned = list(video.scan(long_video, 32).shots)
    assert len(scanned) == 1 and scanned[0].shot.n_frames == 2400
    assert len(scanned[0].frames) == 12
    assert scanned[0].times[0] < 4 and scanned[0].times[-1] > 90  # spread over the whole shot
    stats = {}
    sought = list(video.sample_frames(long_video, [scanned[0].shot], 32, stats=stats))
    assert len(sought[0].frames) == 12
    assert stats["decoded"] < 0.3 * 2400 and stats["seeks"] >= 6
    assert sought[0].times[0] == pytest.approx(0.5) and sought[0].times[-1] == pytest.approx(99.5)


def test_seek_path_samples_the_frames_the_scan_samples(sample_corpus_dir):
    path = sample_corpus_dir / "sample_002.mp4"
    scanned = list(video.scan(path, 40).shots)
    sought = list(video.sample_frames(path, [s.shot for s in scanned], 40))
    for a, b in zip(scanned, sought):
        assert a.times == pytest.approx(b.times)
        np.testing.assert_array_equal(a.frames, b.frames)


def test_video_ids_follow_the_file_location(tmp_path):
    a = tmp_path / "My Clip (1).mp4"
    a.write_bytes(b"x")
    vid = video.video_id_for(a)
    assert vid.startswith("My-Clip-1-") and "|" not in vid
    assert video.video_id_for(str(tmp_path / "." / "My Clip (1).mp4")) == vid
    assert video.video_id_for(tmp_path / "other" / "My Clip (1).mp4") != vid
    assert video.canonical_uri("s3://bucket/v.mp4") == "s3://bucket/v.mp4"


def test_find_videos_walks_folders_and_reports_missing_paths(sample_corpus_dir, tmp_path):
    files, problems = video.find_videos([sample_corpus_dir, sample_corpus_dir / "sample_000.mp4",
                                         tmp_path / "nope.mp4"])
    assert len(files) == len(list(sample_corpus_dir.glob("*.mp4")))
    assert all(f.suffix == ".mp4" for f in files)
    assert problems == [f"{tmp_path / 'nope.mp4'}: no such file or folder"]


def _wide_frame(h=48, w=96, edge=12):
    """A PyAV frame twice as wide as high whose left ``edge`` columns are red, the rest blue-grey."""
    import av

    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = (40, 60, 120)
    rgb[:, :edge] = (230, 20, 20)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24")


def _red(pixels) -> np.ndarray:
    return (pixels[..., 0] > 180) & (pixels[..., 2] < 80)


def test_frames_are_fitted_to_the_square_as_the_encoders_resize_mode_says():
    frame = _wide_frame()
    squash = video.to_rgb(frame, 32, fit=video.FrameFit("squash"))
    shortest = video.to_rgb(frame, 32)  # the default: shortest side to 32, centre crop
    longest = video.to_rgb(frame, 32, fit=video.FrameFit("longest", fill=128))
    assert squash.shape == shortest.shape == longest.shape == (32, 32, 3)
    assert _red(squash[:, :2]).all() and not _red(squash[:, 8:]).any()  # the whole width, squeezed
    assert not _red(shortest).any()  # 96x48 -> 64x32, the middle 32 columns: the edge is cut off
    # 96x48 -> 32x16, 8 rows of fill above and below, the edge still on the left
    assert (longest[:8] == 128).all() and (longest[24:] == 128).all()
    assert _red(longest[8:24, :2]).all() and not _red(longest[8:24, 8:]).any()
    assert video.to_rgb(frame, 32, fit=video.FrameFit()).tobytes() == shortest.tobytes()
    with pytest.raises(InputError, match="resize_mode 'crop'"):
        video.FrameFit("crop")
    with pytest.raises(InputError, match="fill colour 300"):
        video.FrameFit("longest", fill=300)


def test_scan_and_sample_frames_fit_frames_alike(tmp_path, video_writer):
    write_video, _ = video_writer
    frames = []
    for _ in range(48):  # two seconds of one wide shot whose left eighth is bright
        f = np.full((72, 96), 128, np.uint8)
        f[:48] = 40
        f[:48, :12] = 235
        frames.append(f)
    path = write_video(tmp_path / "wide.mp4", frames)
    squash = video.FrameFit("squash")
    scanned = list(video.scan(path, 32, fit=squash).shots)
    sought = list(video.sample_frames(path, [s.shot for s in scanned], 32, fit=squash))
    assert len(scanned) == len(sought) == 1
    np.testing.assert_array_equal(scanned[0].frames, sought[0].frames)
    assert (scanned[0].frames[:, :, :2] > 200).all()  # the bright edge is kept
    assert (next(iter(video.scan(path, 32).shots)).frames[:, :, :2] < 100).all()  # the centre crop drops it
