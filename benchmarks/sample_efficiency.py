"""Sample efficiency on real data nobody here made: scikit-learn's handwritten digits.

Ten binary tasks ("is it a 3?") on the 8x8 pixel features (rows L2-normalised, as clip
embeddings are). A fixed stratified 30% of the images is held out; the rest, the pool, is a
corpus in the released dataset format, imported with ``va import-va-dataset``'s function into
a fresh warehouse per seed. Every strategy adds 10 labels a round up to 200, answered
truthfully, and after each round its model is scored by AP on the held-out images:

- va: the product's loop through its own entry points (``benchmarks._loop``, as
  ``benchmarks.live_loop`` runs it): ``sources.next_clips`` (``va feeds LABEL --feed next``,
  10 a round) -> ``labels.record_events`` -> ``train.train_label`` (``va train``), the label
  ``digit{d}-s{seed}``. Digits have no text query, so ``next`` draws random images until a
  first model (3 of each class), then audit draws while the corpus estimate is provisional,
  then its policy (UCB rewarded by the paired change of the corpus estimate) picks among the
  feeds and audit. Its model at each budget is the version stored after that round;
- random: 10 uniform unlabelled images a round;
- borderline: only va's borderline feed (the images nearest the model's threshold), the
  feed closest to uncertainty sampling;
- uncertainty: scikit-activeml's UncertaintySampling (least confident) with a logistic
  regression, 10 a round.

The three references start from the same 10 random images (va draws its own 10) and are
fitted after each round by the product's trainer (``va_core.learn.fit`` with no text query
and the corpus's whitening, as ``train_label`` fits a label without a query). Before a model
can be fitted (fewer than 3 of a class) a model-less strategy draws uniformly and scores as a
constant (AP = the positive rate). Besides AP, the table counts the positives each strategy
put in front of the expert, and a second table what the product's policy chose and how it was
rewarded.

    .venv/bin/python -m benchmarks.sample_efficiency           # 10 tasks x 3 seeds, up to 200 labels
    .venv/bin/python -m benchmarks.sample_efficiency --quick   # 2 tasks x 1 seed, up to 50 labels

Writes benchmarks/results/sample_efficiency.json, a plot in
benchmarks/results/sample_efficiency.png (…_quick with --quick) and prints markdown tables:
the area under the AP-vs-labels curve (normalised to [0, 1]) and the policy's choices.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ._loop import import_home, product_loop, write_dataset
from ._results import arguments, markdown, path_for, report, save

START, STEP = 10, 10
STRATEGIES = ("va", "random", "borderline", "uncertainty")
REFERENCES = STRATEGIES[1:]


def _data(seed: int = 0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = digits.data.astype(np.float64)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    idx = np.arange(len(X))
    pool, test = train_test_split(idx, test_size=0.3, stratify=digits.target, random_state=seed)
    return X, digits.target, np.sort(pool), np.sort(test)


def _fit(X, y, whitening):
    from va_core.learn import MIN_PER_CLASS, fit

    if y.sum() < MIN_PER_CLASS or (~y).sum() < MIN_PER_CLASS:
        return None
    # the product trainer as train_label calls it: digits have no text query, and the corpus's
    # whitening gives the evidence its second prior shape
    return fit(X, y, whitening=whitening)


def held_out_ap(X, truth, test, model) -> float:
    from va_core.learn import average_precision

    if model is None:
        return float(truth[test].mean())  # a constant score: AP = positive rate
    return average_precision(truth[test], model.score(X[test]))


class Reference:
    """One reference strategy on one task: the labelled pool rows and the curve of held-out AP."""

    def __init__(self, strategy: str, X, truth, pool, test, start: np.ndarray, seed: int, whitening):
        self.strategy, self.X, self.truth, self.pool, self.test = strategy, X, truth, pool, test
        self.whitening = whitening
        self.labelled = list(start)
        self.rng = np.random.default_rng([seed, STRATEGIES.index(strategy)])
        self.curve: list[float] = []
        self.model = None

    def evaluate(self) -> None:
        from va_core.learn import evaluate

        rows = np.array(self.labelled)
        y = self.truth[rows]
        self.model = _fit(self.X[rows], y, self.whitening)
        self.curve.append(held_out_ap(self.X, self.truth, self.test, self.model))
        if self.model is not None and self.strategy == "borderline":
            # the feed ranks by the distance to the threshold the product's evaluation sets
            ev = evaluate([f"digit{r}" for r in rows], self.X[rows], y)  # the hash split needs keys
            self.model = self.model.with_threshold(ev.threshold)

    def _unlabelled(self) -> np.ndarray:
        return np.setdiff1d(self.pool, self.labelled)

    def step(self) -> None:
        unl = self._unlabelled()
        if self.strategy == "random" or self.model is None:
            picks = self.rng.choice(unl, STEP, replace=False).tolist()
        elif self.strategy == "borderline":
            picks = self._borderline(unl)
        else:
            picks = self._uncertainty(unl)
        self.labelled += picks

    def _borderline(self, unl: np.ndarray) -> list[int]:
        from va_core.feeds import rank

        scores = np.zeros(len(self.X))
        scores[unl] = self.model.score(self.X[unl])
        return rank("borderline", scores, unl, STEP, seed=int(self.rng.integers(1 << 31)),
                    threshold=self.model.threshold).tolist()

    def _uncertainty(self, unl: np.ndarray) -> list[int]:
        from sklearn.linear_model import LogisticRegression
        from skactiveml.classifier import SklearnClassifier
        from skactiveml.pool import UncertaintySampling

        from va_core.learn import one_blas_thread

        y = np.full(len(self.X), np.nan)
        y[self.labelled] = self.truth[self.labelled].astype(float)
        candidates = np.concatenate([self.labelled, unl])
        clf = SklearnClassifier(LogisticRegression(max_iter=1000), classes=[0.0, 1.0],
                                random_state=int(self.rng.integers(1 << 31)))
        qs = UncertaintySampling(method="least_confident", random_state=int(self.rng.integers(1 << 31)))
        with one_blas_thread():
            idx = qs.query(self.X[candidates], y[candidates], clf, batch_size=STEP)
        return candidates[idx].tolist()


def reference_run(strategy: str, X, truth, pool, test, start, seed: int, rounds: int, whitening) -> dict:
    r = Reference(strategy, X, truth, pool, test, start, seed, whitening)
    r.evaluate()
    for _ in range(rounds):
        r.step()
        r.evaluate()
    return {"curve": r.curve, "found": int(truth[r.labelled].sum())}


def label_name(digit: int, seed: int) -> str:
    # the seed is in the name: the product seeds its random and audit draws and its policy by label
    return f"digit{digit}-s{seed}"


def va_run(settings, keys: list[str], X, truth, pool, test, label: str, budgets: list[int], whitening) -> dict:
    """The product's loop on the pool corpus (row i of ``keys`` is image ``pool[i]``)."""
    from va_core.policy import load_state
    from va_core.warehouse import Warehouse

    loop = product_loop(settings, keys, truth[pool], label, budgets, STEP, need_model=False)
    curve, refit = [], []
    for b in budgets:
        got = loop[b]
        rows = pool[got["rows"]]
        curve.append(held_out_ap(X, truth, test, got["model"]))
        # the same labels fitted in memory, as the references are: the stored model should be that fit
        refit.append(held_out_ap(X, truth, test, _fit(X[rows], truth[rows], whitening)))
    last = loop[budgets[-1]]
    state = load_state(Warehouse.from_settings(settings), label) or {}
    return {"curve": curve, "refit_curve": refit, "found": int(truth[pool[last["rows"]]].sum()),
            "rounds": last["rounds"], "history": state.get("history", []),
            "bandit": state.get("bandit"), "reported": last["reported"]}


