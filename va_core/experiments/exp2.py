"""Experiment 2: choosing the source of the next labels with multi-armed bandits, per label.

Each algorithm of :data:`~va_core.experiments.bandits.ALGORITHMS` runs ``steps`` steps of
``d`` labels on the seed-1 split of the aggregated labels (validation clips removed from
every source). One row per step: the arm chosen and the AP of the model trained on
everything drawn so far. A run that stops early (every source exhausted, or a set that
cannot be fitted) ends with a ``skipped`` row giving the reason.

The paper compares each algorithm's best AP with the best AP of Video Annotator's own
session from Experiment 1 (checkpoints, seed-0 split); those rows are part of this table
too (algorithm ``VA``, one step per checkpoint), so its summary needs nothing else.
"""
from __future__ import annotations

from va_core.experiments.bandits import ALGORITHMS, Sources, agg_pool, cmp_pool
from va_core.experiments.dataset import KeyVectors, VADataset
from va_core.experiments.exp1 import SPLIT_SEED as VA_SPLIT_SEED, checkpoint_rows
from va_core.experiments.protocol import DEFAULT_SPLIT_RULE, CannotTrain, Evaluator, quiet_sklearn, split_agg

__all__ = ["STEPS", "STEP_SIZE"]

STEPS = 40  # 1000 labels in steps of 25
STEP_SIZE = 25
SPLIT_SEED = 1
VA = "VA"

COLUMNS = {
    "label": "str", "algorithm": "str", "params": "str", "step": "int", "choice": "str", "ap_mean": "float",
    "ap_std": "float", "status": "str", "reason": "str", "n_train": "int", "n_train_pos": "int",
    "fit_seconds": "float",
}


def run_label(data_dir: str, label: str, steps: int = STEPS, d: int = STEP_SIZE, seed: int = SPLIT_SEED,
              split_rule: str = DEFAULT_SPLIT_RULE) -> list[dict]:
    """Worker entry point: all rows of one label."""
    from va_core.experiments.runner import open_dataset

    return evaluate_label(open_dataset(data_dir), label, steps, d, seed, split_rule)


def evaluate_label(ds: VADataset, label: str, steps: int = STEPS, d: int = STEP_SIZE,
                   seed: int = SPLIT_SEED, split_rule: str = DEFAULT_SPLIT_RULE) -> list[dict]:
    agg, checkpoints, lists = ds.agg(label), ds.checkpoints(label), ds.cmp(label)
    needed = {i.key for i in agg.items} | {k for items in lists.values() for k, _ in items}
    needed |= {k for c in checkpoints for k in (c.pos | c.neg)}
    vectors = KeyVectors.load(ds, needed)
    rows = []
    with quiet_sklearn():
        rows += _bandit_rows(label, agg, checkpoints, lists, vectors, steps, d, seed, split_rule)
        rows += _va_rows(label, agg, checkpoints, vectors, split_rule)
    return rows


def _bandit_rows(label, agg, checkpoints, lists, vectors, steps, d, seed, split_rule) -> list[dict]:
    configs = [cls(Sources({}), None, d=d, seed=seed, **kw) for cls, kw in ALGORITHMS]
    try:
        split = split_agg(agg, seed, split_rule)
        val = split.val_key_set
        pools = {"agg": agg_pool(agg, val, checkpoints), "zero_shot": cmp_pool(lists["zero_shot"], val),
                 "random": cmp_pool(lists["random"], val)}
    except CannotTrain as exc:
        return [_row(label, p.name, p.params, None, None, reason=str(exc)) for p in configs]
    ev = Evaluator(vectors, split)
    rows = []
    for cls, kw in ALGORITHMS:
        process = cls(Sources(pools), ev.fit, d=d, seed=seed, **kw)
        for step in process.run(steps):
            rows.append(_row(label, process.name, process.params, step.step, step.choice, step.score, step.reason))
    return rows


def _va_rows(label, agg, checkpoints, vectors, split_rule) -> list[dict]:
    params = f"checkpoints, split seed {VA_SPLIT_SEED}"
    try:
        split = split_agg(agg, VA_SPLIT_SEED, split_rule)
    except CannotTrain as exc:
        return [_row(label, VA, params, None, None, reason=str(exc))]
    out = []
    for r in checkpoint_rows(Evaluator(vectors, split), label, checkpoints):
        out.append({"label": label, "algorithm": VA, "params": params, "step": r["checkpoint_index"],
                    "choice": "checkpoint", "ap_mean": r["ap_mean"], "ap_std": r["ap_std"], "status": r["status"],
                    "reason": r["reason"], "n_train": r["n_train"], "n_train_pos": r["n_train_pos"],
                    "fit_seconds": r["fit_seconds"]})
    return out


def _row(label, algorithm, params, step, choice, score=None, reason=None) -> dict:
    return {
        "label": label, "algorithm": algorithm, "params": params, "step": step, "choice": choice,
        "ap_mean": score.ap_mean if score else None, "ap_std": score.ap_std if score else None,
        "status": "ok" if score else "skipped", "reason": reason,
        "n_train": score.n_train if score else None, "n_train_pos": score.n_train_pos if score else None,
        "fit_seconds": score.fit_seconds if score else None,
    }
