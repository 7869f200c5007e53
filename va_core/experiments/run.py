"""The paper's Experiment 1 or 2 over a released dataset: run (resuming what is done), then summarise."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from va_core.errors import InputError
from va_core.experiments import exp1, exp2, summaries
from va_core.experiments.dataset import VADataset
from va_core.experiments.protocol import DEFAULT_SPLIT_RULE, SPLIT_RULES
from va_core.experiments.runner import RunReport, read_table, run_labels

__all__ = ["run_experiment"]


@dataclass
class ExperimentResult:
    report: RunReport
    summary: dict
    summary_file: Path
    plot: Path | None
    markdown: str


def run_experiment(which: str, data: str | Path, out: str | Path, labels: Sequence[str] | None = None,
                   workers: int | None = None, steps: int = exp2.STEPS, step_size: int = exp2.STEP_SIZE,
                   ns: Sequence[int] = exp1.NS, split_rule: str = DEFAULT_SPLIT_RULE) -> ExperimentResult:
    """Run Experiment 1 or 2 over the dataset's labels (those not yet in ``out``) and summarise ``out``."""
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, not {workers}")
    if split_rule not in SPLIT_RULES:
        raise InputError(f"unknown --split-rule {split_rule!r}; choose one of {', '.join(SPLIT_RULES)}")
    if steps < 1 or step_size < 1:
        raise InputError(f"--steps and --step-size must be at least 1 (got {steps} and {step_size})")
    ds = VADataset(data)
    ds.validate()
    chosen = ds.select_labels(labels)
    out = Path(out)
    if which == "exp1":
        module, params = exp1, {"ns": tuple(ns), "split_rule": split_rule}
    elif which == "exp2":
        module, params = exp2, {"steps": steps, "d": step_size, "split_rule": split_rule}
    else:
        raise InputError(f"unknown experiment {which!r}; choose exp1 or exp2")
    report = run_labels(module.run_label, str(ds.root.resolve()), chosen, out, module.COLUMNS,
                        workers=workers, desc=which, **params)
    frame = read_table(out, module.COLUMNS)
    if which == "exp1":
        summary = summaries.exp1_summary(frame)
        markdown = summaries.exp1_markdown(summary)
        plot = summaries.exp1_plot(frame, out.with_suffix(".png"))
    else:
        summary = summaries.exp2_summary(frame)
        markdown = summaries.exp2_markdown(summary)
        plot = summaries.exp2_plot(frame, out.with_suffix(".png"))
    summary_file = out.with_suffix(".summary.md")
    title = "Experiment 1: Video Annotator against the baselines" if which == "exp1" else \
        "Experiment 2: choosing the source of the next labels with bandits"
    summary_file.write_text(f"# {title}\n\nFrom `{out.name}` (data: `{ds.root}`, split rule: {split_rule}).\n\n{markdown}\n")
    return ExperimentResult(report, summary, summary_file, plot, markdown)
