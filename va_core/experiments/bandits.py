"""Experiment 2's decision process: at each step, which source the next d labels come from.

Three sources (arms) hold labelled clips in a fixed order: ``agg`` (the experts' own
session, replayed), ``zero_shot`` and ``random`` (the cmp lists). A step draws d clips
from the chosen arm, adds them to the training set, retrains, and measures AP; the
bandits learn from the change in AP. This module follows the paper's released decision
process step for step, because its numbers depend on every detail:

- an arm gives its next d clips keeping its own positive rate (at least one positive);
- the clips drawn are removed from every arm (positives from positives, negatives from
  negatives); an arm that cannot give d clips more is exhausted after this draw;
- every algorithm but GreedyOracle first tries each arm once, in order;
- epsilon-greedy and UCB start with a warm-up: each arm evaluated alone from the empty
  set; the worst arm becomes the "previous choice" and rewards are AP minus the AP of
  the previous step's model;
- randomness is numpy's legacy generator seeded with ``seed + step``.

The one departure: an arm left with no clip at all counts as exhausted (the reference
would divide by zero); the run stops early, with the reason, when every arm is exhausted
or a training set cannot be fitted, instead of raising.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import log, sqrt
from typing import Callable

import numpy as np

from va_core.experiments.dataset import AggLabels, Checkpoint
from va_core.experiments.protocol import CannotTrain, Score

__all__ = ["ALGORITHMS", "Sources", "agg_pool", "cmp_pool"]

CHOICES = ("agg", "zero_shot", "random")


@dataclass(frozen=True)
class Pool:
    """An arm's remaining clips, positives and negatives each in draw order."""

    pos: tuple[str, ...]
    neg: tuple[str, ...]

    def __post_init__(self):
        both = set(self.pos) & set(self.neg)
        if both:
            raise CannotTrain(f"{len(both)} clip(s) are both positive and negative in one source, e.g. {sorted(both)[:3]}")

    def __len__(self) -> int:
        return len(self.pos) + len(self.neg)

    def head(self, n: int) -> "Pool":
        """The next n clips, keeping the arm's positive rate (at least one positive)."""
        rate = len(self.pos) / len(self)
        n_pos = min(len(self.pos), max(round(rate * n), 1))
        n_neg = min(len(self.neg), n - n_pos)
        return Pool(self.pos[:n_pos], self.neg[:n_neg])

    def minus(self, other: "Pool") -> "Pool":
        drop_pos, drop_neg = set(other.pos), set(other.neg)
        return Pool(tuple(k for k in self.pos if k not in drop_pos), tuple(k for k in self.neg if k not in drop_neg))

    def plus(self, other: "Pool") -> "Pool":
        have_pos, have_neg = set(self.pos), set(self.neg)
        return Pool(self.pos + tuple(k for k in other.pos if k not in have_pos),
                    self.neg + tuple(k for k in other.neg if k not in have_neg))


def cmp_pool(items: list[tuple[str, bool]], drop: frozenset[str]) -> Pool:
    return Pool(tuple(k for k, v in items if v and k not in drop), tuple(k for k, v in items if not v and k not in drop))


def agg_pool(agg: AggLabels, drop: frozenset[str], checkpoints: list[Checkpoint]) -> Pool:
    """The experts' session as an arm: snapshot by snapshot, new clips in a seeded shuffle.

    Each snapshot's clips are shuffled (numpy seed 0: sorted positives, then sorted
    negatives), labelled with the aggregated labels, and appended when the snapshot is
    larger than what the arm already holds.
    """

    def from_snapshot(snap: Checkpoint) -> Pool:
        rs = np.random.RandomState(0)
        order = [str(k) for k in rs.permutation(sorted(snap.pos))] + [str(k) for k in rs.permutation(sorted(snap.neg))]
        return Pool(tuple(k for k in order if k in agg.pos and k not in drop),
                    tuple(k for k in order if k in agg.neg and k not in drop))

    if not checkpoints:
        return Pool((), ())
    pool = from_snapshot(checkpoints[0])
    for snap in checkpoints[1:]:
        if len(snap) > len(pool):
            pool = pool.plus(from_snapshot(snap).minus(pool))
    return pool


