"""The live loop with a simulated expert: true model quality on clips nobody labelled.

A generated corpus in the paper's released dataset format (``embeddings.h5``,
``shot-data.csv``, ``text-embeddings.json``, an empty ``agg/``: a corpus before anyone
labelled it) is imported with ``va import-va-dataset``'s function. Its 512-d embeddings
look like CLIP's where it matters here: about 80% of the variance lies in a 24-d subspace
where clips form 40 clusters of uneven size; each concept is a direction (mostly outside
that subspace) that its clips lean towards, present in 1% or 2% of clips and more often in
some clusters than others; the label's text embedding is the concept's direction plus
noise, so the zero-shot ranking is imperfect. ``--world`` chooses where that noise lies
(``WORLDS``): ``whitenable`` (the default), partly inside the high-variance subspace, where
the whitened query removes most of it; ``noisy-text``, larger, mostly outside it, with a
weaker concept signal, where only labels can correct it.

Per label and seed, strategies spend the same budgets of truthful labels:

- ``va``: the product's loop through its own entry points, as an expert at the command line:
  ``sources.next_clips`` (``va feeds LABEL --feed next``, 25 clips a round) ->
  ``labels.record_events`` (``va label`` / ``va import-labels``) -> ``train.train_label``
  (``va train``); the model is the version stored after the budget's last round;
- ``random``: uniform clips; ``cc``: half the budget from the top of the zero-shot ranking,
  half at random (the paper's strongest baseline); ``uncertainty``: scikit-activeml's
  least-confident sampling with a logistic regression, 25 a round from the first 25
  zero-shot clips; each fitted with the product's trainer (given the text query and the
  corpus's whitening, as in the product) and with the paper's
  ``LogisticRegressionCV`` (``reference``);
- ``zero_shot``: the text query alone (no labels).

Every model is scored by AP on held-out clips: a quarter more clips drawn from the same
corpus and kept out of the dataset, so nobody could label them. For ``va``, the AP the
product reports for its model is compared with that truth, and ``va_lrcv`` is LogisticRegressionCV on the very labels ``va`` chose.

    .venv/bin/python -m benchmarks.live_loop           # 40k clips, 4 labels x 2 seeds, budgets 100/300/1000
    .venv/bin/python -m benchmarks.live_loop --quick   # 20k clips, 2 labels x 1 seed, budgets 100/300
    .venv/bin/python -m benchmarks.live_loop --world noisy-text

Writes benchmarks/results/live_loop.json, benchmarks/results/live_loop.png (…_quick with
--quick; ``--out NAME``: NAME.json and NAME.png) and prints markdown tables.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ._loop import import_home, product_loop as run_loop, write_dataset
from ._results import arguments, markdown, path_for, report, save

DIM, SUBSPACE, N_CLUSTERS = 512, 24, 40


@dataclass(frozen=True)
class Shape:
    """How a generated world's concepts and text embeddings lie."""
    signal: float  # how far a positive clip leans towards its concept
    concept_inside: float  # the share of a concept direction inside the high-variance subspace
    text_noise: float  # how far the text embedding lies from the concept direction
    text_noise_inside: float  # the share of that error inside the high-variance subspace
    about: str


# Two worlds because the whitened prior makes them different problems: where the text's error
# lies in the clusters' subspace, whitening the query removes most of it and labels barely
# matter; where it lies outside, only labels can correct it.
WORLDS = {
    "whitenable": Shape(0.16, 0.12, 0.5, 0.3, "a strong concept signal; the text's error partly in the clusters' "
                                              "subspace (the whitened query alone has AP 0.99-1.00)"),
    "noisy-text": Shape(0.11, 0.12, 0.9, 0.1, "a weaker concept signal; the text's error larger and mostly "
                                              "outside that subspace (the whitened query alone has AP 0.65-0.84)"),
}
DEFAULT_WORLD = "whitenable"
CONCEPTS = (("rare1-a", 0.01), ("rare2-a", 0.02), ("rare1-b", 0.01), ("rare2-b", 0.02))
ROUND = 25
STRATEGIES = ("va", "va_rr", "va_lrcv", "random", "random_lrcv", "cc", "cc_lrcv", "uncertainty", "uncertainty_lrcv",
              "zero_shot")


