"""The paper's summaries of the two experiments, from their long tables.

Experiment 1 (its notebook's analysis): at each budget n, Video Annotator's AP is the best
checkpoint trained on at most n + 10 clips; its gain over a method is that AP minus the
method's (the baseline and zero-shot do not depend on n; the cmp methods are taken at n).
Reported: the share of labels where VA >= the method, and the median gain by label group.

Experiment 2 (Table 3): per label, the best AP an algorithm reached in any step minus the
best AP of VA's own checkpoints; percentiles over labels, in AP points (x100).
EpsilonGreedyMean is taken at epsilon 0.25 and UCBMean at its better c, as in the paper.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["exp1_markdown", "exp1_plot", "exp1_summary", "exp2_markdown", "exp2_plot", "exp2_summary"]

# The paper's label groups (its config), used to group Experiment 1's gains.
LABEL_GROUPS: dict[str, tuple[str, ...]] = {
    "motion": ("zoom", "pan", "slow-motion", "handheld", "fast-motion", "timelapse", "jump-scare"),
    "genres": ("action", "sci-fi", "horror", "fantasy", "drama", "romance"),
    "emotions": ("anger", "sad", "happy", "scared", "laughter"),
    "shot_types": ("establishing-shots", "static-shot", "shutter-shot", "cowboy-shot", "extreme-close-up",
                   "extreme-wide-shot", "two-shot", "group-shot", "aerial", "eye-level", "medium", "closeup",
                   "wide", "over-the-shoulder-shot", "tilt-shot", "dutch-angle", "point-of-view-shot",
                   "high-angle", "insert-shot", "low-angle", "overhead-shot", "single-shot"),
    "sensitivities": ("alcohol", "smoking", "nudity", "gore", "drugs", "violence", "intimacy"),
    "events_actions": ("interview", "fight", "car-chase", "run"),
    "time_location": ("day", "golden-hour", "interior"),
    "focus": ("character-focus", "animal", "object"),
}
GROUP_OF = {label: group for group, labels in LABEL_GROUPS.items() for label in labels}
COMPARED = ("baseline", "zero_shot", "zsc", "rcc", "cc")
CHECKPOINT_SLACK = 10
TABLE3 = {"RoundRobin": None, "GreedyOracle": None, "EpsilonGreedyMean": "epsilon=0.25", "UCBMean": None}
PERCENTILES = (10, 25, 50, 75, 90)


def group_of(label: str) -> str:
    return GROUP_OF.get(label, "other")


# -- Experiment 1 ----------------------------------------------------------------
def exp1_gains(frame, ns: Sequence[int] | None = None):
    """Long table: label, group, n, method, va_ap, method_ap, gain (null where either is missing)."""
    import polars as pl

    ok = frame.filter(pl.col("status") == "ok")
    if ns is None:
        ns = sorted(frame.filter(pl.col("method").is_in(["zsc", "rcc", "cc"]))["n"].drop_nulls().unique().to_list())
    rows = []
    for label in sorted(frame["label"].unique().to_list()):
        mine = ok.filter(pl.col("label") == label)
        checkpoints = mine.filter(pl.col("method") == "va_checkpoint").select("n", "ap_mean").rows()
        fixed = {m: _one(mine.filter(pl.col("method") == m)) for m in ("baseline", "zero_shot")}
        for n in ns:
            eligible = [ap for size, ap in checkpoints if size is not None and size <= n + CHECKPOINT_SLACK]
            va = max(eligible) if eligible else None
            for method in COMPARED:
                other = fixed.get(method) if method in fixed else _one(
                    mine.filter((pl.col("method") == method) & (pl.col("n") == n)))
                rows.append({"label": label, "group": group_of(label), "n": n, "method": method, "va_ap": va,
                             "method_ap": other, "gain": None if va is None or other is None else va - other})
    schema = {"label": pl.String, "group": pl.String, "n": pl.Int64, "method": pl.String,
              "va_ap": pl.Float64, "method_ap": pl.Float64, "gain": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def _one(frame) -> float | None:
    return float(frame["ap_mean"][0]) if len(frame) else None


def exp1_summary(frame, ns: Sequence[int] | None = None) -> dict:
    import polars as pl

    gains = exp1_gains(frame, ns).filter(pl.col("gain").is_not_null())
    share = (gains.group_by("n", "method")
             .agg(share_va_ge=(pl.col("gain") >= 0).mean(), labels=pl.len())
             .sort("n", "method"))
    by_group = pl.concat([gains, gains.with_columns(group=pl.lit("all"))])
    median = (by_group.group_by("n", "group", "method")
              .agg(median_gain=pl.col("gain").median(), labels=pl.len())
              .sort("n", "group", "method"))
    return {"labels": frame["label"].n_unique(), "share_va_ge": share.to_dicts(), "median_gain": median.to_dicts()}


def exp1_markdown(summary: dict) -> str:
    import polars as pl

    if not summary["share_va_ge"]:
        return "No label has both a VA checkpoint and a method to compare with."
    share = pl.DataFrame(summary["share_va_ge"]).pivot(on="method", index="n", values="share_va_ge").sort("n")
    median = pl.DataFrame(summary["median_gain"])
    parts = [f"Share of labels where VA >= the method ({summary['labels']} labels):", "", _md(share, 2)]
    for n in sorted(median["n"].unique().to_list()):
        table = median.filter(pl.col("n") == n).pivot(on="method", index="group", values="median_gain").sort("group")
        parts += ["", f"Median gain of VA in AP points (x100), n = {n}:", "", _md(table, 1, scale=100)]
    return "\n".join(parts)


# -- Experiment 2 ----------------------------------------------------------------
def exp2_lifts(frame):
    """Per label and Table-3 algorithm: best AP over the steps minus VA's best checkpoint AP."""
    import polars as pl

    ok = frame.filter(pl.col("status") == "ok")
    va = ok.filter(pl.col("algorithm") == "VA").group_by("label").agg(va_best=pl.col("ap_mean").max())
    runs = ok.filter(pl.col("algorithm") != "VA")
    picked = []
    for algorithm, params in TABLE3.items():
        sel = runs.filter(pl.col("algorithm") == algorithm)
        if params is not None:
            sel = sel.filter(pl.col("params") == params)
        picked.append(sel)
    best = (pl.concat(picked).group_by("label", "algorithm").agg(best=pl.col("ap_mean").max())
            .join(va, on="label", how="inner").with_columns(lift=pl.col("best") - pl.col("va_best")))
    return best.sort("algorithm", "label")


