"""Model versions and their stages: candidate -> approved -> retired.

``model_stage_events`` (append-only, who changed what and why) is the truth of a version's
stage: its latest event there. ``models.stage`` is a copy of it kept for readers of the raw
table; :func:`models_frame` (what every reader here uses) derives the stage from the events,
so a crash between an event and the copy never shows a stage nobody recorded. An approval
and the retirements it implies are one commit of events. At most one version per label is
approved: approving one retires the one approved before; two approvals racing on separate
machines resolve to the later one. Serving loads :func:`approved_models`.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import polars as pl
from filelock import FileLock

from va_core.embeddings import feature_set_of, features_encoder_id
from va_core.errors import NotFound, VAError
from va_core.labels import login_name, validate_label, validate_person
from va_core.learn import LinearModel
from va_core.warehouse import Warehouse

__all__ = ["APPROVED", "CANDIDATE", "ApprovalRefused", "ReasonNeeded", "approval_refused", "approve",
           "approved_models", "clearly_worse", "get_model", "label_encoder_id", "label_lock", "latest_model", "load_model", "model_history", "models_frame",
           "rollback_version", "stage_event", "stages_from_history", "sync_stage_copy"]

CANDIDATE, APPROVED, RETIRED = "candidate", "approved", "retired"
STAGES = (CANDIDATE, APPROVED, RETIRED)


class ApprovalRefused(VAError):
    """A version whose blocking checks failed cannot be approved; the message says which."""


class ReasonNeeded(ApprovalRefused):
    """Approving this version needs a reason, recorded in the stage history; the message says why.

    Each front end says how to give one (the command's ``--override``, the app's reason box).
    """


@contextlib.contextmanager
def label_lock(settings, label: str) -> Iterator[None]:
    """Serialise writers of one label's models on this machine (train, approve, retire).

    Only an optimisation: correctness across machines comes from Delta's conflict detection
    (version numbers are claimed by a conditional insert). Here it saves a second trainer
    the work of training a label set the first one is about to store. ``label`` names a file:
    its callers have validated it.
    """
    locks = Path(settings.home) / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with FileLock(locks / f"label-{label}.lock"):
        yield


def stages_from_history(events: pl.DataFrame) -> pl.DataFrame:
    """label, model_version, stage: each version's latest stage event; one approved version per label.

    When approvals raced (two machines, neither saw the other), the later approval wins and
    the other version counts as retired.
    """
    if events.height == 0:
        return pl.DataFrame(schema={"label": pl.String, "model_version": pl.Int64, "stage": pl.String})
    latest = (events.sort("changed_at", maintain_order=True)
              .group_by(["label", "model_version"], maintain_order=True)
              .agg(pl.col("stage").last(), pl.col("changed_at").last()))
    winner = (latest.filter(pl.col("stage") == APPROVED).sort("changed_at")
              .group_by("label", maintain_order=True).agg(pl.col("model_version").last().alias("_winner")))
    return (latest.join(winner, on="label", how="left")
            .with_columns(pl.when((pl.col("stage") == APPROVED) & (pl.col("model_version") != pl.col("_winner")))
                          .then(pl.lit(RETIRED)).otherwise(pl.col("stage")).alias("stage"))
            .select("label", "model_version", "stage"))


def stage_events(wh: Warehouse, label: str | None = None) -> pl.DataFrame:
    where = {"label": label} if label is not None else None
    return wh.read("model_stage_events", where=where)


def models_frame(wh: Warehouse, label: str | None = None, columns: list[str] | None = None) -> pl.DataFrame:
    """The ``models`` rows (every committed version), their ``stage`` derived from the stage history."""
    where = {"label": label} if label is not None else None
    if columns is not None:
        columns = list(dict.fromkeys(["label", "model_version", "stage", *columns]))
    frame = wh.read("models", columns=columns, where=where)
    derived = stages_from_history(stage_events(wh, label)).rename({"stage": "_derived"})
    return (frame.join(derived, on=["label", "model_version"], how="left")
            .with_columns(pl.coalesce("_derived", "stage").alias("stage")).drop("_derived")
            .sort(["label", "model_version"]))


def latest_model(wh: Warehouse, label: str) -> dict | None:
    """The label's newest model version (any stage), or None."""
    frame = models_frame(wh, label)
    return frame.row(-1, named=True) if frame.height else None


def get_model(wh: Warehouse, label: str, version: int | None = None) -> dict:
    frame = models_frame(wh, label)
    if frame.height == 0:
        raise NotFound(f"{label} has no model: train it first (`va train {label}`)")
    if version is None:
        return frame.row(-1, named=True)
    hit = frame.filter(pl.col("model_version") == int(version))
    if hit.height == 0:
        raise NotFound(f"{label} has no model version {version}; versions: {frame['model_version'].to_list()}")
    return hit.row(0, named=True)


