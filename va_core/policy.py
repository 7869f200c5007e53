"""Which source the next batch of clips comes from: the paper's second experiment, made live.

A per-label multi-armed bandit (round-robin, epsilon-greedy or UCB) chooses among the
sources (the four feeds and zero-shot); the reward of a choice is the change in AP between
the model before the batch and the first model trained after it. The state lives in
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
from typing import Sequence

import numpy as np

from va_core.errors import InputError
from va_core.feeds import FEEDS, ZERO_SHOT, encoder_id_for, feed_seed, labelled_mask, rank, stored_feed, zero_shot
from va_core.labels import label_set, validate_label, warehouse_of

SOURCES = FEEDS + (ZERO_SHOT,)
POLICIES = ("round_robin", "epsilon_greedy", "ucb")
DEFAULT_POLICY = "ucb"
EPSILON = 0.2
UCB_C = 0.1  # AP changes are a few hundredths: exploration is scaled to match
HISTORY = 200


@dataclass
class Bandit:
    """A multi-armed bandit over named arms; its whole state is JSON."""

    policy: str = DEFAULT_POLICY
    arms: tuple[str, ...] = SOURCES
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

def load_state(settings_or_wh, label: str) -> dict | None:
    wh = warehouse_of(settings_or_wh)
    frame = wh.read("policy_state", where={"label": validate_label(label)})
    if frame.height == 0:
        return None
    return json.loads(frame.sort("updated_at").row(-1, named=True)["state_json"])


def save_state(settings_or_wh, label: str, state: dict) -> None:
    wh = warehouse_of(settings_or_wh)
    wh.replace("policy_state", {"label": label}, [{
        "label": label, "policy": state["bandit"]["policy"], "state_json": json.dumps(state),
        "updated_at": datetime.now(timezone.utc)}])


def _latest(wh, label):
    from va_core.registry import latest_model

    return latest_model(wh, label)


def _zero_shot_possible(settings, encoder_id: str | None) -> bool:
    from va_core.encoders import parse_spec

    return encoder_id_for(settings, encoder_id) == parse_spec(settings.encoder).encoder_id


def _random_clips(settings, label: str, k: int, exclude: Sequence[str], encoder_id: str | None) -> list[dict]:
    """Uniform unlabelled clips when there is no model yet (seeded by label and label count)."""
    from va_core.embeddings import load_corpus

    corpus = load_corpus(warehouse_of(settings), encoder_id_for(settings, encoder_id))
    candidates = np.flatnonzero(~labelled_mask(corpus, exclude))
    rows = rank("random", np.zeros(len(corpus)), candidates, k, feed_seed(label, len(exclude)))
    return [{"feed": "random", "rank": i + 1, "clip_key": corpus.keys[r], "score": None} for i, r in enumerate(rows)]


def _fetch(settings, label: str, source: str, k: int, exclude: list[str], has_model: bool,
           encoder_id: str | None) -> list[dict]:
    if source == ZERO_SHOT:
        return zero_shot(settings, label, k, encoder_id, exclude=exclude)
    if not has_model:
        return _random_clips(settings, label, k, exclude, encoder_id)
    return stored_feed(settings, label, source, k, exclude=exclude)


def next_clips(settings, label: str, k: int = 25, policy: str | None = None,
               encoder_id: str | None = None) -> dict:
    """The next ``k`` clips to label for ``label``, from the source the label's policy picks.

    Returns ``{"label", "source", "policy", "clips", "reward", "counts", "means"}``; ``reward``
    is the AP change credited to the previous choice by this call (None if none was).
    """
    wh = warehouse_of(settings)
    validate_label(label)
    if k <= 0:
        raise InputError(f"k must be positive, got {k}")
    state = load_state(wh, label) or {}
    if "bandit" in state and (policy is None or policy == state["bandit"]["policy"]):
        bandit = Bandit.from_state(state["bandit"])
    else:
        bandit = Bandit(policy or DEFAULT_POLICY, seed=feed_seed(label, 0))
        state = {"pending": None, "history": []}
    latest = _latest(wh, label)
    has_model = latest is not None
    version = int(latest["model_version"]) if has_model else 0
    ap_now = float(latest["ap"]) if has_model and latest["ap"] is not None else None
    pending = state.get("pending")
    reward = None
    if pending and version > pending["model_version"]:
        if pending["ap"] is not None and ap_now is not None:
            reward = ap_now - pending["ap"]
            bandit.update(pending["source"], reward)
        state["history"] = (state.get("history", []) + [{**pending, "reward": reward, "ap_after": ap_now,
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
        source = ZERO_SHOT if _zero_shot_possible(settings, encoder_id) and not enough_positives else "random"
        clips = _fetch(settings, label, source, k, exclude, has_model, encoder_id)
    else:
        available = list(FEEDS) + ([ZERO_SHOT] if _zero_shot_possible(settings, encoder_id) else [])
        source = pending["source"] if pending else None
        if source is not None and source in available:
            clips = _fetch(settings, label, source, k, exclude, has_model, encoder_id)
        while not clips and available:
            source = bandit.choose(available)
            clips = _fetch(settings, label, source, k, exclude, has_model, encoder_id)
            if not clips:  # this source has nothing unlabelled left
                available = [a for a in available if a != source]
    state["pending"] = {"source": source, "ap": ap_now, "model_version": version} if clips else None
    state["bandit"] = bandit.to_state()
    save_state(wh, label, state)
    for item in clips:
        item["source"] = source
    if clips:
        from va_core.feeds import _with_clip_info

        _with_clip_info(wh, [c for c in clips if "video_id" not in c])
    return {"label": label, "source": source, "policy": bandit.policy, "clips": clips, "reward": reward,
            "counts": dict(bandit.counts), "means": {a: bandit.mean(a) for a in bandit.arms}}