# -- the corpus ------------------------------------------------------------------

@dataclass(frozen=True)
class World:
    root: Path
    keys: list[str]
    X: np.ndarray  # (N, D) float32, unit rows, in the dataset's row order
    truth: dict[str, np.ndarray]  # label -> (N,) bool
    text: dict[str, np.ndarray]  # label -> (D,) unit text embedding
    test_X: np.ndarray  # clips of the same corpus kept out of the dataset: nobody can label them
    test_truth: dict[str, np.ndarray]
    whitening: np.ndarray | None = None  # the imported corpus's, as the product's trainer is given it


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _mixed(rng, basis: np.ndarray, inside: float) -> np.ndarray:
    """A unit direction with share ``inside`` (of its length) in the span of ``basis``."""
    return _unit(inside * _unit(basis @ rng.standard_normal(basis.shape[1]))
                 + np.sqrt(1 - inside ** 2) * _unit(rng.standard_normal(basis.shape[0])))


def make_world(root: Path, n: int, seed: int, n_test: int, concepts=CONCEPTS, shape: str = DEFAULT_WORLD) -> World:
    """Write a corpus of ``n`` clips in the released format (no labels yet) and return its ground
    truth, with ``n_test`` more clips drawn the same way and kept out of it (the held-out clips);
    ``shape`` names one of ``WORLDS``."""
    if shape not in WORLDS:
        raise ValueError(f"unknown world {shape!r}; one of {sorted(WORLDS)}")
    how = WORLDS[shape]
    rng = np.random.default_rng(seed)
    n_all = n + n_test
    basis, _ = np.linalg.qr(rng.standard_normal((DIM, SUBSPACE)))
    centres = rng.standard_normal((N_CLUSTERS, SUBSPACE))
    cluster = rng.choice(N_CLUSTERS, n_all, p=rng.dirichlet(np.full(N_CLUSTERS, 2.0)))
    z = centres[cluster] + 0.6 * rng.standard_normal((n_all, SUBSPACE))
    X = (z @ basis.T) / np.sqrt(SUBSPACE) + 0.55 * rng.standard_normal((n_all, DIM)) / np.sqrt(DIM)
    truth, text = {}, {}
    for name, prevalence in concepts:
        affinity = np.exp(rng.standard_normal(N_CLUSTERS))[cluster]  # some clusters show it more
        y = rng.random(n_all) < np.minimum(1.0, affinity / affinity.mean() * prevalence)
        direction = _mixed(rng, basis, how.concept_inside)
        X += how.signal * y[:, None] * direction
        text[name] = _unit(direction + how.text_noise * _mixed(rng, basis, how.text_noise_inside))
        truth[name] = y
    X = _unit(X).astype(np.float32)
    held_out = np.zeros(n_all, dtype=bool)
    held_out[rng.choice(n_all, n_test, replace=False)] = True
    test_X, test_truth = X[held_out], {k: v[held_out] for k, v in truth.items()}
    X, truth, cluster = X[~held_out], {k: v[~held_out] for k, v in truth.items()}, cluster[~held_out]

    keys = write_dataset(root, rng, X, text, cluster=cluster % 10)
    return World(root, keys, X, truth, {k: v.astype(np.float32) for k, v in text.items()},
                 test_X, test_truth)


# -- strategies ------------------------------------------------------------------

def round_robin_label(label: str) -> str:
    """The label under which the round-robin loop labels the same concept (its own label set,
    policy state and models; the same text embedding)."""
    return f"{label}-rr"


