"""Checks a model version must pass before it can be approved.

Plain functions returning :class:`CheckResult`, computed at train time (stored in
``models.checks_report``) and callable again on stored rows (``check_model_version``), so the
orchestrator can show the same checks as asset checks. A failed *blocking* check makes
``registry.approve`` refuse the version.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Iterable

import numpy as np

__all__ = ["CheckResult", "beats_baseline", "check_model_version", "embedding_consistent",
           "no_conflicts_in_training", "parse_report", "report", "stored_estimate"]


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    blocking: bool
    message: str
    metadata: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def beats_baseline(ap_mean: float, baseline_ap: float, method: str = "", estimate: dict | None = None) -> CheckResult:
    """The model ranks the corpus better than random scores do.

    With a corpus estimate (``va_core.quality``, as a dict), its interval's lower bound must be
    above the random baseline, which is the label's estimated prevalence. Without one (no
    labelled random draw yet) the labelled-set AP is compared with the labelled-set baseline,
    and the message says that this is the biased measure and how many audit labels are missing.
    """
    if estimate is not None and estimate.get("ap_low") is not None and estimate.get("prevalence") is not None:
        low, prevalence = float(estimate["ap_low"]), float(estimate["prevalence"])
        passed = bool(low > prevalence)
        provisional = " (provisional)" if estimate.get("method") == "stratified_ht_provisional" else ""
        return CheckResult(
            "beats_random_baseline", passed, True,
            f"corpus AP {estimate['ap']:.3f} [{low:.3f}, {estimate['ap_high']:.3f}]{provisional}: lower bound "
            f"{'>' if passed else '<='} random baseline {prevalence:.3f} (estimated prevalence, "
            f"{estimate.get('n_audit')} audit labels)",
            {"basis": "corpus_estimate", "ap": float(estimate["ap"]), "ap_low": low,
             "ap_high": float(estimate["ap_high"]), "baseline_ap": prevalence, "n_audit": estimate.get("n_audit"),
             "ap_mean": float(ap_mean), "labelled_baseline_ap": float(baseline_ap), "method": method},
        )
    passed = bool(np.isfinite(ap_mean) and ap_mean > baseline_ap)
    how = f" ({method})" if method else ""
    missing = ""
    if estimate is not None:
        missing = f"; no corpus estimate yet: needs {estimate.get('needed')} more audit labels"
    return CheckResult(
        "beats_random_baseline", passed, True,
        f"labelled-set AP {ap_mean:.3f} {'>' if passed else '<='} random baseline {baseline_ap:.3f}{how}"
        f"{missing}",
        {"basis": "labelled_set", "ap_mean": float(ap_mean), "baseline_ap": float(baseline_ap), "method": method},
    )


def no_conflicts_in_training(training_keys: Iterable[str], conflicts: Iterable[str]) -> CheckResult:
    """No clip on which the annotators are split was trained on."""
    bad = sorted(set(training_keys) & set(conflicts))
    n_conflicts = len(set(conflicts))
    return CheckResult(
        "no_conflicting_labels_in_training", not bad, True,
        (f"{len(bad)} conflicting clip(s) were trained on, e.g. {bad[:3]}" if bad else
         f"no conflicting clip trained on ({n_conflicts} conflict(s) excluded)"),
        {"trained_on_conflicts": len(bad), "conflicts_excluded": n_conflicts},
    )


def embedding_consistent(model_dim: int, model_encoder_id: str, corpus_dim: int, corpus_encoder_id: str) -> CheckResult:
    """The model takes the corpus's embeddings: same encoder, same dimension."""
    problems = []
    if model_encoder_id != corpus_encoder_id:
        problems.append(f"model encoder {model_encoder_id!r} but corpus encoder {corpus_encoder_id!r}")
    if model_dim != corpus_dim:
        problems.append(f"model takes {model_dim}-d embeddings but the corpus has {corpus_dim}-d")
    return CheckResult(
        "embedding_consistent", not problems, True,
        "; ".join(problems) or f"{model_dim}-d embeddings of {model_encoder_id}",
        {"model_dim": model_dim, "corpus_dim": corpus_dim, "model_encoder_id": model_encoder_id,
         "corpus_encoder_id": corpus_encoder_id},
    )


def stored_estimate(ev: dict) -> dict | None:
    """The corpus estimate of an ``evaluations`` row as ``beats_baseline`` takes it (None: older rows)."""
    from va_core.quality import audit_labels_needed

    if ev.get("ap_method") is None:
        return None
    return {"ap": ev.get("ap"), "ap_low": ev.get("ap_low"), "ap_high": ev.get("ap_high"),
            "prevalence": ev.get("prevalence"), "n_audit": ev.get("n_audit"), "method": ev.get("ap_method"),
            "needed": audit_labels_needed(int(ev.get("n_audit") or 0), int(ev.get("n_audit_pos") or 0))}


def report(results: list[CheckResult]) -> tuple[bool, str]:
    """(all blocking checks passed, JSON report) for the ``models`` row."""
    passed = all(r.passed for r in results if r.blocking)
    return passed, json.dumps([r.as_dict() for r in results])


def parse_report(text: str | None) -> list[CheckResult]:
    if not text:
        return []
    return [CheckResult(**d) for d in json.loads(text)]


def check_model_version(wh, label: str, model_version: int, encoder_id: str | None = None) -> list[CheckResult]:
    """Recompute the checks of a stored model version from the warehouse alone.

    ``encoder_id`` is the encoder the model must fit (serving's); default the model's own,
    which then checks that its embeddings are still in the warehouse at its dimension.

    The training set is rebuilt from ``label_events`` at the model's ``label_events_version``
    (time travel), so this verifies what was stored rather than trusting it.
    """
    import polars as pl

    from va_core.embeddings import load_corpus
    from va_core.errors import NotFound
    from va_core.labels import label_set
    from va_core.learn import LinearModel

    models = wh.read("models", where={"label": label, "model_version": int(model_version)})
    if models.height == 0:
        raise NotFound(f"{label} has no model version {model_version}")
    row = models.row(0, named=True)
    evals = wh.read("evaluations", where={"label": label, "model_version": int(model_version)})
    if evals.height == 0:
        raise NotFound(f"{label} v{model_version} has no evaluation row")
    ev = evals.row(0, named=True)
    model = LinearModel.from_artifact(row["artifact"])
    trained = json.loads(row["artifact"]).get("training_clips")
    ls = label_set(wh, label, version=row["label_events_version"])
    if trained is None:
        trained = ls.clips.filter(pl.col("value").is_not_null())["clip_key"].to_list()
    corpus = load_corpus(wh, encoder_id or row["encoder_id"])
    return [
        beats_baseline(ev["ap_mean"], ev["baseline_ap"], ev["method"] or "", stored_estimate(ev)),
        no_conflicts_in_training(trained, ls.conflicts),
        embedding_consistent(model.dim, row["encoder_id"], corpus.dim, corpus.encoder_id),
    ]
