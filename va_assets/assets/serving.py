"""The serving asset: the approved version of every label, which the model server loads.

The BentoML service reads ``va_core.registry.approved_models`` from the warehouse itself
(and re-reads it when the ``models`` table changes); this asset records that set, with the
lineage of each model, every time an approval changes it.
"""

import hashlib
import json

import dagster as dg

from va_assets.metadata import definition_metadata, markdown_table, table_metadata
from va_assets.resources import VAResource

GROUP = "serving"


def served_fingerprint(approved) -> str:
    pairs = sorted((m.label, m.model_version) for m in approved)
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]


@dg.asset(
    group_name=GROUP,
    deps=[dg.AssetDep("classifier", partition_mapping=dg.AllPartitionMapping()), dg.AssetKey("model_stage_events")],
    description="The approved model version of every label: what the model server (va serve) scores with. "
                "Refreshed by approval_sensor when a stage change alters the set.",
    metadata=definition_metadata("models"),
    kinds={"delta", "bentoml"},
)
def served_models(context: dg.AssetExecutionContext, va: VAResource) -> dg.MaterializeResult:
    from va_core.registry import approved_models

    wh = va.warehouse()
    read = {"models": wh.version("models"), "model_stage_events": wh.version("model_stage_events")}
    approved = approved_models(wh)
    rows = [m.as_dict() for m in approved]
    context.log.info("serving " + (", ".join(f"{m.label} v{m.model_version}" for m in approved) or "nothing"))
    return dg.MaterializeResult(
        metadata=table_metadata(
            wh, "models", read["models"], rows=len(rows), read=read, n_models=len(rows),
            labels=[m.label for m in approved],
            served=dg.MetadataValue.md(markdown_table(
                rows, ["label", "model_version", "ap", "encoder_id", "dim", "label_events_version", "trained_at"])),
        ),
        data_version=dg.DataVersion(served_fingerprint(approved)),
    )
