"""`va status`: the warehouse's tables and versions, and every label's counts, AP and stage.

AP is the corpus estimate with its 90% interval (``va_core.quality``); a label whose estimate
rests on too few audit labels says how many more it needs.
"""
from __future__ import annotations

import polars as pl

from va_core.labels import labels_overview, warehouse_of
from va_core.registry import APPROVED, models_frame
from va_core.warehouse import TABLES


def status(settings) -> dict:
    wh = warehouse_of(settings)
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


def _interval(lab: dict) -> str:
    if lab["latest_ap"] is None:
        return "-"
    return f"{lab['latest_ap']:.3f} [{lab['latest_ap_low']:.2f}, {lab['latest_ap_high']:.2f}]"


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def cli_status(args, settings):
    data = status(settings)
    lines = [f"home       {data['home']}", f"warehouse  {data['warehouse']}", f"encoder    {data['encoder']}", "",
             f"{'table':<20} {'version':>8} {'rows':>10}"]
    for name, t in data["tables"].items():
        lines.append(f"{name:<20} {_fmt(t['version'], 'd'):>8} {t['rows']:>10}")
    lines += ["", f"{'label':<24} {'pos':>5} {'neg':>5} {'confl':>5} {'latest':>7} {'AP (corpus, 90%)':>20} "
                  f"{'audit':>5} {'set AP':>6} {'stage':<10} {'approved':>8}"]
    if not data["labels"]:
        lines.append("(no labels yet: `va label LABEL CLIP_KEY --yes`)")
    for lab in data["labels"]:
        latest = f"v{lab['latest_version']}" if lab["latest_version"] else "-"
        approved = f"v{lab['approved_version']}" if lab["approved_version"] else "-"
        stale = " (new labels since)" if lab["stale"] else ""
        needs = f" (needs {lab['audit_needed']} more audit labels: `va feeds {lab['label']} --feed audit`)" \
            if lab["audit_needed"] else ""
        lines.append(f"{lab['label']:<24} {lab['n_pos']:>5} {lab['n_neg']:>5} {lab['n_conflicts']:>5} {latest:>7} "
                     f"{_interval(lab):>20} {lab['latest_n_audit']:>5} {_fmt(lab['latest_labelled_ap']):>6} "
                     f"{lab['latest_stage'] or '-':<10} {approved:>8}{stale}{needs}")
    return data, "\n".join(lines)
