"""`va doctor`: check a home's invariants, and repair what can be derived.

Checks, table by table:

- readable: every table opens with deltalake and its files read with polars;
- one row per key: ``TableSpec.key`` (videos by video_id, clips by clip_key, ...);
- versions complete: every ``models`` row has its evaluation and a stage event, and the
  latest version of each label its clip scores and feeds;
- no orphans: rows tagged with a version that never reached ``models`` (a killed train);
  a claim younger than ``grace_s`` is a train still running, only noted;
- stage consistent: ``models.stage`` equals the stage the history says;
- encoder ids consistent: a version's rows carry its encoder id, which ``clip_embeddings``
  still holds; clusters only of encoders with embeddings;
- answers well formed: no unsure event carries a value; guideline rows of a known kind,
  examples naming a clip (pinned clips that left ``clips`` are a note);
- checkpoints often: tables made before they checkpointed every ``CHECKPOINT_EVERY`` commits.

``repair`` fixes what is derivable (duplicates, orphans, unpruned rows of superseded
versions, the stage copy, a stage event missing for a version, clusters of a vanished
encoder, the checkpoint interval) and checks again. What needs new work (a version missing its evaluation or
scores: train again) stays a problem, and the command exits 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

import polars as pl

from va_core.warehouse import TABLES, Warehouse

__all__ = ["Finding", "check", "doctor"]

GRACE_S = 15 * 60  # a claimed version younger than this may still be training somewhere
VERSIONED = ("evaluations", "clip_scores", "feeds")


@dataclass
class Finding:
    check: str
    table: str | None
    message: str
    repair: str | None = None  # what --repair does; None: not derivable
    fix: Callable[[], object] | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        return {"check": self.check, "table": self.table, "message": self.message, "repair": self.repair}


def _readable(wh: Warehouse, findings: list[Finding]) -> set[str]:
    """Tables that exist and read; the others are reported and skipped by later checks."""
    ok = set()
    for table, spec in TABLES.items():
        if not wh.exists(table):
            continue
        try:
            wh.version(table)
            columns = list(spec.key or spec.schema.names[:1])
            pl.scan_delta(wh.table_uri(table), storage_options=wh.storage_options or None).select(columns).collect()
            wh.arrow(table, columns=columns)
        except Exception as exc:  # any failure to read is the finding
            findings.append(Finding("readable", table, f"cannot be read: {type(exc).__name__}: {exc}"))
            continue
        ok.add(table)
    return ok


def _checkpoints(wh: Warehouse, tables: set[str], findings: list[Finding]) -> None:
    """Tables made before they checkpointed every CHECKPOINT_EVERY commits: each open replays up
    to 100 commits (a build opens tables some thirty times and slowed with every version)."""
    from va_core.warehouse import CHECKPOINT_EVERY

    for table in sorted(tables):
        every = wh.checkpoint_interval(table)
        if every > CHECKPOINT_EVERY:
            findings.append(Finding(
                "checkpoints often", table,
                f"checkpoints every {every} commits (made before {CHECKPOINT_EVERY} was the default): "
                "each read replays the commits since its last checkpoint",
                f"checkpoint every {CHECKPOINT_EVERY} commits", lambda t=table: wh.checkpoint_often(t)))


def _keys(wh: Warehouse, tables: set[str], findings: list[Finding]) -> None:
    for table in sorted(tables):
        spec = TABLES[table]
        if not spec.key:
            continue
        dups = wh.duplicate_keys(table)
        if dups.height:
            example = ", ".join(f"{c}={dups[c][0]!r}" for c in spec.key)
            findings.append(Finding(
                "one row per key", table,
                f"{dups.height} key(s) of ({', '.join(spec.key)}) held by several rows "
                f"({int(dups['n'].sum()) - dups.height} extra rows), e.g. {example}",
                "keep one row per key", lambda t=table: wh.dedupe(t)))


def _versions(wh: Warehouse, tables: set[str], findings: list[Finding], notes: list[str], grace_s: float) -> None:
    from va_core import registry
    from va_core.train import prune_older_versions

    def read(table: str, columns: list[str]) -> pl.DataFrame:
        if table in tables:
            return wh.read(table, columns=columns)
        return pl.from_arrow(TABLES[table].schema.empty_table()).select(columns)

    models = read("models", ["label", "model_version", "stage", "encoder_id"])
    events = read("model_stage_events", ["label", "model_version", "stage", "changed_by", "changed_at"])
    committed = {(r["label"], int(r["model_version"])): r for r in models.iter_rows(named=True)}
    latest = {r["label"]: int(r["model_version"]) for r in
              models.group_by("label").agg(pl.col("model_version").max()).iter_rows(named=True)}
    counts = {t: read(t, ["label", "model_version", "encoder_id"])
              .group_by(["label", "model_version", "encoder_id"]).len() for t in VERSIONED}
    staged = set(events.select("label", "model_version").unique().iter_rows())

    for (label, v), row in sorted(committed.items()):
        if counts["evaluations"].filter((pl.col("label") == label) & (pl.col("model_version") == v)).height == 0:
            findings.append(Finding("versions complete", "evaluations",
                                    f"{label} v{v} has no evaluation: train it again (`va train {label} --force`)"))
        if (label, v) not in staged:
            event = registry.stage_event(label, v, row["stage"], None, "va doctor",
                                         "reconstructed from models.stage: no stage event was recorded")
            findings.append(Finding("versions complete", "model_stage_events",
                                    f"{label} v{v} ({row['stage']}) has no stage event",
                                    f"record a '{row['stage']}' event by 'va doctor' from models.stage",
                                    lambda e=event: wh.append("model_stage_events", [e])))
    for label, v in sorted(latest.items()):
        for table in ("clip_scores", "feeds"):
            mine = counts[table].filter((pl.col("label") == label) & (pl.col("model_version") == v))
            if mine.height == 0:
                findings.append(Finding("versions complete", table,
                                        f"{label} v{v} (the latest) has no {table}: train it again "
                                        f"(`va train {label} --force`)"))
            older = sorted({int(o) for o in counts[table].filter(
                (pl.col("label") == label) & (pl.col("model_version") < v))["model_version"].to_list()
                if (label, int(o)) in committed})
            if older:
                findings.append(Finding("versions complete", table,
                                        f"{label}: rows of superseded versions {older} were not pruned",
                                        f"prune versions before v{v}",
                                        lambda lab=label, ver=v: prune_older_versions(wh, lab, ver)))

    # orphans: versions some table names but models does not
    claims = {(r["label"], int(r["model_version"])): r for r in
              events.filter(pl.col("stage") == registry.CANDIDATE).iter_rows(named=True)}
    tagged = set(claims)
    for table in VERSIONED:
        tagged |= {(r[0], int(r[1])) for r in counts[table].select("label", "model_version").iter_rows()}
    now = datetime.now(timezone.utc)
    for label, v in sorted(tagged - set(committed)):
        claim = claims.get((label, v))
        if claim is not None and claim["changed_at"] is not None and \
                now - claim["changed_at"] < timedelta(seconds=grace_s):
            notes.append(f"{label} v{v} is being trained (claimed at {claim['changed_at']:%H:%M:%S} by "
                         f"{claim['changed_by']}): not checked")
            continue
        where = [t for t in VERSIONED if counts[t].filter((pl.col("label") == label)
                                                          & (pl.col("model_version") == v)).height]
        where += ["model_stage_events"] if (label, v) in staged else []

        def remove(lab=label, ver=v, tabs=tuple(where)):
            for t in tabs:
                wh.delete(t, {"label": lab, "model_version": ver})
        findings.append(Finding("no orphans", ", ".join(where),
                                f"{label} v{v} never reached models (an interrupted train) but has rows in "
                                f"{', '.join(where)}", "delete those rows", remove))

    # the stage copy in models against the history
    derived = registry.stages_from_history(events)
    stale = (models.join(derived.rename({"stage": "derived"}), on=["label", "model_version"], how="inner")
             .filter(pl.col("stage") != pl.col("derived")))
    for label in sorted(set(stale["label"].to_list())):
        mine = stale.filter(pl.col("label") == label)
        detail = ", ".join(f"v{r['model_version']} {r['stage']} (history: {r['derived']})"
                           for r in mine.iter_rows(named=True))
        findings.append(Finding("stage consistent", "models", f"{label}: models.stage differs from the history: "
                                f"{detail}", "rewrite models.stage from the history",
                                lambda lab=label: registry.sync_stage_copy(wh, lab)))

    # encoder ids
    encoders = set(read("clip_embeddings", ["encoder_id"])["encoder_id"].unique().to_list())
    for (label, v), row in sorted(committed.items()):
        if encoders and row["encoder_id"] not in encoders:
            findings.append(Finding("encoder ids", "models", f"{label} v{v} was trained on {row['encoder_id']}, "
                                    "which clip_embeddings no longer holds"))
        for table in VERSIONED:
            other = counts[table].filter((pl.col("label") == label) & (pl.col("model_version") == v)
                                         & (pl.col("encoder_id") != row["encoder_id"]))
            if other.height:
                findings.append(Finding("encoder ids", table, f"{label} v{v}: rows with encoder "
                                        f"{sorted(other['encoder_id'].to_list())}, the model's is {row['encoder_id']}"))
    clusters = set(read("clip_clusters", ["encoder_id"])["encoder_id"].unique().to_list())
    for encoder in sorted(clusters - encoders):
        findings.append(Finding("encoder ids", "clip_clusters", f"clusters of {encoder}, which has no embeddings",
                                "delete them (recomputed when needed)",
                                lambda e=encoder: wh.delete("clip_clusters", {"encoder_id": e})))


def check(wh: Warehouse, grace_s: float = GRACE_S) -> tuple[list[Finding], list[str]]:
    """Every invariant of the home: (findings, notes). No finding: the home is healthy."""
    findings: list[Finding] = []
    notes: list[str] = []
    readable = _readable(wh, findings)
    _checkpoints(wh, readable, findings)
    _keys(wh, readable, findings)
    _versions(wh, readable, findings, notes, grace_s)
    _answers(wh, readable, findings, notes)
    return findings, notes


def _answers(wh: Warehouse, tables: set[str], findings: list[Finding], notes: list[str]) -> None:
    """People's tables written around va_core: unsure answers without a value, well-formed guidelines."""
    from va_core import guidelines

    if "label_events" in tables:
        both = wh.read("label_events", columns=["event_id", "value", "unsure"]).filter(
            pl.col("unsure").fill_null(False) & pl.col("value").is_not_null())
        if both.height:
            findings.append(Finding("answers well formed", "label_events",
                                    f"{both.height} event(s) are unsure and carry a value too (read as unsure), "
                                    f"e.g. event {both['event_id'][0]}"))
    if "label_guidelines" in tables:
        for problem in guidelines.problems(wh):
            findings.append(Finding("answers well formed", "label_guidelines", problem))
        vanished = guidelines.vanished_examples(wh)
        if vanished:
            notes.append(f"{len(vanished)} pinned example clip(s) are no longer in clips (shown as missing): "
                         + ", ".join(vanished[:5]))


def doctor(wh: Warehouse, repair: bool = False, grace_s: float = GRACE_S) -> dict:
    """Check, and with ``repair`` fix what is derivable and check again."""
    findings, notes = check(wh, grace_s)
    repaired: list[dict] = []
    if repair and any(f.fix for f in findings):
        for f in findings:
            if f.fix is not None:
                f.fix()
                repaired.append(f.as_dict())
        findings, notes = check(wh, grace_s)
    return {"warehouse": wh.uri, "healthy": not findings, "problems": [f.as_dict() for f in findings],
            "repaired": repaired, "notes": notes}
