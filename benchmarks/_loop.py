"""The product's labelling loop with a simulated expert, for the benchmarks that measure it.

A corpus is written in the paper's released dataset format and imported into a fresh
warehouse with ``va import-va-dataset``'s function; then an expert who knows the truth
answers what the product shows through its own entry points: ``sources.next_clips`` (``va
feeds LABEL --feed next``) -> ``labels.record_events`` (``va label`` / ``va import-labels``)
-> ``train.train_label`` (``va train``). ``benchmarks.live_loop`` runs it on a generated
corpus, ``benchmarks.sample_efficiency`` on scikit-learn's digits.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

ANNOTATOR = "simulated-expert"


def write_dataset(root: Path, rng, X: np.ndarray, text: dict[str, np.ndarray],
                  cluster: np.ndarray | None = None) -> list[str]:
    """Write the rows of ``X`` as a corpus in the released format, with no labels yet (an empty
    ``agg/``), the labels' ``text`` embeddings and, when given, each clip's ``cluster`` (the
    shot table's ``cluster_index``, 0-9); returns the clip keys in row order."""
    import h5py

    from tests.support.va_dataset import shot_table, write_shots

    root.mkdir(parents=True, exist_ok=True)
    (root / "agg").mkdir(exist_ok=True)
    shots = shot_table(rng, len(X))
    if cluster is not None:
        shots["cluster_index"] = np.asarray(cluster, dtype=np.int64)
    write_shots(root / "shot-data.csv", shots)
    with h5py.File(root / "embeddings.h5", "w") as f:
        f.create_dataset("embeddings", data=X)
    (root / "text-embeddings.json").write_text(json.dumps({k: np.asarray(v).tolist() for k, v in text.items()}))
    return list(shots["key"])


def import_home(home: Path, dataset: Path):
    """A fresh warehouse at ``home`` holding the dataset's corpus; its settings."""
    from va_core.config import Settings
    from va_core.experiments.importer import ENCODER_ID, import_dataset

    settings = Settings.from_env(home=home, encoder=ENCODER_ID)
    import_dataset(settings, dataset, progress=False)
    return settings


def rows_of(keys: list[str], clip_keys) -> np.ndarray:
    """The row numbers of ``clip_keys`` in the corpus order ``keys``."""
    index = {k: i for i, k in enumerate(keys)}
    return np.array([index[k] for k in clip_keys], dtype=np.int64)


def product_loop(settings, keys: list[str], truth: np.ndarray, label: str, budgets, round_size: int,
                 policy: str | None = None, need_model: bool = True,
                 report: Callable[[int, dict], dict] | None = None) -> dict[int, dict]:
    """The product's loop for ``label`` at each budget, the expert answering ``truth`` (one bool
    per row of ``keys``) in rounds of at most ``round_size`` clips.

    Per budget: ``rows`` (labelled, in order), ``model`` (the version stored after the budget's
    last round; None before the label's first model, which is an error when ``need_model``),
    ``model_version``, ``reported`` (what the product says about that version, plus ``report(
    version, reported)`` when given, asked right after the version is trained), ``sources`` (labels per
    source so far) and ``rounds`` (per round so far: its source, and the version, if any, and
    its estimate's method when it was chosen).
    ``policy``: the label's source policy (default the product's)."""
    from va_core.errors import InputError
    from va_core.labels import provenance_of, record_events
    from va_core.registry import get_model, load_model
    from va_core.sources import next_clips
    from va_core.train import train_label
    from va_core.warehouse import Warehouse

    wh = Warehouse.from_settings(settings)
    answer = dict(zip(keys, np.asarray(truth).tolist()))
    labelled: list[str] = []
    sources: list[str] = []
    rounds: list[dict] = []
    out, result = {}, None
    for budget in sorted(budgets):
        while len(labelled) < budget:
            choice = next_clips(settings, label, min(round_size, budget - len(labelled)), policy=policy)
            if not choice["clips"]:
                raise RuntimeError(f"{label}: the loop has no clip left to show after {len(labelled)} labels")
            record_events(wh, [{"label": label, "clip_key": c["clip_key"], "value": answer[c["clip_key"]],
                                "source": c["source"], **provenance_of(c)} for c in choice["clips"]],
                          annotator=ANNOTATOR)
            # the estimate of the model that chose: while it is provisional the policy asks for audit draws
            rounds.append({"source": choice["source"], "after_labels": len(labelled),
                           "model_version": None if result is None else result.model_version,
                           "ap_method": None if result is None else result.ap_method})
            labelled += [c["clip_key"] for c in choice["clips"]]
            sources += [choice["source"]] * len(choice["clips"])
            try:
                result = train_label(settings, label)
            except InputError:  # too few positives or negatives yet: keep labelling
                result = None
        counts = {s: sources.count(s) for s in sorted(set(sources))}
        if result is None:
            if need_model:
                raise RuntimeError(f"{label}: no model after {budget} labels")
            out[budget] = {"rows": rows_of(keys, labelled), "model": None, "model_version": None, "reported": {},
                           "result": None, "sources": counts, "rounds": list(rounds)}
            continue
        row = get_model(wh, label, result.model_version)
        reported = {k: row.get(k) for k in ("ap", "ap_low", "ap_high", "ap_method", "n_audit", "labelled_ap")
                    if k in row}
        if report is not None:
            reported.update(report(result.model_version, reported))
        out[budget] = {"rows": rows_of(keys, labelled), "model": load_model(wh, label, result.model_version),
                       "model_version": result.model_version, "reported": reported, "result": result.as_dict(),
                       "sources": counts, "rounds": list(rounds)}
    return out