def intervals_under(settings, label: str, version: int, score_ranges) -> dict:
    """The stored version's AP interval under other bounds of the smoothed bootstrap's resampled
    scores (``quality.SCORE_RANGES``; "none": the estimator before they were bounded), on the
    same sample and cross-fitted scores."""
    from va_core import quality
    from va_core.embeddings import load_corpus
    from va_core.warehouse import Warehouse
    from va_core.registry import get_model, load_model
    from va_core.train import build_label_set, estimate_quality, training_data

    wh = Warehouse.from_settings(settings)
    row = get_model(wh, label, version)
    ls = build_label_set(wh, label, version=row["label_events_version"], write=False)
    corpus = load_corpus(wh, row["encoder_id"])
    model = load_model(wh, label, version)
    cache: dict = {}
    estimate_quality(wh, ls, corpus, model, training_data(ls, corpus, settings), cache=cache)
    scores = next(v for k, v in cache.items() if k != "sample")
    if scores is None:
        return {}
    out = {}
    for score_range in score_ranges:
        e = quality.estimate(cache["sample"], scores, model.threshold, score_range=score_range)
        out[score_range] = {"ap": e.ap, "ap_low": e.ap_low, "ap_high": e.ap_high}
    return out


def product_loop(settings, world: World, label: str, budgets, policy: str | None = None,
                 as_label: str | None = None) -> dict[int, dict]:
    """The product's loop at each budget (``_loop.product_loop``, rounds of ``ROUND``): the stored
    model, the labelled rows, what it reports.

    ``policy``: the label's source policy (default the product's); ``as_label``: the label name
    to record under (``label``'s concept and text embedding)."""
    def other_intervals(version: int, reported: dict) -> dict:
        if policy is not None or reported.get("ap_method") is None:
            return {}
        from va_core.quality import SCORE_RANGE, SCORE_RANGES

        return {"score_range": SCORE_RANGE,
                "other_intervals": intervals_under(settings, as_label or label, version,
                                                   [r for r in SCORE_RANGES if r != SCORE_RANGE])}

    return run_loop(settings, world.keys, world.truth[label], as_label or label, budgets, ROUND, policy=policy,
                    report=other_intervals)


def cc_rows(world: World, label: str, budget: int, rng) -> np.ndarray:
    """The paper's cc: round(n/2) random clips, the rest from the top of the zero-shot ranking."""
    n_random = round(budget / 2)
    order = np.argsort(-(world.X @ world.text[label]), kind="stable")
    top = order[: budget - n_random]
    rest = np.setdiff1d(np.arange(len(world.keys)), top)
    return np.concatenate([top, rng.choice(rest, n_random, replace=False)])


