"""Per-label assets: label_set -> classifier -> evaluation -> clip_scores -> feeds.

One dynamic partition per label. ``label_set`` stores the label set at the run's
``label_events`` version; the four model assets are one step that calls
``va_core.train.train_label`` (what ``va train`` and the labelling app's Build call), so a
model version is composed in one place and is the same whoever trains it.
"""

import json

import dagster as dg

from va_assets import tags
from va_assets.metadata import definition_metadata, markdown_table, table_metadata
from va_assets.partitions import label_partitions
from va_assets.resources import VAResource
from va_core.feeds import stored_feeds

GROUP = "label_models"
DAGSTER_TRAINER = "dagster"  # who a version trained by a run is recorded as (model_stage_events.by)

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
    s = ls.summary()
    context.log.info(f"{label} at label_events v{version}: {s['n_pos']} positive, {s['n_neg']} negative, "
                     f"{s['n_conflicts']} conflicts")
    return dg.MaterializeResult(metadata=label_set_metadata(wh, ls, wh.version("label_sets")),
                                data_version=dg.DataVersion(f"label_events@{version}"))


def label_set_metadata(wh, ls, written: int | None) -> dict:
    """What the label_set asset shows (also for label sets that ``train_label`` stored outside Dagster)."""
    s = ls.summary()
    version = ls.label_events_version
    return table_metadata(
        wh, "label_sets", written, rows=ls.clips.height, read={"label_events": version},
        label_events_version=version, n_pos=s["n_pos"], n_neg=s["n_neg"], n_conflicts=s["n_conflicts"],
        n_events=s["n_events"], n_annotators=s["n_annotators"],
        agreement=float(s["agreement"]) if s["agreement"] is not None else None,
    )


def _float(value):
    """A metadata number, or None (Dagster plots floats; the corpus estimate is None before audit labels)."""
    return None if value is None else float(value)


def _stored_checks(row: dict):
    from va_core.checks import parse_report

    return parse_report(row.get("checks_report"))