class Sources:
    """The training set drawn so far and what each arm has left."""

    def __init__(self, pools: dict[str, Pool | None]):
        self.pools = {name: (p if p is not None and len(p) else None) for name, p in pools.items()}
        self.pos: frozenset[str] = frozenset()
        self.neg: frozenset[str] = frozenset()

    def copy(self) -> "Sources":
        other = Sources({})
        other.pools, other.pos, other.neg = dict(self.pools), self.pos, self.neg
        return other

    def has_data(self, arm: str) -> bool:
        return self.pools[arm] is not None

    def extend(self, arm: str, d: int) -> tuple[frozenset[str], frozenset[str]]:
        """Draw up to d clips from ``arm``; an exhausted arm leaves the set as it is."""
        pool = self.pools[arm]
        if pool is None:
            return self.pos, self.neg
        new = pool.head(d)
        self.pools[arm] = None if len(new) < d or len(new) == len(pool) else pool.minus(new)
        pos, neg = self.pos | set(new.pos), self.neg | set(new.neg)
        both = pos & neg
        if both:
            raise CannotTrain(f"the {arm} clips contradict clips already drawn: {len(both)} clip(s) would be "
                              f"both positive and negative, e.g. {sorted(both)[:3]}")
        self.pos, self.neg = frozenset(pos), frozenset(neg)
        for name, other in self.pools.items():
            if other is not None:
                left = other.minus(new)
                self.pools[name] = left if len(left) else None
        return self.pos, self.neg


@dataclass(frozen=True)
class Step:
    step: int
    choice: str | None
    score: Score | None
    reason: str | None = None


class Exhausted(Exception):
    pass


class DecisionProcess:
    """Round-robin-style skeleton: try each arm once, then ask :meth:`select`."""

    name = "DecisionProcess"

    def __init__(self, sources: Sources, evaluate: Callable[[frozenset, frozenset], Score], d: int = 25,
                 seed: int = 1, choices: tuple[str, ...] = CHOICES):
        self.sources = sources
        self.evaluate = evaluate
        self.d = d
        self.seed_base = seed
        self.choices = choices
        self.i = 0
        self.history: list[str] = []
        self.exhausted: set[str] = set()

    @property
    def params(self) -> str:
        return ""

    @property
    def available(self) -> tuple[str, ...]:
        return tuple(c for c in self.choices if c not in self.exhausted)

    @property
    def seed(self) -> int:
        return self.seed_base + self.i

    def run(self, steps: int) -> list[Step]:
        out: list[Step] = []
        self.warmup()
        for _ in range(steps):
            try:
                choice = self.select_outer()
            except (Exhausted, CannotTrain) as exc:
                out.append(Step(self.i, None, None, str(exc)))
                break
            try:
                score = self.act(choice)
            except CannotTrain as exc:
                out.append(Step(self.i, choice, None, str(exc)))
                break
            self.update(choice, score)
            self.history.append(choice)
            out.append(Step(self.i, choice, score))
            self.i += 1
        return out

    def act(self, choice: str) -> Score:
        pos, neg = self.sources.extend(choice, self.d)
        return self.evaluate(pos, neg)

    def select_outer(self) -> str:
        if self.i < len(self.choices):
            return self.choices[self.i]
        return self._first_with_data()

    def _first_with_data(self) -> str:
        while True:
            choice = self.select()
            if self.sources.has_data(choice):
                return choice
            self.exhausted.add(choice)
            if not self.available:
                raise Exhausted(f"every source is exhausted after {self.i} steps")

    def select(self) -> str:
        raise NotImplementedError

    def warmup(self) -> None:
        pass

    def update(self, choice: str, score: Score) -> None:
        pass


class RoundRobin(DecisionProcess):
    name = "RoundRobin"

    def select(self) -> str:
        return self.available[self.i % len(self.available)]