def run(tasks: list[int], seeds: list[int], budget: int) -> dict:
    from tqdm import tqdm

    from va_core.embeddings import load_corpus
    from va_core.experiments.importer import ENCODER_ID
    from va_core.train import corpus_whitening
    from va_core.warehouse import Warehouse

    warnings.simplefilter("ignore")
    X, target, pool, test = _data()
    labels = list(range(START, budget + 1, STEP))
    rounds = len(labels) - 1
    curves = {s: [] for s in STRATEGIES}
    found = {s: [] for s in STRATEGIES}
    va_runs = []
    root = Path(tempfile.mkdtemp(prefix="va-bench-digits-"))
    keys = write_dataset(root / "dataset", np.random.default_rng(0), X[pool].astype(np.float32), text={})
    with tqdm(total=len(tasks) * len(seeds) * len(STRATEGIES), desc="task x seed x strategy", file=sys.stderr) as bar:
        for seed in seeds:
            settings = import_home(root / f"home-{seed}", root / "dataset")
            whitening = corpus_whitening(load_corpus(Warehouse.from_settings(settings), ENCODER_ID))
            for digit in tasks:
                truth = target == digit
                label = label_name(digit, seed)
                t0 = time.perf_counter()
                got = va_run(settings, keys, X, truth, pool, test, label, labels, whitening)
                va_runs.append({"digit": digit, "seed": seed, "label": label,
                                "seconds": round(time.perf_counter() - t0, 1),
                                **{k: v for k, v in got.items() if k != "curve"}})
                curves["va"].append(got["curve"])
                found["va"].append(got["found"])
                bar.update()
                start = np.random.default_rng([seed, digit]).choice(pool, START, replace=False)
                for strategy in REFERENCES:
                    ref = reference_run(strategy, X, truth, pool, test, start, seed, rounds, whitening)
                    curves[strategy].append(ref["curve"])
                    found[strategy].append(ref["found"])
                    bar.update()
    return summarise({"labels": labels, "curves": {s: np.array(v).tolist() for s, v in curves.items()},
                      "found": found, "va_runs": va_runs, "tasks": tasks, "seeds": seeds, "budget": budget,
                      "positive_rate_test": float(np.mean([(target[test] == d).mean() for d in tasks]))})


