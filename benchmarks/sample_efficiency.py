"""Sample efficiency on real data nobody here made: scikit-learn's handwritten digits.

Ten binary tasks ("is it a 3?") on the 8x8 pixel features (rows L2-normalised, as clip
embeddings are). A fixed stratified 30% of the images is held out; the rest is the pool.
Every strategy starts from the same 10 random labels and adds 10 per round up to 200;
after each round every strategy's labels are fitted with the same trainer (va's fast
trainer) and scored by AP on the held-out images. Strategies:

- random: 10 uniform unlabelled images;
- feed mix: what the labelling app shows: the four feeds of the current model
  (top_positive, top_negative, borderline, random) in turn, 10 images across them;
- bandit: va's policy (UCB over the four feeds) picks one feed per round; its reward is
  the change of the label's own evaluation AP (on labelled images only, as in the product);
- borderline: only va's borderline feed (the clips nearest the model's threshold), 10 per
  round: the feed closest to uncertainty sampling;
- uncertainty: scikit-activeml's UncertaintySampling (least confident) with a logistic
  regression, 10 per round.

Besides AP, the table counts the positives each strategy put in front of the expert: on
real video positives are rare, and finding them is half of what the feeds are for.

Before a model can be fitted (fewer than 2 positives), every strategy but random draws
uniformly, as va does for a label without a model or a text query.

    .venv/bin/python -m benchmarks.sample_efficiency           # 10 tasks x 3 seeds, up to 200 labels
    .venv/bin/python -m benchmarks.sample_efficiency --quick   # 2 tasks x 1 seed, up to 50 labels

Writes benchmarks/results/sample_efficiency.json, a plot in
benchmarks/results/sample_efficiency.png (…_quick with --quick) and prints a markdown table
of the area under the AP-vs-labels curve (normalised to [0, 1]).
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

from ._results import arguments, markdown, path_for, report, save

START, STEP = 10, 10
STRATEGIES = ("random", "feed_mix", "bandit", "borderline", "uncertainty")


def _data(seed: int = 0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = digits.data.astype(np.float64)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    idx = np.arange(len(X))
    pool, test = train_test_split(idx, test_size=0.3, stratify=digits.target, random_state=seed)
    return X, digits.target, np.sort(pool), np.sort(test)


def _fit(X, y):
    from va_core.learn import fit

    if y.sum() < 2 or (~y).sum() < 2:
        return None
    return fit(X, y)  # the product trainer; digits have no text query


class Run:
    """One strategy on one task: the labelled pool rows and the curve of held-out AP."""

    def __init__(self, strategy: str, X, truth, pool, test, start: np.ndarray, seed: int):
        from va_core.policy import Bandit

        self.strategy, self.X, self.truth, self.pool, self.test = strategy, X, truth, pool, test
        self.labelled = list(start)
        self.rng = np.random.default_rng([seed, STRATEGIES.index(strategy)])
        self.bandit = Bandit("ucb", arms=("top_positive", "top_negative", "borderline", "random"), seed=seed)
        self.pending = None  # (arm, evaluation AP before)
        self.curve: list[float] = []
        self.arms: list[str] = []
        self.model = None
        self.eval_ap = None

    def evaluate(self) -> None:
        from va_core.learn import average_precision, evaluate

        rows = np.array(self.labelled)
        y = self.truth[rows]
        self.model = _fit(self.X[rows], y)
        if self.model is None:
            self.curve.append(float(self.truth[self.test].mean()))  # a constant score: AP = positive rate
            self.eval_ap = None
            return
        self.curve.append(average_precision(self.truth[self.test], self.model.score(self.X[self.test])))
        if self.strategy in ("feed_mix", "bandit", "borderline") and min(y.sum(), (~y).sum()) >= 3:
            keys = [f"digit{r}" for r in rows]  # the hash split needs keys
            ev = evaluate(keys, self.X[rows], y)
            self.model = self.model.with_threshold(ev.threshold)
            self.eval_ap = ev.ap.mean
        else:
            self.eval_ap = None

    def _unlabelled(self) -> np.ndarray:
        return np.setdiff1d(self.pool, self.labelled)

    def _feed(self, feed: str, k: int, exclude: set) -> list[int]:
        from va_core.feeds import rank

        cand = np.array([r for r in self._unlabelled() if r not in exclude])
        scores = np.zeros(len(self.X))
        scores[cand] = self.model.score(self.X[cand])
        return rank(feed, scores, cand, k, seed=int(self.rng.integers(1 << 31)), threshold=self.model.threshold).tolist()

    def step(self) -> None:
        unl = self._unlabelled()
        if self.strategy == "random" or self.model is None:
            picks = self.rng.choice(unl, STEP, replace=False).tolist()
        elif self.strategy == "feed_mix":
            picks: list[int] = []
            feeds = ["top_positive", "top_negative", "borderline", "random"]
            turn = len(self.curve) % 4
            order = feeds[turn:] + feeds[:turn]
            for i, feed in enumerate(order):  # 3, 3, 2, 2 per round, rotating who gets 3
                picks += self._feed(feed, STEP // 4 + (1 if i < STEP % 4 else 0), set(picks))
        elif self.strategy == "borderline":
            picks = self._feed("borderline", STEP, set())
        elif self.strategy == "bandit":
            if self.pending and self.pending[1] is not None and self.eval_ap is not None:
                self.bandit.update(self.pending[0], self.eval_ap - self.pending[1])
            arm = self.bandit.choose()
            self.arms.append(arm)
            self.pending = (arm, self.eval_ap)
            picks = self._feed(arm, STEP, set())
        else:
            picks = self._uncertainty(unl)
        self.labelled += picks

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


def run(tasks: list[int], seeds: list[int], budget: int) -> dict:
    from tqdm import tqdm

    warnings.simplefilter("ignore")
    X, target, pool, test = _data()
    curves = {s: [] for s in STRATEGIES}
    found = {s: [] for s in STRATEGIES}
    arms = []
    rounds = (budget - START) // STEP
    with tqdm(total=len(tasks) * len(seeds) * len(STRATEGIES), desc="task x seed x strategy", file=sys.stderr) as bar:
        for digit in tasks:
            truth = target == digit
            for seed in seeds:
                start = np.random.default_rng([seed, digit]).choice(pool, START, replace=False)
                for strategy in STRATEGIES:
                    r = Run(strategy, X, truth, pool, test, start, seed)
                    r.evaluate()
                    for _ in range(rounds):
                        r.step()
                        r.evaluate()
                    curves[strategy].append(r.curve)
                    found[strategy].append(int(truth[r.labelled].sum()))
                    if strategy == "bandit":
                        arms.append({"digit": digit, "seed": seed, "arms": r.arms})
                    bar.update()
    labels = list(range(START, START + STEP * rounds + 1, STEP))
    summary = []
    for s in STRATEGIES:
        c = np.array(curves[s])
        auc = np.trapezoid(c, labels, axis=1) / (labels[-1] - labels[0])
        summary.append({"strategy": s, "auc_mean": float(auc.mean()), "auc_std": float(auc.std()),
                        "ap_at_50": float(c[:, labels.index(50)].mean()) if 50 in labels else None,
                        "ap_final": float(c[:, -1].mean()), "runs": len(c),
                        "positives_found_mean": float(np.mean(found[s]))})
    return {"labels": labels, "curves": {s: np.array(v).tolist() for s, v in curves.items()},
            "summary": summary, "bandit_arms": arms, "tasks": tasks, "seeds": seeds, "budget": budget,
            "positive_rate_test": float(np.mean([(target[test] == d).mean() for d in tasks]))}


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
    return markdown(head, rows, align="lrrrr")


def main(argv=None) -> int:
    parser = arguments(__doc__, "2 tasks x 1 seed, up to 50 labels")
    args = parser.parse_args(argv)
    tasks, seeds, budget = ([3, 8], [0], 50) if args.quick else (list(range(10)), [0, 1, 2], 200)
    started = time.time()
    result = run(tasks, seeds, budget)
    png = path_for("sample_efficiency", args.quick, "png")
    plot(result, png)
    path = save("sample_efficiency", args.quick, {"budget": budget, "plot": png.name, **result}, started)
    report(table(result), path, png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
