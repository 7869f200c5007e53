"""Cuts, dissolves and fades on real footage re-joined with known transitions."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support import footage
from va_core import video
from va_core.ingest import ingest
from va_core.warehouse import Warehouse


@pytest.fixture(scope="module")
def joined(tmp_path_factory):
    return footage.transition_set(tmp_path_factory.mktemp("transitions"), n_videos=3, joins=5, seed=0)


def test_every_join_is_found_with_its_kind_and_span(joined):
    assert {r["kind"] for r in joined.truth} == {"cut", "dissolve", "fade_black", "fade_white"}
    for path in joined.videos:
        truth = [r for r in joined.truth if r["video"] == path.name]
        got = video.detect_transitions(path)
        cuts = [(t.kind, t.frame_start) for t in got if t.kind == "cut"]
        assert cuts == [("cut", r["frame_start"]) for r in truth if r["kind"] == "cut"], path.name
        gradual = [t for t in got if t.kind != "cut"]
        for t in gradual:  # every gradual detection is a true one: inside it (+/- 2), covering half of it
            match = [r for r in truth if r["kind"] == t.kind and r["frame_start"] - 2 <= t.frame_start
                     and t.frame_end <= r["frame_end"] + 2]
            assert match, (path.name, t)
            r = match[0]
            assert t.frame_end - t.frame_start >= (r["frame_end"] - r["frame_start"]) / 2, (path.name, t, r)
        assert len(gradual) >= sum(r["kind"] != "cut" for r in truth) - 1, path.name


def test_clips_meet_in_the_middle_of_a_transition_and_never_sample_it(joined):
    path = joined.videos[0]
    result = video.scan(path, 32)
    shots = list(result.shots)
    gradual = [t for t in result.transitions if t.kind != "cut"]
    assert gradual
    assert [s.shot.frame_in for s in shots[1:]] == [t.boundary for t in result.transitions]
    for a, b in zip(shots, shots[1:]):
        assert b.shot.frame_in == a.shot.frame_out + 1
    fps = result.info.fps
    for s in shots:
        for t in s.times:
            frame = round(t * fps)
            assert not any(g.frame_start <= frame <= g.frame_end for g in gradual), (s.shot, t)


def test_ingestion_stores_the_transitions_of_each_video(joined, settings):
    ingest(settings, [joined.videos[1]], progress=False)
    wh = Warehouse.from_settings(settings)
    rows = wh.read("transitions").sort("frame_start")
    clips = wh.read("clips").sort("frame_in")
    assert rows.height == clips.height - 1 >= 4
    assert rows["boundary_frame"].to_list() == clips["frame_in"].to_list()[1:]
    want = video.detect_transitions(joined.videos[1])
    assert rows.select("kind", "frame_start", "frame_end").rows() == [(t.kind, t.frame_start, t.frame_end)
                                                                     for t in want]


def test_the_player_marks_the_dissolves_and_fades_of_a_clip(joined, settings):
    from va_core.playback import clip_infos
    from va_ui.views import player

    ingest(settings, [joined.videos[1]], progress=False)
    wh = Warehouse.from_settings(settings)
    clips = wh.read("clips").sort("frame_in")
    gradual = wh.read("transitions").filter(wh.read("transitions")["kind"] != "cut").sort("frame_start")
    infos = clip_infos(settings, clips["clip_key"].to_list())
    first = gradual.row(0, named=True)
    before = [c for c in clips.iter_rows(named=True) if c["frame_out"] + 1 == first["boundary_frame"]][0]
    info = infos[before["clip_key"]]
    kind, a, b = info.transitions[-1]  # the clip ends in it: the mark runs from its start to the clip's end
    assert kind == first["kind"] and a == pytest.approx(first["start_s"] - before["start_s"], abs=1e-3)
    assert b == pytest.approx(before["end_s"] - before["start_s"], abs=1e-3)
    html = player({**info.as_dict(), "clip_key": info.clip_key}, "")
    assert f'class="va-mark va-{kind}"' in html and kind.replace("_", " ") in html
    untouched = [k for k, i in infos.items() if not i.transitions]
    assert all("va-mark" not in player({**infos[k].as_dict()}, "") for k in untouched)


def test_seeking_to_known_shots_skips_the_transitions_as_the_scan_does(joined):
    path = joined.videos[2]
    result = video.scan(path, 32)
    scanned = list(result.shots)
    assert any(t.kind != "cut" for t in result.transitions)
    sought = list(video.sample_frames(path, [s.shot for s in scanned], 32, transitions=result.transitions))
    for a, b in zip(scanned, sought):
        assert a.times == pytest.approx(b.times), a.shot
        np.testing.assert_array_equal(a.frames, b.frames)


def test_a_fade_at_the_very_start_or_end_cuts_off_no_clip_and_is_never_sampled(tmp_path):
    shots = footage._shots(160, 96)
    first, second = shots[0][:50], shots[6][:50]
    black = np.zeros_like(first[0])
    fade_in = [footage._blend(black, first[i], i / 8) for i in range(8)]  # from a black frame 0
    fade_out = [footage._blend(second[-1], black, (i + 1) / 8) for i in range(8)]  # to a black last frame
    frames = np.stack([black] * 3 + fade_in + list(first[8:]) + list(second[:-8]) + fade_out)
    path = footage.encode(tmp_path / "edges.mp4", frames)
    cut = 3 + 50
    result = video.scan(path, 16)
    shots_found = list(result.shots)
    assert [(t.kind, t.frame_start) for t in result.transitions] == [("cut", cut)]
    assert [(s.shot.frame_in, s.shot.frame_out) for s in shots_found] == [(0, cut - 1), (cut, len(frames) - 1)]
    sampled = [round(t * result.info.fps) for s in shots_found for t in s.times]
    assert all(3 + 8 <= f < len(frames) - 8 for f in sampled), sampled