def summarise(result: dict) -> dict:
    """``result`` with its summary per strategy, the policy's choices and how far the stored
    models' AP is from the same labels fitted in memory."""
    labels, curves, found = result["labels"], result["curves"], result["found"]
    summary = []
    for s in STRATEGIES:
        c = np.array(curves[s])
        auc = np.trapezoid(c, labels, axis=1) / (labels[-1] - labels[0])
        summary.append({"strategy": s, "auc_mean": float(auc.mean()), "auc_std": float(auc.std()),
                        "ap_at_50": float(c[:, labels.index(50)].mean()) if 50 in labels else None,
                        "ap_final": float(c[:, -1].mean()), "runs": len(c),
                        "positives_found_mean": float(np.mean(found[s]))})
    refit = np.array([r["refit_curve"] for r in result["va_runs"]])
    out = {**result, "summary": summary, "va_refit_max_abs_gap": float(np.max(np.abs(refit - np.array(curves["va"]))))}
    out["choices"] = choices(out)
    return out


def merged(paths: list[Path]) -> dict:
    """One result from runs of the same budget on other tasks or seeds (``--out`` files)."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    if len({(tuple(p["labels"]), p["budget"]) for p in parts}) != 1:
        raise SystemExit(f"{paths}: these runs have different budgets")
    first = parts[0]
    return summarise({"labels": first["labels"], "budget": first["budget"],
                      "curves": {s: [c for p in parts for c in p["curves"][s]] for s in STRATEGIES},
                      "found": {s: [f for p in parts for f in p["found"][s]] for s in STRATEGIES},
                      "va_runs": [r for p in parts for r in p["va_runs"]],
                      "tasks": sorted({t for p in parts for t in p["tasks"]}),
                      "seeds": sorted({t for p in parts for t in p["seeds"]}),
                      "positive_rate_test": float(np.mean([p["positive_rate_test"] for p in parts])),
                      "merged_from": [{"file": Path(q).name, "date": p["date"], "seconds": p.get("seconds"),
                                       "load_average": p["machine"]["load_average"]} for q, p in zip(paths, parts)]})


def choices(result: dict) -> list[dict]:
    """Per source: the rounds the product's loop took from it (before its first model, while its
    estimate was provisional, chosen by the policy) and the rewards the policy credited to it."""
    from va_core.quality import METHOD

    out: dict[str, dict] = {}
    for r in result["va_runs"]:
        for rnd in r["rounds"]:
            row = out.setdefault(rnd["source"], {"source": rnd["source"], "no_model": 0, "provisional": 0,
                                                 "policy": 0, "rewards": []})
            if rnd["model_version"] is None:
                row["no_model"] += 1
            elif rnd["ap_method"] != METHOD:
                row["provisional"] += 1
            else:
                row["policy"] += 1
        for h in r["history"]:
            if h.get("reward") is not None:
                out[h["source"]]["rewards"].append(h["reward"])
    return [{**row, "n_rewards": len(row["rewards"]),
             "reward_mean": float(np.mean(row["rewards"])) if row["rewards"] else None,
             "reward_median": float(np.median(row["rewards"])) if row["rewards"] else None}
            for row in sorted(out.values(), key=lambda x: -(x["no_model"] + x["provisional"] + x["policy"]))]


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    labels = result["labels"]
    for s in STRATEGIES:
        c = np.array(result["curves"][s])
        auc = next(x["auc_mean"] for x in result["summary"] if x["strategy"] == s)
        ax.plot(labels, c.mean(0), marker="o", ms=3, label=f"{s} (AUC {auc:.3f})")
        ax.fill_between(labels, c.mean(0) - c.std(0) / np.sqrt(len(c)), c.mean(0) + c.std(0) / np.sqrt(len(c)), alpha=0.15)
    ax.set_xlabel("labelled images")
    ax.set_ylabel("held-out AP (mean over tasks and seeds)")
    ax.set_title(f"digits, {len(result['tasks'])} one-vs-rest tasks x {len(result['seeds'])} seeds (band: ±1 s.e.)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(result: dict) -> str:
    head = ["strategy", "AUC of AP vs labels (mean ± std over runs)", "AP at 50 labels", "AP at the budget",
            "positives among the labels at the budget"]
    rows = []
    for s in result["summary"]:
        at50 = f"{s['ap_at_50']:.3f}" if s["ap_at_50"] is not None else "-"
        rows.append([s["strategy"], f"{s['auc_mean']:.3f} ± {s['auc_std']:.3f}", at50, f"{s['ap_final']:.3f}",
                     f"{s['positives_found_mean']:.1f} of {result['budget']}"])
    out = markdown(head, rows, align="lrrrr")
    chosen = [[c["source"], str(c["no_model"]), str(c["provisional"]), str(c["policy"]), str(c["n_rewards"]),
               f"{c['reward_mean']:+.4f}" if c["reward_mean"] is not None else "-",
               f"{c['reward_median']:+.4f}" if c["reward_median"] is not None else "-"] for c in choices(result)]
    return out + "\n\nva's rounds by source (over all runs) and the rewards its policy credited\n\n" + markdown(
        ["source", "rounds before a model", "rounds while the estimate was provisional", "rounds chosen by the policy",
         "rewards", "mean reward", "median reward"], chosen, align="lrrrrrr")


def main(argv=None) -> int:
    parser = arguments(__doc__, "2 tasks x 1 seed, up to 50 labels")
    parser.add_argument("--tasks", type=int, nargs="*", default=None, help="digits to run (default 0-9, 3 8 with --quick)")
    parser.add_argument("--seeds", type=int, nargs="*", default=None, help="seeds (default 0 1 2, 0 with --quick)")
    parser.add_argument("--out", default="sample_efficiency", metavar="NAME",
                        help="the result files' name: results/NAME.json and NAME.png (NAME_quick.* with --quick)")
    parser.add_argument("--merge", nargs="*", default=None, metavar="JSON",
                        help="no run: one result (written as --out) from these results of other tasks or seeds")
    args = parser.parse_args(argv)
    tasks, seeds, budget = ([3, 8], [0], 50) if args.quick else (list(range(10)), [0, 1, 2], 200)
    started = time.time()
    if args.merge:
        result = merged([Path(p) for p in args.merge])
    else:
        result = run(args.tasks or tasks, args.seeds if args.seeds is not None else seeds, budget)
    png = path_for(args.out, args.quick, "png")
    plot(result, png)
    path = save(args.out, args.quick, {"plot": png.name, **result}, None if args.merge else started)
    report(table(result), path, png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
