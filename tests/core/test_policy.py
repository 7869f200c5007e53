"""The bandits that choose where the next clips come from, and their persisted state."""
from __future__ import annotations

import pytest

from loop_corpus import make_home, sample_rows, truth_events
from va_core import policy, train
from va_core.errors import InputError
from va_core.labels import label_set, record_events


def test_round_robin_cycles_over_the_available_arms():
    b = policy.Bandit("round_robin", arms=("a", "b", "c"))
    assert [b.choose() for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]
    assert [b.choose(["a", "c"]) for _ in range(3)] == ["a", "c", "c"]


@pytest.mark.parametrize("name", ["ucb", "epsilon_greedy"])
def test_each_arm_is_tried_then_the_best_one_is_exploited(name):
    b = policy.Bandit(name, arms=("a", "b", "c"))
    rewards = {"a": 0.0, "b": 0.05, "c": -0.02}
    picks = []
    for _ in range(60):
        arm = b.choose()
        picks.append(arm)
        b.update(arm, rewards[arm])
    assert picks[:3] == ["a", "b", "c"]
    assert picks[-20:].count("b") >= 14
    assert b.counts == {a: picks.count(a) for a in "abc"}


def test_state_round_trips_and_choices_are_reproducible():
    b = policy.Bandit("epsilon_greedy", arms=("a", "b"), seed=5)
    for arm, r in [("a", 0.1), ("b", 0.0)]:
        b.choose()
        b.update(arm, r)
    clone = policy.Bandit.from_state(b.to_state())
    assert [clone.choose() for _ in range(10)] == [b.choose() for _ in range(10)]
    with pytest.raises(InputError, match="unknown policy"):
        policy.Bandit("thompson")


def test_next_clips_persists_and_rewards_the_change_in_ap(tmp_path):
    settings, wh, corpus = make_home(tmp_path / "home", n=600)
    record_events(settings, truth_events(corpus, "topic5", 5, sample_rows(corpus, 5, 3, 3)))
    first = policy.next_clips(settings, "topic5", 10)
    # no model yet: the text query bootstraps the label (the home's encoder has a text tower)
    assert first["source"] == "zero_shot" and len(first["clips"]) == 10 and first["reward"] is None
    labelled = set(label_set(wh, "topic5").labelled)
    assert not {c["clip_key"] for c in first["clips"]} & labelled
    record_events(settings, truth_events(corpus, "topic5", 5, sample_rows(corpus, 5, 12, 30, seed=1)))
    v1 = train.train_label(settings, "topic5")

    step = policy.next_clips(settings, "topic5", 10, policy="ucb")
    assert step["policy"] == "ucb" and step["source"] == "top_positive" and step["reward"] is None
    # asked again before retraining: the same source, none of the clips labelled since
    shown = [c["clip_key"] for c in step["clips"]]
    record_events(settings, [{"label": "topic5", "clip_key": k, "value": bool(corpus.topics[corpus.keys.index(k)] == 5),
                              "annotator": "expert"} for k in shown])
    again = policy.next_clips(settings, "topic5", 10)
    assert again["source"] == "top_positive" and not set(c["clip_key"] for c in again["clips"]) & set(shown)

    v2 = train.train_label(settings, "topic5")
    after = policy.next_clips(settings, "topic5", 10)
    assert after["reward"] == pytest.approx(v2.ap - v1.ap)
    assert after["counts"]["top_positive"] == 1
    assert after["means"]["top_positive"] == pytest.approx(v2.ap - v1.ap)
    assert after["source"] == "top_negative"  # UCB tries every arm once
    state = policy.load_state(wh, "topic5")  # what a restarted process reads
    assert state["pending"]["source"] == "top_negative" and state["history"][-1]["reward"] == pytest.approx(v2.ap - v1.ap)
    assert wh.read("policy_state", where={"label": "topic5"}).height == 1


def test_without_a_model_random_clips_supply_the_negatives_the_query_did_not_find(tmp_path):
    settings, wh, corpus = make_home(tmp_path / "home", n=600)
    record_events(settings, truth_events(corpus, "topic5", 5, sample_rows(corpus, 5, 3, 1)))
    choice = policy.next_clips(settings, "topic5", 10)
    assert choice["source"] == "random" and len(choice["clips"]) == 10
    assert not {c["clip_key"] for c in choice["clips"]} & set(label_set(wh, "topic5").labelled)