def uncertainty_rows(world: World, label: str, budget: int, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from skactiveml.classifier import SklearnClassifier
    from skactiveml.pool import UncertaintySampling

    from va_core.learn import one_blas_thread

    y_true = world.truth[label]
    chosen = list(np.argsort(-(world.X @ world.text[label]), kind="stable")[:ROUND])
    rng = np.random.default_rng([seed, 7])
    while len(chosen) < budget:
        y = np.full(len(world.keys), np.nan)
        y[chosen] = y_true[chosen].astype(float)
        clf = SklearnClassifier(LogisticRegression(max_iter=1000), classes=[0.0, 1.0],
                                random_state=int(rng.integers(1 << 31)))
        qs = UncertaintySampling(method="least_confident", random_state=int(rng.integers(1 << 31)))
        with one_blas_thread():
            idx = qs.query(world.X, y, clf, batch_size=min(ROUND, budget - len(chosen)))
        chosen += list(np.atleast_1d(idx))
    return np.array(chosen, dtype=np.int64)


def fit_product(world: World, label: str, rows: np.ndarray):
    """The product's trainer on these rows, with what it is given in the product (the text query
    and the corpus's whitening)."""
    from va_core.learn import fit

    return fit(world.X[rows], world.truth[label][rows], query=world.text[label], whitening=world.whitening)


def fit_lrcv(world: World, label: str, rows: np.ndarray):
    from va_core.learn import fit_reference

    return fit_reference(world.X[rows], world.truth[label][rows])


# -- one run -----------------------------------------------------------------------

def run_one(world: World, settings, label: str, seed: int, budgets, round_robin: bool = False) -> list[dict]:
    from va_core.learn import average_precision

    rng = np.random.default_rng([seed, sum(map(ord, label))])
    y = world.truth[label]
    picks: dict[tuple[str, int], np.ndarray] = {}
    models: dict[tuple[str, int], object] = {}
    reported: dict[int, dict] = {}
    t0 = time.perf_counter()
    loop = product_loop(settings, world, label, budgets)
    loop_s = time.perf_counter() - t0
    sources: dict[tuple[str, int], dict] = {}
    for b, got in loop.items():
        picks["va", b] = got["rows"]
        models["va", b] = got["model"]
        reported[b] = got["reported"]
        sources["va", b] = got["sources"]
    if round_robin:  # the same arms, taken in turn
        for b, got in product_loop(settings, world, label, budgets, "round_robin", round_robin_label(label)).items():
            picks["va_rr", b] = got["rows"]
            models["va_rr", b] = got["model"]
            sources["va_rr", b] = got["sources"]
    for b in budgets:
        picks["random", b] = rng.choice(len(world.keys), b, replace=False)
        picks["cc", b] = cc_rows(world, label, b, rng)
    most = uncertainty_rows(world, label, max(budgets), seed)
    for b in budgets:
        picks["uncertainty", b] = most[:b]
    test_y = world.test_truth[label]

    def ap(scores) -> float:
        return average_precision(test_y, scores)

    rows_out = [{"label": label, "seed": seed, "strategy": "zero_shot", "budget": b,
                 "true_ap": ap(world.test_X @ world.text[label]), "positives_found": 0} for b in budgets]
    for (strategy, b), rows in sorted(picks.items()):
        found = int(y[rows].sum())
        if min(found, len(rows) - found) < 2:
            for name in (strategy, f"{strategy}_lrcv"):
                rows_out.append({"label": label, "seed": seed, "strategy": name, "budget": b, "true_ap": None,
                                 "positives_found": found, "note": "fewer than 2 of a class: no model"})
            continue
        model = models.get((strategy, b)) or fit_product(world, label, rows)
        rows_out.append({"label": label, "seed": seed, "strategy": strategy, "budget": b,
                         "true_ap": ap(model.score(world.test_X)), "positives_found": found,
                         **({"sources": sources[strategy, b]} if (strategy, b) in sources else {}),
                         **({"reported": reported[b], "loop_seconds": round(loop_s, 1)} if strategy == "va" else {})})
        if strategy != "va_rr":
            rows_out.append({"label": label, "seed": seed, "strategy": f"{strategy}_lrcv", "budget": b,
                             "true_ap": ap(fit_lrcv(world, label, rows).score(world.test_X)), "positives_found": found})
    for r in rows_out:
        r["n_test"], r["test_positives"] = len(test_y), int(test_y.sum())
    return rows_out


def run(n: int, seeds, labels, budgets, round_robin: bool = False, shape: str = DEFAULT_WORLD) -> dict:
    from tqdm import tqdm

    from va_core.embeddings import load_corpus
    from va_core.experiments.importer import ENCODER_ID
    from va_core.labels import store_text_embeddings
    from va_core.train import corpus_whitening
    from va_core.warehouse import Warehouse

    warnings.simplefilter("ignore")
    rows = []
    with tqdm(total=len(seeds) * len(labels), desc="label x seed", file=sys.stderr) as bar:
        for seed in seeds:
            root = Path(tempfile.mkdtemp(prefix=f"va-bench-loop-{seed}-"))
            world = make_world(root / "dataset", n, seed, n_test=n // 4, shape=shape)
            (root / "world.json").write_text(json.dumps({"shape": shape, "seed": seed, "clips": n}))
            settings = import_home(root / "home", world.root)
            world = replace(world, whitening=corpus_whitening(load_corpus(Warehouse.from_settings(settings), ENCODER_ID)))
            if round_robin:
                store_text_embeddings(settings, ENCODER_ID, {**world.text, **{round_robin_label(k): v
                                                                               for k, v in world.text.items()}})
            for label in labels:
                rows += run_one(world, settings, label, seed, budgets, round_robin)
                bar.update()
    return {"rows": rows, "world": shape, "world_about": WORLDS[shape].about, "n_clips": n, "seeds": list(seeds),
            "labels": list(labels), "budgets": list(budgets), "prevalence": {k: p for k, p in CONCEPTS}}


# -- reporting -------------------------------------------------------------------

def _cell(rows, strategy, budget, field="true_ap") -> list[float]:
    return [r[field] for r in rows if r["strategy"] == strategy and r["budget"] == budget and r[field] is not None]


def table(result: dict) -> str:
    rows = result["rows"]
    runs = sorted({(r["label"], r["seed"]) for r in rows})
    head = ["label", "seed", "budget", *STRATEGIES, "va positives found", "va_rr positives found", "va reported AP",
            "same, unbounded resampled scores"]
    lines = []
    for label, seed in runs:
        for b in result["budgets"]:
            mine = [r for r in rows if r["label"] == label and r["seed"] == seed and r["budget"] == b]
            by = {r["strategy"]: r for r in mine}
            cells = [f"{by[s]['true_ap']:.3f}" if by.get(s) and by[s]["true_ap"] is not None else "-" for s in STRATEGIES]
            va = by.get("va", {})
            rep = va.get("reported", {})
            shown = f"{rep['ap']:.3f}" if rep.get("ap") is not None else "-"
            if rep.get("ap_low") is not None:
                shown += f" [{rep['ap_low']:.3f}, {rep['ap_high']:.3f}]"
            old = (rep.get("other_intervals") or {}).get("none") or {}
            before = f"[{old['ap_low']:.3f}, {old['ap_high']:.3f}]" if old.get("ap_low") is not None else "-"
            lines.append([label, str(seed), str(b), *cells, str(va.get("positives_found", "-")),
                          str(by.get("va_rr", {}).get("positives_found", "-")), shown, before])
    return markdown(head, lines, align="ll" + "r" * (len(head) - 2))


def summary(result: dict) -> str:
    rows = result["rows"]
    head = ["budget", *STRATEGIES]
    lines = []
    for b in result["budgets"]:
        lines.append([str(b), *[f"{np.median(v):.3f}" if (v := _cell(rows, s, b)) else "-" for s in STRATEGIES]])
    out = "median true AP over labels and seeds\n\n" + markdown(head, lines)
    est = []
    for b in result["budgets"]:
        va = [r for r in rows if r["strategy"] == "va" and r["budget"] == b and r["true_ap"] is not None]
        shown = [r for r in va if r["reported"].get("ap") is not None]
        errors = [abs(r["reported"]["ap"] - r["true_ap"]) for r in shown]
        bounded = [r for r in shown if r["reported"].get("ap_low") is not None]
        covered = [r["reported"]["ap_low"] <= r["true_ap"] <= r["reported"]["ap_high"] for r in bounded]
        widths = [r["reported"]["ap_high"] - r["reported"]["ap_low"] for r in bounded]
        unbounded = [(r, ((r["reported"].get("other_intervals") or {}).get("none") or {})) for r in bounded]
        old = [o for _, o in unbounded if o.get("ap_low") is not None]
        old_covered = [o["ap_low"] <= r["true_ap"] <= o["ap_high"] for r, o in unbounded if o.get("ap_low") is not None]
        labelled = [abs(r["reported"]["labelled_ap"] - r["true_ap"]) for r in va
                    if r["reported"].get("labelled_ap") is not None]
        est.append([str(b), f"{len(shown)} of {len(va)}", f"{np.median(errors):.3f}" if errors else "-",
                    f"{max(errors):.3f}" if errors else "-",
                    f"{sum(covered)} of {len(covered)}" if covered else "-",
                    f"{np.median(widths):.3f}" if widths else "-",
                    f"{sum(old_covered)} of {len(old_covered)}" if old_covered else "-",
                    f"{np.median([o['ap_high'] - o['ap_low'] for o in old]):.3f}" if old else "-",
                    f"{np.median([r['reported']['n_audit'] for r in shown]):.0f}" if shown else "-",
                    f"{np.median(labelled):.3f}" if labelled else "-"])
    return out + "\n\nwhat va reports for its model, against the truth\n\n" + markdown(
        ["budget", "runs with an estimate", "median abs error", "worst abs error", "90% interval holds the truth",
         "median width", "unbounded resampled scores: holds the truth", "median width", "median audit labels",
         "labelled-set AP: median abs error"], est)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, budgets = result["rows"], result["budgets"]
    runs = sorted({(r["label"], r["seed"]) for r in rows})
    cols = min(4, len(runs))
    fig, axes = plt.subplots(-(-len(runs) // cols), cols, figsize=(3.6 * cols, 3.2 * -(-len(runs) // cols)),
                             squeeze=False, sharey=True)
    for ax, (label, seed) in zip(axes.flat, runs):
        for s in ("va", "va_rr", "va_lrcv", "random_lrcv", "cc_lrcv", "uncertainty_lrcv", "zero_shot"):
            pts = [(r["budget"], r["true_ap"]) for r in rows if r["label"] == label and r["seed"] == seed
                   and r["strategy"] == s and r["true_ap"] is not None]
            if pts:
                ax.plot(*zip(*sorted(pts)), marker="o", ms=3, label=s, ls="--" if s == "zero_shot" else "-")
        rep = [(r["budget"], r["reported"]["ap"]) for r in rows if r["label"] == label and r["seed"] == seed
               and r["strategy"] == "va" and r.get("reported", {}).get("ap") is not None]
        if rep:
            ax.plot(*zip(*sorted(rep)), marker="x", ls=":", color="black", label="va reported")
        ax.set_xscale("log")
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.set_title(f"{label} (seed {seed})", fontsize=9)
        ax.grid(alpha=0.3)
    axes.flat[0].set_ylabel("AP on clips nobody labelled")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"live loop, simulated expert, {result['n_clips']} clips, {result.get('world', DEFAULT_WORLD)} world")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = arguments(__doc__, "20k clips, 2 labels x 1 seed, budgets 100 and 300")
    parser.add_argument("--clips", type=int, default=None, help="corpus size (default 40k, 20k with --quick)")
    parser.add_argument("--labels", nargs="*", default=None, help=f"among {[c for c, _ in CONCEPTS]}")
    parser.add_argument("--seeds", type=int, nargs="*", default=None)
    parser.add_argument("--budgets", type=int, nargs="*", default=None)
    parser.add_argument("--world", choices=sorted(WORLDS), default=DEFAULT_WORLD,
                        help="how the generated concepts and text embeddings lie: "
                             + "; ".join(f"{k}: {v.about}" for k, v in WORLDS.items()))
    parser.add_argument("--round-robin", action="store_true",
                        help="also run the product's loop with the round-robin policy over the same arms (va_rr)")
    parser.add_argument("--out", default="live_loop", metavar="NAME",
                        help="the result files' name: results/NAME.json and NAME.png (NAME_quick.* with --quick), "
                             "so that a run with other options keeps an earlier run's files")
    args = parser.parse_args(argv)
    if args.quick:
        n, seeds, labels, budgets = 20_000, [0], [CONCEPTS[0][0], CONCEPTS[1][0]], (100, 300)
    else:
        n, seeds, labels, budgets = 40_000, [0, 1], [c for c, _ in CONCEPTS], (100, 300, 1000)
    started = time.time()
    result = run(args.clips or n, args.seeds or seeds, args.labels or labels, tuple(args.budgets or budgets),
                 args.round_robin, args.world)
    png = path_for(args.out, args.quick, "png")
    plot(result, png)
    path = save(args.out, args.quick, {"plot": png.name, **result}, started)
    report(table(result) + "\n\n" + summary(result), path, png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