def load_model(wh: Warehouse, label: str, version: int | None = None) -> LinearModel:
    return LinearModel.from_artifact(get_model(wh, label, version)["artifact"])


def stage_event(label: str, version: int, stage: str, previous: str | None, by: str, reason: str) -> dict:
    return {"label": label, "model_version": int(version), "stage": stage, "previous_stage": previous,
            "changed_by": by, "reason": reason, "changed_at": datetime.now(timezone.utc)}


def record_stage(wh: Warehouse, label: str, version: int, stage: str, previous: str | None, by: str,
                 reason: str) -> None:
    record_stages(wh, label, [stage_event(label, version, stage, previous, by, reason)])


def record_stages(wh: Warehouse, label: str, events: list[dict]) -> None:
    """Stage events in one commit (the truth), then the ``models.stage`` copy brought up to date."""
    wh.append("model_stage_events", events)
    sync_stage_copy(wh, label)


def sync_stage_copy(wh: Warehouse, label: str) -> bool:
    """Rewrite the label's ``models.stage`` from the history where it differs; True if it did.

    The rows are re-read on every rerun, so a version committed meanwhile is kept.
    """
    def current() -> tuple[pl.DataFrame, bool]:
        stored = wh.read("models", where={"label": label})
        derived = stages_from_history(stage_events(wh, label)).rename({"stage": "_derived"})
        merged = stored.join(derived, on=["label", "model_version"], how="left")
        stale = merged.filter(pl.col("_derived").is_not_null() & (pl.col("_derived") != pl.col("stage"))).height
        return merged.with_columns(pl.coalesce("_derived", "stage").alias("stage")).drop("_derived"), stale > 0

    _, stale = current()
    if not stale:
        return False
    wh.replace("models", {"label": label}, lambda: current()[0])
    return True


def label_encoder_id(wh: Warehouse, label: str, clip_encoder_id: str, features: str | None = None) -> str:
    """The embeddings a label trains on: ``features`` if given, else those of its latest model
    (a choice once made sticks, whoever trains next), else CLIP's."""
    if features is None:
        row = latest_model(wh, label)
        features = feature_set_of(row["encoder_id"]) if row is not None and row["encoder_id"] else "clip"
    return features_encoder_id(clip_encoder_id, features)


def failed_checks(row: dict) -> list[dict]:
    from va_core.checks import parse_report

    return [c.as_dict() for c in parse_report(row.get("checks_report")) if c.blocking and not c.passed]


def approval_refused(row: dict) -> str | None:
    """Why a version can never be approved (a blocking check failed), or None."""
    failed = failed_checks(row)
    if failed or row.get("checks_passed") is False:
        return "; ".join(f"{c['name']}: {c['message']}" for c in failed) or "its checks did not pass"
    return None


def clearly_worse(row: dict, served: dict | None) -> str | None:
    """Why ``row`` is clearly worse than the ``served`` version on the corpus estimate, or None.

    Clearly: the served version's estimate lies above the whole 90% interval of ``row``'s.
    A candidate with no estimate cannot be compared with a served one that has one.
    """
    if served is None or served.get("ap") is None or int(served["model_version"]) == int(row["model_version"]):
        return None
    v, s = int(row["model_version"]), int(served["model_version"])
    if row.get("ap") is None:
        return (f"v{v} has no corpus estimate to compare with the served v{s}'s AP {served['ap']:.3f} "
                "(label a round of the audit feed first)")
    if row["ap_high"] is not None and row["ap_high"] < served["ap"]:
        return (f"v{v}'s corpus AP {row['ap']:.3f} [{row['ap_low']:.3f}, {row['ap_high']:.3f}] is clearly below "
                f"the served v{s}'s {served['ap']:.3f}")
    return None