def evaluation_report(label: str, row: dict, ev: dict, checks: list) -> str:
    lines = [
        f"### {label} v{row['model_version']}",
        "",
        (f"- AP on the corpus **{ev['ap']:.3f}** [{ev['ap_low']:.3f}, {ev['ap_high']:.3f}] (90%, "
         f"{ev['n_audit']} audit labels, {ev['ap_method']}) vs random **{ev['prevalence']:.3f}**"
         if ev.get("ap") is not None else "- AP on the corpus: unknown (no labelled audit draw yet)"),
        f"- labelled-set AP {ev['ap_mean']:.3f} ± {ev['ap_std']:.3f} ({ev['method']}, {ev['n_val']} clips, "
        f"{ev['n_val_pos']} positive) vs random {ev['baseline_ap']:.3f}",
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


def model_metadata(wh, row: dict, ev: dict | None, checks: list, scores, feeds, written: dict,
                   created: bool) -> dict[str, dict]:
    """What each asset of one model version shows, from the rows that version wrote.

    Shared by the ``model_version`` step and by the catalog sensor (a version trained by the
    app or ``va train``), so a version looks the same in the catalog whoever trained it.
    ``written`` maps each table to the Delta version holding the version's rows.
    """
    import numpy as np
    import polars as pl

    label, version = row["label"], int(row["model_version"])
    lineage = {"model_version": version, "label_events_version": row["label_events_version"],
               "encoder_id": row["encoder_id"], "trainer": row["trainer"]}
    threshold = json.loads(row["artifact"]).get("threshold")
    out = {"classifier": table_metadata(
        wh, "models", written.get("models"), read={"label_events": row["label_events_version"]},
        **lineage, created=created, n_pos=int(row["n_pos"]), n_neg=int(row["n_neg"]), ap=_float(row["ap"]),
        ap_low=_float(row.get("ap_low")), ap_high=_float(row.get("ap_high")), n_audit=int(row.get("n_audit") or 0),
        ap_method=row.get("ap_method"), labelled_ap=_float(row.get("labelled_ap")),
        threshold=float(threshold) if threshold is not None else None,
        checks_passed=bool(row["checks_passed"]), stage=row["stage"],
        label_set_digest=row.get("label_set_digest"))}
    if ev is not None:
        out["evaluation"] = table_metadata(
            wh, "evaluations", written.get("evaluations"), read={"label_events": row["label_events_version"]},
            **lineage, ap=_float(ev.get("ap")), ap_low=_float(ev.get("ap_low")), ap_high=_float(ev.get("ap_high")),
            n_audit=int(ev.get("n_audit") or 0), ap_method=ev.get("ap_method"), precision=_float(ev.get("precision")),
            recall=_float(ev.get("recall")), prevalence=_float(ev.get("prevalence")),
            labelled_ap=float(ev["ap_mean"]), ap_std=float(ev["ap_std"]), baseline_ap=float(ev["baseline_ap"]),
            diversity=float(ev["diversity_score"]) if ev.get("diversity_score") is not None else None,
            agreement=float(ev["agreement"]) if ev.get("agreement") is not None else None, method=ev["method"],
            n_val=ev["n_val"], n_val_pos=ev["n_val_pos"],
            report=dg.MetadataValue.md(evaluation_report(label, row, ev, checks)))
    if scores is not None:
        values = scores["score"].to_numpy()
        out["clip_scores"] = table_metadata(
            wh, "clip_scores", written.get("clip_scores"), rows=scores.height, **lineage,
            mean_score=float(np.mean(values)) if len(values) else None,
            share_above_threshold=float(np.mean(values > threshold)) if len(values) and threshold is not None
            else None)
    if feeds is not None:
        counts = dict(feeds.group_by("feed").agg(pl.len()).iter_rows()) if feeds.height else {}
        preview = feeds.filter(pl.col("rank") < 5).sort(["feed", "rank"]).to_dicts() if feeds.height else []
        out["feeds"] = table_metadata(
            wh, "feeds", written.get("feeds"), rows=feeds.height, **lineage,
            **{f"n_{name}": int(n) for name, n in sorted(counts.items())},
            preview=dg.MetadataValue.md(markdown_table(preview, ["feed", "rank", "clip_key", "score"])))
    return out


def stored_version(wh, label: str, version: int, latest: bool = True):
    """The rows one model version wrote: (models row, evaluations row, clip_scores, feeds).

    ``clip_scores`` and ``feeds`` keep the label's latest committed version only: once a newer
    version pruned them this gives None for those parts; ``latest=False`` does not read them.
    """
    from va_core.registry import get_model

    row = get_model(wh, label, version)
    ev = wh.read("evaluations", where={"label": label, "model_version": version})
    if not latest:
        return row, (ev.row(0, named=True) if ev.height else None), None, None
    scores = wh.read("clip_scores", columns=["clip_key", "score", "model_version"],
                     where={"label": label, "model_version": version})
    feeds = wh.read("feeds", where={"label": label, "model_version": version})
    # a newer version prunes this one's scores and feeds; no unlabelled clip left gives no feed rows
    scores = scores if scores.height else None
    feeds = feeds if scores is not None else None
    return row, (ev.row(0, named=True) if ev.height else None), scores, feeds


MODEL_ASSETS = ("classifier", "evaluation", "clip_scores", "feeds")
_EMBEDDINGS = dg.AssetDep("clip_embeddings", partition_mapping=dg.AllPartitionMapping())


@dg.multi_asset(
    specs=[
        dg.AssetSpec("classifier", group_name=GROUP, deps=[label_set, _EMBEDDINGS], skippable=True,
                     kinds={"delta", "scikitlearn"}, metadata=definition_metadata("models"),
                     description="A new model version: logistic regression on the clip embeddings of the "
                                 "stored label set (conflicts excluded), its decision threshold from the "
                                 "evaluation, registered as a candidate with its checks. Table: models."),
        dg.AssetSpec("evaluation", group_name=GROUP, deps=["classifier", "clip_clusters"], skippable=True,
                     kinds={"delta", "scikitlearn"}, metadata=definition_metadata("evaluations"),
                     description="Quality of the model version: AP (mean and spread over the paper's "
                                 "bootstrap), the random baseline, data diversity over the corpus clusters, "
                                 "annotator agreement. Table: evaluations."),
        dg.AssetSpec("clip_scores", group_name=GROUP, deps=["evaluation", _EMBEDDINGS], skippable=True,
                     kinds={"delta", "numpy"}, metadata=definition_metadata("clip_scores"),
                     description="Scores of the model version over every clip of the corpus. Table: clip_scores."),
        dg.AssetSpec("feeds", group_name=GROUP, deps=["clip_scores"], skippable=True,
                     kinds={"delta", "polars"}, metadata=definition_metadata("feeds"),
                     description=f"The active-learning feeds of the model version ({', '.join(stored_feeds())}), "
                                 "labelled clips excluded. Table: feeds."),
    ],
    partitions_def=label_partitions,
    can_subset=False,
)
def model_version(context: dg.AssetExecutionContext, va: VAResource):
    """One model version, written by ``va_core.train.train_label``: the function ``va train`` and
    the app's Build call, so the same label set gives the same version whoever trains it."""
    from va_core.learn import MIN_PER_CLASS
    from va_core.train import train_label

    label = _label(context)
    wh = va.warehouse()
    ls = _stored_label_set(wh, label)
    if ls.n_pos < MIN_PER_CLASS or ls.n_neg < MIN_PER_CLASS:
        # Not an error: a new label starts with a handful of clips. Downstream steps are skipped.
        context.log.info(f"{label}: {ls.n_pos} positive and {ls.n_neg} negative labels; a model needs "
                         f"{MIN_PER_CLASS} of each. No new version.")
        return
    result = train_label(va.settings(), label, label_events_version=ls.label_events_version,
                         trained_by=DAGSTER_TRAINER,
                         note=tags.run_note(context.run_id, ls.label_events_version))
    if not result.created:
        context.log.info(f"{label} v{result.model_version} was trained on this very label set; no new version")
    row, ev, scores, feeds = stored_version(wh, label, result.model_version)
    written = {t: wh.version(t) for t in ("models", "evaluations", "clip_scores", "feeds")}
    meta = model_metadata(wh, row, ev, _stored_checks(row), scores, feeds, written, result.created)
    data_version = dg.DataVersion(f"{label}@v{result.model_version}")
    for key in MODEL_ASSETS:
        if key in meta:  # a newer version trained meanwhile owns the tables that are missing here
            yield dg.MaterializeResult(asset_key=key, metadata=meta[key], data_version=data_version)


label_assets = [label_set, model_version]
