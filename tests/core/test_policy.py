"""The bandits that choose where the next clips come from, and their persisted state."""
from __future__ import annotations

import pytest

from loop_corpus import make_home, sample_rows, truth_events
from va_core import policy, sources, train
from va_core.errors import InputError
from va_core.labels import label_set, record_events
from va_core.warehouse import Warehouse


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


def _answer(settings, corpus, label, topic, clips):
    """A truthful expert labels clips and records how each was chosen."""
    wh = Warehouse.from_settings(settings)
    record_events(wh, [{"label": label, "clip_key": c["clip_key"], "annotator": "expert", "source": c["source"],
                        "value": bool(corpus.topics[corpus.keys.index(c["clip_key"])] == topic),
                        **c["provenance"]} for c in clips])


def test_next_clips_asks_for_audit_labels_then_rewards_the_paired_change_of_the_corpus_estimate(tmp_path):
    settings, wh, corpus = make_home(tmp_path / "home", n=600)
    record_events(wh, truth_events(corpus, "topic5", 5, sample_rows(corpus, 5, 3, 3)))
    first = sources.next_clips(settings, "topic5", 10)
    # no model yet: the text query bootstraps the label (the home's encoder has a text tower)
    assert first["source"] == "zero_shot" and len(first["clips"]) == 10 and first["reward"] is None
    labelled = set(label_set(wh, "topic5").labelled)
    assert not {c["clip_key"] for c in first["clips"]} & labelled
    record_events(wh, truth_events(corpus, "topic5", 5, sample_rows(corpus, 5, 12, 30, seed=1)))
    v1 = train.train_label(settings, "topic5")
    assert v1.ap is None  # no audit label yet

    step = sources.next_clips(settings, "topic5", 40, policy="ucb")
    # the estimate that rewards every arm needs audit labels: the policy asks for them first
    assert step["policy"] == "ucb" and step["source"] == "audit" and step["reward"] is None
    assert all(c["provenance"]["draw_id"] == f"audit@v{v1.model_version}" for c in step["clips"])
    _answer(settings, corpus, "topic5", 5, step["clips"][:20])
    again = sources.next_clips(settings, "topic5", 10)  # asked again before retraining: same source, new clips
    assert again["source"] == "audit" and not {c["clip_key"] for c in again["clips"]} & {
        c["clip_key"] for c in step["clips"][:20]}
    _answer(settings, corpus, "topic5", 5, again["clips"])

    v2 = train.train_label(settings, "topic5")
    assert v2.n_audit == 30 and v2.ap is not None and v2.ap_low <= v2.ap <= v2.ap_high
    after = sources.next_clips(settings, "topic5", 10)
    paired = train.version_estimates(wh, "topic5", [v1.model_version, v2.model_version])
    expected = paired[v2.model_version].ap - paired[v1.model_version].ap
    assert after["reward"] == pytest.approx(expected)
    assert after["counts"]["audit"] == 1 and after["means"]["audit"] == pytest.approx(expected)
    state = policy.load_state(wh, "topic5")  # what a restarted process reads
    assert state["history"][-1]["reward"] == pytest.approx(expected)
    assert state["history"][-1]["paired_ap_before"] == pytest.approx(paired[v1.model_version].ap)
    # no event since v2 was trained: its stored estimate is used; after another label's event
    # the label_events version moves and it is recomputed on the same draws, to the same value
    assert paired[v2.model_version].ap == pytest.approx(v2.ap)
    record_events(wh, truth_events(corpus, "other", 1, [0]))
    again = train.version_estimates(wh, "topic5", [v2.model_version])
    assert again[v2.model_version].ap == pytest.approx(v2.ap, abs=1e-9)
    assert wh.read("policy_state", where={"label": "topic5"}).height == 1


def test_without_a_model_random_clips_supply_the_negatives_the_query_did_not_find(tmp_path):
    settings, wh, corpus = make_home(tmp_path / "home", n=600)
    record_events(wh, truth_events(corpus, "topic5", 5, sample_rows(corpus, 5, 3, 1)))
    choice = sources.next_clips(settings, "topic5", 10)
    assert choice["source"] == "random" and len(choice["clips"]) == 10
    assert not {c["clip_key"] for c in choice["clips"]} & set(label_set(wh, "topic5").labelled)


def test_an_imported_label_without_a_text_embedding_is_labelled_from_random_clips_never_zero_shot(tmp_path):
    from tests.support.va_dataset import FixtureLabel, make_va_dataset
    from va_core.config import Settings
    from va_core.experiments.importer import ENCODER_ID, import_dataset

    fixture = make_va_dataset(tmp_path / "dataset", n_clips=600, dim=24, labels=(FixtureLabel("action", 0.2),),
                              cmp_size=100, seed=5)
    settings = Settings.from_env(home=tmp_path / "home", encoder=ENCODER_ID)
    import_dataset(settings, fixture.root, progress=False)
    wh = Warehouse.from_settings(settings)
    zero_shot = sources.source("zero_shot")
    # the dataset came with a text embedding for "action" only; its encoder has no text tower
    assert zero_shot.usable(settings, "action", None) and not zero_shot.usable(settings, "plain", None)

    truth = dict(zip(fixture.keys, fixture.truth["action"].tolist()))
    chosen = []
    for _ in range(8):
        choice = sources.next_clips(settings, "plain", 20, policy="round_robin")
        chosen.append(choice["source"])
        record_events(wh, [{"label": "plain", "clip_key": c["clip_key"], "annotator": "expert",
                            "source": c["source"], "value": truth[c["clip_key"]], **c["provenance"]}
                           for c in choice["clips"]])
        try:
            train.train_label(settings, "plain")
        except InputError:  # no model before 3 positives and 3 negatives
            pass
    assert chosen[0] == "random" and "zero_shot" not in chosen
    assert set(chosen) - {"random", "audit"}, chosen  # the policy chose among the other arms too
    assert policy.load_state(wh, "plain")["bandit"]["counts"]["zero_shot"] == 0