def exp2_summary(frame) -> dict:
    import polars as pl

    lifts = exp2_lifts(frame)
    rows = []
    for algorithm in TABLE3:
        values = lifts.filter(pl.col("algorithm") == algorithm)["lift"].to_numpy()
        row = {"algorithm": algorithm, "labels": int(len(values))}
        row.update({f"p{q}": (float(np.percentile(values, q)) * 100 if len(values) else None) for q in PERCENTILES})
        rows.append(row)
    return {"labels": frame["label"].n_unique(), "table3": rows}


def exp2_markdown(summary: dict) -> str:
    import polars as pl

    table = pl.DataFrame(summary["table3"])
    return (f"Best AP minus VA's best AP, percentiles over {summary['labels']} labels, in AP points (x100):\n\n"
            + _md(table, 1))


def _md(frame, digits: int, scale: float = 1.0) -> str:
    cols = frame.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.iter_rows():
        cells = []
        for value, col in zip(row, cols):
            if isinstance(value, float):
                cells.append(f"{value * (scale if col not in ('n', 'labels') else 1):.{digits}f}")
            else:
                cells.append("" if value is None else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- plots -------------------------------------------------------------------------
def exp1_plot(frame, path: Path) -> Path | None:
    """Median AP over labels against the number of labels, one line per method."""
    import polars as pl

    gains = exp1_gains(frame)
    if gains.filter(pl.col("va_ap").is_not_null()).is_empty():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ns = sorted(gains["n"].unique().to_list())
    per_label_va = gains.unique(["label", "n"]).group_by("n").agg(pl.col("va_ap").median()).sort("n")
    ax.plot(per_label_va["n"], per_label_va["va_ap"], marker="o", lw=2.2, label="Video Annotator (checkpoints)")
    names = {"zsc": "zero-shot list (zsc)", "rcc": "random list (rcc)", "cc": "half random, half zero-shot (cc)"}
    for method, name in names.items():
        curve = gains.filter(pl.col("method") == method).group_by("n").agg(pl.col("method_ap").median()).sort("n")
        ax.plot(curve["n"], curve["method_ap"], marker=".", label=name)
    for method, style in (("zero_shot", ":"), ("baseline", "--")):
        level = gains.filter(pl.col("method") == method).unique("label")["method_ap"].median()
        if level is not None:
            ax.axhline(level, ls=style, color="grey", label=f"{method.replace('_', '-')} (median)")
    ax.set_xscale("log")
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("labels used (n)")
    ax.set_ylabel(f"median AP over {gains['label'].n_unique()} labels")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def exp2_plot(frame, path: Path) -> Path | None:
    """Distribution over labels of each algorithm's best AP minus VA's best."""
    import polars as pl

    lifts = exp2_lifts(frame)
    if lifts.is_empty():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [a for a in TABLE3 if not lifts.filter(pl.col("algorithm") == a).is_empty()]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.boxplot([lifts.filter(pl.col("algorithm") == a)["lift"].to_numpy() * 100 for a in names],
               tick_labels=names, whis=(10, 90))
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel("best AP minus VA's best (AP points)")
    ax.set_title(f"{lifts['label'].n_unique()} labels; whiskers at p10 and p90", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
