"""Per-label assets: label_set -> classifier -> evaluation -> clip_scores -> feeds.

One dynamic partition per label. Each asset calls one step of ``va_core.train`` (the same
steps ``va train`` and the labelling app's Build run through ``train_label``) and owns one
warehouse table; the next asset reads what the previous one stored, so every step can be
re-run on its own from the Dagster UI.
"""

import json
from typing import Any, NamedTuple

import dagster as dg

from va_assets import tags
from va_assets.metadata import as_metadata, definition_metadata, markdown_table, table_metadata
from va_assets.partitions import label_partitions
from va_assets.resources import VAResource

GROUP = "label_models"
TRAINER = "fast"  # what the sensor retrains with; `va train LABEL --trainer reference` for the paper's

CONFLICT_CHECK = "no_conflicting_labels_in_training"
EMBEDDING_CHECK = "embedding_consistent"
BASELINE_CHECK = "beats_random_baseline"


def _label(context) -> str:
    from va_core.labels import validate_label

    return validate_label(context.partition_key)


def _requested_version(context, wh) -> int:
    """The label_events version this run trains on: the sensor's tag, else the current one."""
    raw = context.run.tags.get(tags.LABEL_EVENTS_VERSION)
    if raw is not None:
        return int(raw)
    current = wh.version("label_events")
    if current is None:
        raise dg.Failure("label_events does not exist yet: label some clips first")
    return current


def _stored_label_set(wh, label: str):
    """The label set as the label_set asset stored it (rebuilt at its label_events version)."""
    from va_core.errors import NotFound
    from va_core.train import build_label_set

    rows = wh.read("label_sets", columns=["label_events_version"], where={"label": label})
    if rows.height == 0:
        raise NotFound(f"no label set stored for {label!r}: materialise label_set first")
    return build_label_set(wh, label, version=int(rows["label_events_version"][0]), write=False)


class _Latest(NamedTuple):
    """The run's label, its latest model version, and the label set and corpus that version was trained on."""

    label: str
    wh: Any
    row: dict
    version: int
    label_set: Any
    corpus: Any


def _latest(context, va: VAResource) -> _Latest:
    from va_core.errors import NotFound
    from va_core.registry import latest_model
    from va_core.train import build_label_set, corpus_for

    label = _label(context)
    wh = va.warehouse()
    row = latest_model(wh, label)
    if row is None:
        raise NotFound(f"{label!r} has no model version: materialise classifier first")
    ls = build_label_set(wh, label, version=row["label_events_version"], write=False)
    return _Latest(label, wh, row, int(row["model_version"]), ls, corpus_for(va.settings(), row["encoder_id"]))


def _check_result(result, asset_key: str) -> dg.AssetCheckResult:
    """A va_core check as a Dagster asset check (same name, same verdict, its numbers as metadata)."""
    return dg.AssetCheckResult(
        asset_key=asset_key, check_name=result.name, passed=bool(result.passed),
        severity=dg.AssetCheckSeverity.ERROR if result.blocking else dg.AssetCheckSeverity.WARN,
        description=result.message,
        metadata={"message": result.message, **{k: as_metadata(v) for k, v in result.metadata.items()}},
    )


@dg.asset(
    partitions_def=label_partitions,
    group_name=GROUP,
    deps=[dg.AssetKey("label_events")],
    description="Label events aggregated per clip at one label_events version: each annotator's latest "
                "vote, majority wins, ties are conflicts (kept out of training). Table: label_sets.",
    metadata=definition_metadata("label_sets"),
    kinds={"delta", "polars"},
)
def label_set(context: dg.AssetExecutionContext, va: VAResource) -> dg.MaterializeResult:
    from va_core.train import build_label_set

    label = _label(context)
    wh = va.warehouse()
    version = _requested_version(context, wh)
    ls = build_label_set(wh, label, version=version)
    written = wh.version("label_sets")
    s = ls.summary()
    context.log.info(f"{label} at label_events v{version}: {s['n_pos']} positive, {s['n_neg']} negative, "
                     f"{s['n_conflicts']} conflicts")
    return dg.MaterializeResult(
        metadata=table_metadata(
            wh, "label_sets", written, rows=ls.clips.height, read={"label_events": version},
            label_events_version=version, n_pos=s["n_pos"], n_neg=s["n_neg"], n_conflicts=s["n_conflicts"],
            n_events=s["n_events"], n_annotators=s["n_annotators"],
            agreement=float(s["agreement"]) if s["agreement"] is not None else None,
        ),
        data_version=dg.DataVersion(f"label_events@{version}"),
    )


