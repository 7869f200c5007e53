"""`va status`: the warehouse's tables and versions, and every label's counts, AP and stage.

AP is the corpus estimate with its 90% interval (``va_core.quality``); a label whose estimate
rests on too few audit labels says how many more it needs.
"""
from __future__ import annotations

import polars as pl

from va_core.labels import labels_overview
from va_core.registry import APPROVED, models_frame
from va_core.warehouse import TABLES, Warehouse

__all__ = ["status"]


def status(settings) -> dict:
    wh = Warehouse.from_settings(settings)
    tables = {}
    for name in TABLES:
        version = wh.version(name)
        tables[name] = {"version": version, "rows": wh.count(name) if version is not None else 0}
    models = models_frame(wh)
    labels = []
    for row in labels_overview(wh):
        mine = models.filter(pl.col("label") == row["label"]) if models.height else models
        latest = mine.row(-1, named=True) if mine.height else None
        approved = mine.filter(pl.col("stage") == APPROVED)
        labels.append({
            "label": row["label"], "n_pos": row["n_pos"], "n_neg": row["n_neg"], "n_conflicts": row["n_conflicts"],
            "n_events": row["n_events"], "n_annotators": row["n_annotators"], "agreement": row["agreement"],
            "description": row["description"],
            "latest_version": int(latest["model_version"]) if latest else None,
            "latest_stage": latest["stage"] if latest else None,
            "latest_ap": latest["ap"] if latest else None,
            "latest_ap_low": latest.get("ap_low") if latest else None,
            "latest_ap_high": latest.get("ap_high") if latest else None,
            "latest_n_audit": int(latest.get("n_audit") or 0) if latest else 0,
            "latest_ap_method": latest.get("ap_method") if latest else None,
            "latest_labelled_ap": latest.get("labelled_ap") if latest else None,
            "audit_needed": _needed(wh, latest) if latest else None,
            "approved_version": int(approved["model_version"][0]) if approved.height else None,
            "approved_ap": approved["ap"][0] if approved.height else None,
            # labelled after the latest version was trained: `va train` would make a new one
            "stale": bool(latest and row["last_labelled_at"] > latest["trained_at"]),
        })
    return {"home": str(settings.home), "warehouse": wh.uri, "encoder": settings.encoder, "tables": tables,
            "labels": labels}


def _needed(wh, latest: dict) -> int:
    """Audit labels the latest version's estimate still needs (0: enough)."""
    from va_core.quality import audit_labels_needed

    ev = wh.read("evaluations", columns=["n_audit", "n_audit_pos"],
                 where={"label": latest["label"], "model_version": int(latest["model_version"])})
    n_pos = int(ev["n_audit_pos"][0] or 0) if ev.height else 0
    return audit_labels_needed(int(latest.get("n_audit") or 0), n_pos)