class GreedyOracle(DecisionProcess):
    """Looks ahead: tries every arm and takes the one whose model would score best."""

    name = "GreedyOracle"

    def select_outer(self) -> str:
        return self._first_with_data()

    def select(self) -> str:
        best, best_ap = None, float("-inf")
        failures = []
        for choice in self.available:
            saved = self.sources.copy()
            try:
                ap = self.act(choice).ap_mean
                if ap > best_ap:
                    best, best_ap = choice, ap
            except CannotTrain as exc:
                failures.append(f"{choice}: {exc}")
            finally:
                self.sources = saved
        if best is None:
            raise CannotTrain("no source gives a classifier: " + "; ".join(failures))
        return best


class EpsilonGreedyMean(DecisionProcess):
    """Exploit the arm with the best mean reward; explore uniformly with probability epsilon."""

    name = "EpsilonGreedyMean"

    def __init__(self, *args, epsilon: float = 0.2, **kwargs):
        super().__init__(*args, **kwargs)
        self.epsilon = epsilon
        self.rewards: dict[str, list[float]] = {c: [] for c in self.choices}
        self.aps: dict[str, list[float]] = {c: [] for c in self.choices}

    @property
    def params(self) -> str:
        return f"epsilon={self.epsilon:g}"

    @staticmethod
    def _mean(values: list[float]) -> float:
        finite = [v for v in values if not np.isnan(v)]
        return float(np.mean(finite)) if finite else 0.0

    def best_choice(self) -> str:
        return max((self._mean(self.rewards[c]), c) for c in self.available)[1]

    def select(self) -> str:
        rs = np.random.RandomState(self.seed)
        if rs.rand() < self.epsilon:
            return str(rs.choice(self.available))
        return self.best_choice()

    def warmup(self) -> None:
        """Each arm alone from the empty set; a failure counts as AP 0, as in the reference."""
        values = {}
        for choice in self.choices:
            saved = self.sources.copy()
            try:
                value = self.act(choice).ap_mean
            except CannotTrain:
                value = 0.0
            finally:
                self.sources = saved
            self.aps[choice].append(value)
            values[choice] = value
        worst_value, worst = min((v, c) for c, v in values.items())
        self.history.append(worst)
        for choice in self.choices:
            self.rewards[choice].append(values[choice] - worst_value)

    def update(self, choice: str, score: Score) -> None:
        previous = self.aps[self.history[-1]][-1]
        self.rewards[choice].append(score.ap_mean - previous)
        self.aps[choice].append(score.ap_mean)


class UCBMean(EpsilonGreedyMean):
    """Upper confidence bound on the mean reward: mean + c * sqrt(log(t) / pulls)."""

    name = "UCBMean"

    def __init__(self, *args, c: float = 1e-2, **kwargs):
        kwargs.pop("epsilon", None)
        super().__init__(*args, **kwargs)
        self.c = c
        self.pulls = {choice: 0 for choice in self.choices}

    @property
    def params(self) -> str:
        return f"c={self.c:g}"

    def select(self) -> str:
        t = self.i + 1
        best, best_score = None, float("-inf")
        for choice, count in self.pulls.items():
            if choice not in self.available:
                continue
            if count == 0:
                return choice
            bound = self._mean(self.rewards[choice]) + self.c * sqrt(log(t) / count)
            if bound > best_score:
                best, best_score = choice, bound
        return best

    def update(self, choice: str, score: Score) -> None:
        self.pulls[choice] += 1
        super().update(choice, score)


# The configurations of the paper's Experiment 2 (its notebook's table of processes).
ALGORITHMS: tuple[tuple[type[DecisionProcess], dict], ...] = (
    (RoundRobin, {}),
    (GreedyOracle, {}),
    (EpsilonGreedyMean, {"epsilon": 0.1}),
    (EpsilonGreedyMean, {"epsilon": 0.25}),
    (EpsilonGreedyMean, {"epsilon": 0.5}),
    (UCBMean, {"c": 0.01}),
    (UCBMean, {"c": 0.1}),
)