@dg.asset(
    partitions_def=label_partitions,
    group_name=GROUP,
    deps=[label_set, dg.AssetDep("clip_embeddings", partition_mapping=dg.AllPartitionMapping())],
    output_required=False,
    description="A new model version: logistic regression on the clip embeddings of the stored label set "
                "(conflicts excluded), registered as a candidate with its checks. Table: models.",
    metadata=definition_metadata("models"),
    kinds={"delta", "scikitlearn"},
)
def classifier(context: dg.AssetExecutionContext, va: VAResource):
    from va_core.learn import MIN_PER_CLASS
    from va_core.registry import CANDIDATE, get_model, label_lock, latest_model, record_stage
    from va_core.train import (_existing, choose_classifier, corpus_for, evaluate_classifier, next_model_version,
                               run_checks, training_data, write_model)

    label = _label(context)
    settings = va.settings()
    wh = va.warehouse()
    ls = _stored_label_set(wh, label)
    if ls.n_pos < MIN_PER_CLASS or ls.n_neg < MIN_PER_CLASS:
        # Not an error: a new label starts with a handful of clips. Downstream steps are skipped.
        context.log.info(f"{label}: {ls.n_pos} positive and {ls.n_neg} negative labels; a model needs "
                         f"{MIN_PER_CLASS} of each. No new version.")
        return
    corpus = corpus_for(settings)
    with label_lock(settings, label):
        latest = latest_model(wh, label)
        if _existing(latest, ls, corpus.encoder_id, TRAINER):
            context.log.info(f"{label} v{latest['model_version']} was trained on this very label set; "
                             "no new version")
            version, created = int(latest["model_version"]), False
            written = wh.version("models")
        else:
            data = training_data(ls, corpus, settings)
            model = choose_classifier(wh, ls, corpus, data, TRAINER)
            evaluation = evaluate_classifier(data, TRAINER, model)
            results = run_checks(ls, data, model, evaluation, corpus, corpus.encoder_id)
            version = next_model_version(wh, label)
            written = write_model(wh, ls, corpus, version, model, data, evaluation, results, "dagster")
            record_stage(wh, label, version, CANDIDATE, None, "dagster",
                         f"trained by run {context.run_id} at label_events v{ls.label_events_version}")
            created = True
    row = get_model(wh, label, version)
    yield dg.MaterializeResult(
        asset_key="classifier",
        metadata=table_metadata(
            wh, "models", written, read={"label_sets": wh.version("label_sets"),
                                         "label_events": ls.label_events_version,
                                         "clip_embeddings": corpus.version},
            model_version=version, created=created, trainer=TRAINER, encoder_id=corpus.encoder_id,
            label_events_version=ls.label_events_version, n_pos=ls.n_pos, n_neg=ls.n_neg,
            ap=float(row["ap"]), checks_passed=bool(row["checks_passed"]), stage=row["stage"],
        ),
        data_version=dg.DataVersion(f"{label}@v{version}"),
    )


def _stored_checks(row: dict):
    from va_core.checks import parse_report

    return parse_report(row.get("checks_report"))


def evaluation_report(label: str, row: dict, ev: dict, checks: list) -> str:
    lines = [
        f"### {label} v{row['model_version']}",
        "",
        f"- AP **{ev['ap_mean']:.3f}** ± {ev['ap_std']:.3f} ({ev['method']}, {ev['n_val']} clips, "
        f"{ev['n_val_pos']} positive) vs random **{ev['baseline_ap']:.3f}**",
        f"- trained on {row['n_pos']} positive and {row['n_neg']} negative clips "
        f"({ev['n_conflicts']} conflicts left out), label_events v{row['label_events_version']}",
        f"- diversity {ev['diversity_score']:.3f}" if ev.get("diversity_score") is not None else "- diversity: n/a",
        f"- annotator agreement {ev['agreement']:.3f}" if ev.get("agreement") is not None
        else "- annotator agreement: n/a (no clip has two annotators)",
        f"- encoder `{row['encoder_id']}`, trainer `{row['trainer']}`, stage **{row['stage']}**",
        "",
        markdown_table([{"check": c.name, "passed": "yes" if c.passed else "**no**", "blocks approval":
                         "yes" if c.blocking else "no", "detail": c.message} for c in checks],
                       ["check", "passed", "blocks approval", "detail"]),
    ]
    return "\n".join(lines)


