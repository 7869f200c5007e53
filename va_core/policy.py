"""Which source the next batch of clips comes from: the paper's second experiment, made live.

A per-label multi-armed bandit (round-robin, epsilon-greedy or UCB) chooses among the
sources that are its arms (the registry's, ``va_core.sources.arms``: the feeds, ``audit``
among them, and zero-shot; the registry calls :func:`choose_next` with them); the reward of a choice is the change
in the corpus estimate of AP (``va_core.quality``) between the model before the batch and the
first model trained after it, both estimated on the same labelled draws (a paired
difference: how the sample grew does not count as improvement). While the latest model's
estimate rests on too few audit labels, the policy asks for an audit round: without it no
reward can be measured. The state lives in
``policy_state`` (one row per label), so it survives restarts and is shared by the UI,
the CLI and the orchestrator.

A chosen source stays pending until a new model version exists: asking again before
retraining returns more clips from the same source, so each reward is attributed to the
one source whose clips were labelled.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Sequence

import numpy as np

from va_core import quality
from va_core.errors import InputError
from va_core.feeds import AUDIT, RANDOM, ZERO_SHOT, feed_seed, with_clip_info
from va_core.labels import label_set, validate_label
from va_core.warehouse import Warehouse

__all__ = ["Bandit", "POLICIES", "DEFAULT_POLICY", "choose_next", "load_state", "save_state"]

POLICIES = ("round_robin", "epsilon_greedy", "ucb")
DEFAULT_POLICY = "ucb"
EPSILON = 0.2
UCB_C = 0.1  # AP changes are a few hundredths: exploration is scaled to match
HISTORY = 200


@dataclass
class Bandit:
    """A multi-armed bandit over named arms; its whole state is JSON."""

    policy: str = DEFAULT_POLICY
    arms: tuple[str, ...] = ()
    counts: dict = field(default_factory=dict)
    sums: dict = field(default_factory=dict)
    steps: int = 0
    seed: int = 0
    epsilon: float = EPSILON
    c: float = UCB_C

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise InputError(f"unknown policy {self.policy!r}; policies are: {', '.join(POLICIES)}")
        self.arms = tuple(self.arms)
        for arm in self.arms:
            self.counts.setdefault(arm, 0)
            self.sums.setdefault(arm, 0.0)

    def mean(self, arm: str) -> float:
        return self.sums[arm] / self.counts[arm] if self.counts[arm] else 0.0

    def choose(self, available: Sequence[str] | None = None) -> str:
        arms = [a for a in self.arms if available is None or a in available]
        if not arms:
            raise InputError("no source of clips is available")
        # a fresh generator per step: the same state always makes the same choice
        rng = np.random.default_rng([self.seed, self.steps])
        self.steps += 1
        if self.policy == "round_robin":
            start = (self.steps - 1) % len(self.arms)
            ring = self.arms[start:] + self.arms[:start]
            return next(a for a in ring if a in arms)
        untried = [a for a in arms if self.counts[a] == 0]
        if untried:
            return untried[0]
        if self.policy == "epsilon_greedy":
            if rng.random() < self.epsilon:
                return arms[int(rng.integers(len(arms)))]
            return max(arms, key=lambda a: (self.mean(a), -arms.index(a)))
        total = sum(self.counts[a] for a in arms)
        return max(arms, key=lambda a: (self.mean(a) + self.c * math.sqrt(2 * math.log(total) / self.counts[a]),
                                        -arms.index(a)))

    def update(self, arm: str, reward: float) -> None:
        if arm not in self.counts:
            raise InputError(f"unknown arm {arm!r}")
        self.counts[arm] += 1
        self.sums[arm] += float(reward)

    def to_state(self) -> dict:
        return {"policy": self.policy, "arms": list(self.arms), "counts": self.counts, "sums": self.sums,
                "steps": self.steps, "seed": self.seed, "epsilon": self.epsilon, "c": self.c}

    @classmethod
    def from_state(cls, state: dict) -> "Bandit":
        return cls(state["policy"], tuple(state["arms"]), dict(state["counts"]), dict(state["sums"]),
                   int(state["steps"]), int(state.get("seed", 0)), float(state.get("epsilon", EPSILON)),
                   float(state.get("c", UCB_C)))


# -- persisted per label -----------------------------------------------------------

def load_state(wh: Warehouse, label: str) -> dict | None:
    frame = wh.read("policy_state", where={"label": label})
    if frame.height == 0:
        return None
    return json.loads(frame.sort("updated_at").row(-1, named=True)["state_json"])


def save_state(wh: Warehouse, label: str, state: dict) -> None:
    wh.replace("policy_state", {"label": label}, [{
        "label": label, "policy": state["bandit"]["policy"], "state_json": json.dumps(state),
        "updated_at": datetime.now(timezone.utc)}])


def _latest(wh, label):
    from va_core.registry import latest_model

    return latest_model(wh, label)


# fetch(source, k, exclude, model_version) -> feed items; model_version None before the first model
Fetch = Callable[[str, int, list, "int | None"], list]


def choose_next(settings, label: str, k: int, arms: Sequence[str], usable: Sequence[str], fetch: Fetch,
                policy: str | None = None, encoder_id: str | None = None) -> dict:
    """The next ``k`` clips to label for ``label``, from the source the label's policy picks.

    ``arms``: every source it may choose (``va_core.sources.arms``, which calls this with
    them); ``usable``: those that can answer here (zero-shot needs the configured encoder's
    text tower); ``fetch``: how to get clips from one of them.
    Returns ``{"label", "source", "policy", "clips", "reward", "counts", "means"}``; ``reward``
    is the AP change credited to the previous choice by this call (None if none was).
    """
    wh = Warehouse.from_settings(settings)
    validate_label(label)
    if k <= 0:
        raise InputError(f"k must be positive, got {k}")
    state = load_state(wh, label) or {}
    if "bandit" in state and (policy is None or policy == state["bandit"]["policy"]):
        bandit = Bandit.from_state(state["bandit"])
    else:
        bandit = Bandit(policy or DEFAULT_POLICY, arms=tuple(arms), seed=feed_seed(label, 0))
        state = {"pending": None, "history": []}
    for arm in arms:  # a state saved before a source existed learns about it too
        if arm not in bandit.arms:
            bandit.arms += (arm,)
            bandit.counts.setdefault(arm, 0)
            bandit.sums.setdefault(arm, 0.0)
    latest = _latest(wh, label)
    has_model = latest is not None
    version = int(latest["model_version"]) if has_model else 0
    ap_now = float(latest["ap"]) if has_model and latest["ap"] is not None else None
    pending = state.get("pending")
    reward = None
    if pending and version > pending["model_version"]:
        before = after = None
        if pending["model_version"] >= 1:
            from va_core.train import version_estimates

            paired = version_estimates(wh, label, [pending["model_version"], version], encoder_id=encoder_id)
            before, after = paired[pending["model_version"]].ap, paired[version].ap
        if before is not None and after is not None:
            reward = after - before
            bandit.update(pending["source"], reward)
        state["history"] = (state.get("history", []) + [{**pending, "reward": reward, "ap_after": ap_now,
                                                          "paired_ap_before": before, "paired_ap_after": after,
                                                          "model_version_after": version}])[-HISTORY:]
        pending = None
    current = label_set(wh, label)
    exclude = current.labelled
    clips: list[dict] = []
    if not has_model:
        # Nothing to learn a choice from yet: bootstrap from the text query, as the paper does.
        # A good query can fill the first rounds with positives only; then random clips (nearly
        # all negatives for a rare concept) supply the negatives a first model needs.
        from va_core.learn import MIN_PER_CLASS

        enough_positives = current.n_pos >= MIN_PER_CLASS and current.n_neg < MIN_PER_CLASS
        source = ZERO_SHOT if ZERO_SHOT in usable and not enough_positives else RANDOM
        clips = fetch(source, k, exclude, None)
    else:
        available = [a for a in arms if a in usable]
        source = pending["source"] if pending else None
        if source is None and latest.get("ap_method") != quality.METHOD:
            source = AUDIT  # the estimate that rewards every arm needs audit labels first
        if source is not None and source in available:
            clips = fetch(source, k, exclude, version)
        while not clips and available:
            source = bandit.choose(available)
            clips = fetch(source, k, exclude, version)
            if not clips:  # this source has nothing unlabelled left
                available = [a for a in available if a != source]
    state["pending"] = {"source": source, "ap": ap_now, "model_version": version} if clips else None
    state["bandit"] = bandit.to_state()
    save_state(wh, label, state)
    for item in clips:
        item["source"] = source
    if clips:
        with_clip_info(wh, [c for c in clips if "video_id" not in c])
    return {"label": label, "source": source, "policy": bandit.policy, "clips": clips, "reward": reward,
            "counts": dict(bandit.counts), "means": {a: bandit.mean(a) for a in bandit.arms}}
