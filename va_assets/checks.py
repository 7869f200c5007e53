"""Asset checks that re-verify stored results from the warehouse alone.

They recompute ``va_core.checks`` (the checks approval relies on) from what was stored:
the model artifact, the label set rebuilt by time travel at the model's
``label_events_version``, the corpus embeddings. So they can be re-run on their own from
the UI, e.g. after the corpus changed.
"""

import warnings

import dagster as dg

from va_assets.assets.labels import BASELINE_CHECK, CONFLICT_CHECK, EMBEDDING_CHECK, label_partitions
from va_assets.metadata import as_metadata, markdown_table
from va_assets.resources import VAResource


def _as_asset_check(result) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=bool(result.passed), description=result.message,
        severity=dg.AssetCheckSeverity.ERROR if result.blocking else dg.AssetCheckSeverity.WARN,
        metadata={"message": result.message, **{k: as_metadata(v) for k, v in result.metadata.items()}},
    )


def _latest_model(context, va: VAResource):
    from va_core.labels import validate_label
    from va_core.registry import get_model

    wh = va.warehouse()
    label = validate_label(context.partition_key)
    return wh, get_model(wh, label)


# Partitioned asset checks are a Dagster "preview" feature; its notice would be printed by
# every run process that loads these definitions.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec")

    @dg.asset_check(
        asset="classifier", name=CONFLICT_CHECK, blocking=True, partitions_def=label_partitions,
        description="No clip on which the annotators are split was trained on: the model's training clips "
                    "against the conflicts of its label set.",
    )
    def no_conflicting_labels(context: dg.AssetCheckExecutionContext, va: VAResource) -> dg.AssetCheckResult:
        import json

        from va_core.checks import no_conflicts_in_training
        from va_core.labels import label_set

        wh, row = _latest_model(context, va)
        trained = json.loads(row["artifact"])["training_clips"]
        conflicts = label_set(wh, row["label"], version=row["label_events_version"]).conflicts
        return _as_asset_check(no_conflicts_in_training(trained, conflicts))

    @dg.asset_check(
        asset="classifier", name=EMBEDDING_CHECK, blocking=True, partitions_def=label_partitions,
        description="The model takes the corpus's embeddings: same encoder, same dimension.",
    )
    def embedding_consistent(context: dg.AssetCheckExecutionContext, va: VAResource) -> dg.AssetCheckResult:
        from va_core.checks import embedding_consistent as check
        from va_core.learn import LinearModel
        from va_core.train import corpus_for, label_embeddings

        wh, row = _latest_model(context, va)
        model = LinearModel.from_artifact(row["artifact"])
        settings = va.settings()
        corpus = corpus_for(settings, label_embeddings(settings, row["label"]))  # what the label is scored on now
        return _as_asset_check(check(model.dim, row["encoder_id"], corpus.dim, corpus.encoder_id))


    @dg.asset_check(
        asset="evaluation", name=BASELINE_CHECK, blocking=False, partitions_def=label_partitions,
        description="Held-out AP beats the AP of random scores. Approval refuses a version that fails it; "
                    "it does not block in Dagster (feeds are how a weak model gets better).",
    )
    def beats_random_baseline(context: dg.AssetCheckExecutionContext, va: VAResource) -> dg.AssetCheckResult:
        from va_core.checks import beats_baseline, stored_estimate

        wh, row = _latest_model(context, va)
        ev = wh.read("evaluations", where={"label": row["label"], "model_version": row["model_version"]})
        if ev.height == 0:
            return dg.AssetCheckResult(passed=False, description=f"{row['label']} v{row['model_version']} "
                                                                 "has no evaluations row")
        e = ev.row(0, named=True)
        return _as_asset_check(beats_baseline(e["ap_mean"], e["baseline_ap"], e["method"], stored_estimate(e)))


@dg.asset_check(
    asset="served_models",
    description="Every served model still passes its blocking checks, recomputed from the warehouse "
                "(training set rebuilt by time travel, embeddings of its encoder present at its dimension).",
    blocking=False,
)
def served_models_pass_checks(va: VAResource) -> dg.AssetCheckResult:
    from va_core.checks import check_model_version
    from va_core.registry import approved_models

    wh = va.warehouse()
    rows, failed = [], []
    for m in approved_models(wh):
        for result in check_model_version(wh, m.label, m.model_version):
            rows.append({"label": m.label, "version": m.model_version, "check": result.name,
                         "passed": result.passed, "detail": result.message})
            if result.blocking and not result.passed:
                failed.append(f"{m.label} v{m.model_version}: {result.name}: {result.message}")
    return dg.AssetCheckResult(
        passed=not failed,
        description="; ".join(failed) or f"{len(rows)} checks passed",
        metadata={"failed": len(failed), "checks": dg.MetadataValue.md(
            markdown_table(rows, ["label", "version", "check", "passed", "detail"]))},
    )