@dg.asset(
    partitions_def=label_partitions,
    group_name=GROUP,
    deps=[classifier, dg.AssetKey("clip_clusters")],
    check_specs=[dg.AssetCheckSpec(BASELINE_CHECK, asset="evaluation",
                                   description="Held-out AP beats the AP of random scores. Approval refuses a "
                                               "version that fails it; feeds are still built (they are how "
                                               "a weak model gets better).")],
    description="Quality of the latest model version: AP (mean and spread over the paper's bootstrap), "
                "the random baseline, data diversity over the corpus clusters, annotator agreement. "
                "Table: evaluations.",
    metadata=definition_metadata("evaluations"),
    kinds={"delta", "scikitlearn"},
)
def evaluation(context: dg.AssetExecutionContext, va: VAResource) -> dg.MaterializeResult:
    from va_core.checks import beats_baseline
    from va_core.train import evaluate_classifier, label_diversity, training_data, write_evaluation

    label, wh, row, version, ls, corpus = _latest(context, va)
    # Evaluation is deterministic (hash split, seeded folds and bootstrap): recomputing it
    # here reproduces the AP stored with the model, and each table keeps a single writer.
    from va_core.learn import LinearModel

    ev = evaluate_classifier(training_data(ls, corpus, va.settings()), row["trainer"],
                             LinearModel.from_artifact(row["artifact"]))
    diversity = label_diversity(wh, ls, corpus)
    written = write_evaluation(wh, ls, corpus, version, ev, diversity)
    stored = wh.read("evaluations", where={"label": label, "model_version": version}).row(0, named=True)
    check = beats_baseline(ev.ap.mean, ev.baseline.mean, ev.method)
    checks = [c for c in _stored_checks(row) if c.name != BASELINE_CHECK] + [check]
    return dg.MaterializeResult(
        metadata=table_metadata(
            wh, "evaluations", written,
            read={"models": wh.version("models"), "label_events": ls.label_events_version,
                  "clip_embeddings": corpus.version, "clip_clusters": wh.version("clip_clusters")},
            model_version=version, ap=float(ev.ap.mean), ap_std=float(ev.ap.std),
            baseline_ap=float(ev.baseline.mean), diversity=float(diversity) if diversity is not None else None,
            agreement=float(ls.agreement) if ls.agreement is not None else None, method=ev.method,
            n_val=ev.n_val, n_val_pos=ev.n_val_pos,
            ap_reproduced=abs(float(row["ap"]) - float(ev.ap.mean)) < 1e-9,
            report=dg.MetadataValue.md(evaluation_report(label, row, stored, checks)),
        ),
        check_results=[_check_result(check, "evaluation")],
        data_version=dg.DataVersion(f"{label}@v{version}"),
    )


@dg.asset(
    partitions_def=label_partitions,
    group_name=GROUP,
    deps=[evaluation, dg.AssetDep("clip_embeddings", partition_mapping=dg.AllPartitionMapping())],
    description="Scores of the latest model version over every clip of the corpus. Table: clip_scores.",
    metadata=definition_metadata("clip_scores"),
    kinds={"delta", "numpy"},
)
def clip_scores(context: dg.AssetExecutionContext, va: VAResource) -> dg.MaterializeResult:
    import numpy as np

    from va_core.registry import load_model
    from va_core.train import score_corpus, write_scores

    label, wh, row, version, ls, corpus = _latest(context, va)
    scores = score_corpus(load_model(wh, label, version), corpus)
    written = write_scores(wh, ls, corpus, version, scores)
    threshold = json.loads(row["artifact"]).get("threshold")
    return dg.MaterializeResult(
        metadata=table_metadata(
            wh, "clip_scores", written, rows=len(scores),
            read={"models": wh.version("models"), "clip_embeddings": corpus.version},
            model_version=version, mean_score=float(np.mean(scores)) if len(scores) else None,
            share_above_0_5=float(np.mean(scores > 0.5)) if len(scores) else None,
            threshold=float(threshold) if threshold is not None else None,
        ),
        data_version=dg.DataVersion(f"{label}@v{version}"),
    )


@dg.asset(
    partitions_def=label_partitions,
    group_name=GROUP,
    deps=[clip_scores],
    description="The active-learning feeds of the latest model version (top positive, top negative, "
                "borderline, random), already-labelled clips excluded. Table: feeds.",
    metadata=definition_metadata("feeds"),
    kinds={"delta", "polars"},
)
def feeds(context: dg.AssetExecutionContext, va: VAResource) -> dg.MaterializeResult:
    import numpy as np
    import polars as pl

    from va_core.train import build_feeds, write_feeds

    label, wh, row, version, ls, corpus = _latest(context, va)
    stored = wh.read("clip_scores", columns=["clip_key", "score", "model_version"], where={"label": label})
    if stored.height == 0 or int(stored["model_version"][0]) != version:
        raise dg.Failure(f"clip_scores of {label} are not those of v{version}: materialise clip_scores first")
    by_key = dict(zip(stored["clip_key"].to_list(), stored["score"].to_list()))
    scores = np.fromiter((by_key[k] for k in corpus.keys.tolist()), dtype=np.float32, count=len(corpus))
    frame = build_feeds(ls, corpus, scores, version)
    written = write_feeds(wh, ls, corpus, version, frame)
    counts = dict(frame.group_by("feed").agg(pl.len()).iter_rows()) if frame.height else {}
    preview = frame.filter(pl.col("rank") < 5).sort(["feed", "rank"]).to_dicts() if frame.height else []
    return dg.MaterializeResult(
        metadata=table_metadata(
            wh, "feeds", written, rows=frame.height,
            read={"clip_scores": wh.version("clip_scores"), "label_events": ls.label_events_version},
            model_version=version, **{f"n_{name}": int(n) for name, n in sorted(counts.items())},
            preview=dg.MetadataValue.md(markdown_table(preview, ["feed", "rank", "clip_key", "score"])),
        ),
        data_version=dg.DataVersion(f"{label}@v{version}"),
    )


label_assets = [label_set, classifier, evaluation, clip_scores, feeds]