def approve(settings, label: str, version: int | None = None, by: str | None = None, reason: str = "",
            override: str | None = None) -> dict:
    """Approve a version (default: the latest); the previously approved one is retired.

    Refused, with the reasons, when a blocking check of that version failed, and when its
    corpus estimate is clearly below the served version's unless ``override`` gives a reason
    (recorded in the stage history).
    """
    if override is not None and (not isinstance(override, str) or not override.strip()):
        raise ReasonNeeded("an override needs a reason (why this version should be served anyway)")
    wh = Warehouse.from_settings(settings)
    validate_label(label)
    who = validate_person(by, "approver") if by is not None else login_name()
    with label_lock(settings, label):
        row = get_model(wh, label, version)
        v = int(row["model_version"])
        why = approval_refused(row)
        if why:
            raise ApprovalRefused(f"{label} v{v} cannot be approved: {why}")
        if row["stage"] == APPROVED:
            return {"label": label, "model_version": v, "stage": APPROVED, "retired": [], "changed": False}
        current = models_frame(wh, label).filter((pl.col("stage") == APPROVED) & (pl.col("model_version") != v))
        worse = clearly_worse(row, current.row(-1, named=True) if current.height else None)
        if worse and override is None:
            raise ReasonNeeded(f"{label} v{v} was not approved: {worse}; approving it anyway needs a reason "
                               "(why it should be served anyway)")
        if worse:
            reason = f"override: {override.strip()} ({worse})"
        retired = [int(r) for r in current["model_version"].to_list()]
        record_stages(wh, label, [*(stage_event(label, r, RETIRED, APPROVED, who, f"replaced by v{v}") for r in retired),
                                  stage_event(label, v, APPROVED, row["stage"], who, reason or "approved")])
    return {"label": label, "model_version": v, "stage": APPROVED, "retired": retired, "changed": True,
            "ap": row["ap"], "ap_low": row.get("ap_low"), "ap_high": row.get("ap_high"),
            "n_audit": row.get("n_audit"), "ap_method": row.get("ap_method"), "encoder_id": row["encoder_id"],
            "override": override.strip() if worse else None}


def retire(settings, label: str, version: int, by: str | None = None, reason: str = "") -> dict:
    wh = Warehouse.from_settings(settings)
    validate_label(label)
    who = validate_person(by, "approver") if by is not None else login_name()
    with label_lock(settings, label):
        row = get_model(wh, label, version)
        if row["stage"] == RETIRED:
            return {"label": label, "model_version": int(version), "stage": RETIRED, "changed": False}
        record_stage(wh, label, int(version), RETIRED, row["stage"], who, reason or "retired")
    return {"label": label, "model_version": int(version), "stage": RETIRED, "changed": True}


@dataclass(frozen=True)
class ApprovedModel:
    label: str
    model_version: int
    encoder_id: str
    model: LinearModel
    ap: float | None  # the corpus estimate
    label_events_version: int | None
    trained_at: datetime | None
    ap_low: float | None = None
    ap_high: float | None = None
    n_audit: int | None = None
    ap_method: str | None = None

    def as_dict(self) -> dict:
        return {"label": self.label, "model_version": self.model_version, "encoder_id": self.encoder_id,
                "ap": self.ap, "ap_low": self.ap_low, "ap_high": self.ap_high, "n_audit": self.n_audit,
                "ap_method": self.ap_method, "label_events_version": self.label_events_version, "dim": self.model.dim,
                "trained_at": self.trained_at.isoformat() if self.trained_at else None}


def approved_models(wh: Warehouse) -> list[ApprovedModel]:
    """The approved version of every label, ready to score: what serving loads."""
    frame = models_frame(wh).filter(pl.col("stage") == APPROVED)
    return [ApprovedModel(r["label"], int(r["model_version"]), r["encoder_id"], LinearModel.from_artifact(r["artifact"]),
                          r["ap"], r["label_events_version"], r["trained_at"], r.get("ap_low"), r.get("ap_high"),
                          r.get("n_audit"), r.get("ap_method"))
            for r in frame.iter_rows(named=True)]


def model_history(wh: Warehouse, label: str) -> list[dict]:
    """Every stage change of the label's committed versions, oldest first.

    A version whose training was interrupted has a claim (its candidate event) but no
    ``models`` row: it never existed for readers, so it is not listed.
    """
    return _committed_stage_events(wh, label).sort(["changed_at", "model_version"]).to_dicts()


def _committed_stage_events(wh: Warehouse, label: str) -> pl.DataFrame:
    """The label's stage events of versions that have a ``models`` row (a claim alone is no version)."""
    committed = wh.read("models", columns=["model_version"], where={"label": label})["model_version"]
    return stage_events(wh, label).filter(pl.col("model_version").is_in(committed.implode()))


def rollback_version(wh: Warehouse, label: str) -> int | None:
    """The version served before the one served now (what a roll back approves), or None.

    Read from the stage history: the latest approval of another version before the served
    version's own. None when nothing is served or nothing else was ever approved.
    """
    events = _committed_stage_events(wh, label)
    served = stages_from_history(events).filter(pl.col("stage") == APPROVED)["model_version"].to_list()
    if not served:
        return None
    approvals = events.filter(pl.col("stage") == APPROVED).sort("changed_at")
    served_at = approvals.filter(pl.col("model_version") == served[0])["changed_at"].max()
    before = approvals.filter((pl.col("changed_at") < served_at) & (pl.col("model_version") != served[0]))
    return int(before["model_version"][-1]) if before.height else None


def stage_summary(row: dict) -> str:
    checks = json.loads(row["checks_report"]) if row.get("checks_report") else []
    failed = [c["name"] for c in checks if c["blocking"] and not c["passed"]]
    return row["stage"] + (f" (blocked: {', '.join(failed)})" if failed else "")
