"""The released dataset format: generated fixtures, the reader, and `va import-va-dataset`."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from va_cli.main import main
from va_core.errors import InputError, NotFound
from va_core.experiments.dataset import AggItem, VADataset
from va_core.warehouse import Warehouse
from tests.support.va_dataset import FixtureLabel, make_va_dataset
from va_core.experiments.importer import ENCODER_ID, NO_VIDEO, votes_of
from va_core.labels import stored_text_embedding

LABELS = (FixtureLabel("action", 0.2, agg_size=120), FixtureLabel("sci-fi", 0.1, agg_size=80))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("released")
    fixture = make_va_dataset(root, n_clips=600, dim=24, labels=LABELS, cmp_size=100, seed=3)
    return fixture, VADataset(root)


def test_fixture_has_the_released_structure(dataset):
    fixture, ds = dataset
    ds.validate()
    assert ds.labels() == ["action", "sci-fi"] and ds.shape == (600, 24)
    shots = ds.shots()
    assert (shots["key"] == shots["yt_id"] + "|" + shots["frame_in"].cast(pl.String)).all()
    assert shots["cluster_index"].is_between(0, 9).all()
    ordered_shots = shots.sort("yt_id", "frame_in")
    follows = ordered_shots.group_by("yt_id").agg(
        ((pl.col("frame_in").shift(-1) - pl.col("frame_out")).drop_nulls() == 1).all().alias("ok"))
    assert follows["ok"].all()  # shots of a video are consecutive frame ranges

    for lab in LABELS:
        agg = ds.agg(lab.name)
        assert len(agg.items) == lab.agg_size
        for item in agg.items:
            assert set(item.votes) == {"A", "B", "C"}
            assert item.pos_cnt == sum(item.votes.values()) and item.agg == (item.pos_cnt >= 2)
        snaps = ds.checkpoints(lab.name)
        for before, after in zip(snaps, snaps[1:]):
            assert len(after) > len(before) and (before.pos | before.neg) <= (after.pos | after.neg)
        assert snaps[-1].pos | snaps[-1].neg == agg.pos | agg.neg

        lists = ds.cmp(lab.name)
        assert len(lists["zero_shot"]) == len(lists["random"]) == 100
        assert len({k for k, _ in lists["random"]}) == 100
        text = ds.text_embedding(lab.name)
        zs_keys = [k for k, _ in lists["zero_shot"]]
        m = ds.embeddings(zs_keys).astype(np.float64)
        cos = m @ text / np.linalg.norm(m, axis=1) / np.linalg.norm(text)
        assert (np.diff(cos) <= 1e-6).all()  # zero-shot list in decreasing cosine to the text
        # the concept is in the embeddings: true positives lean towards the label's text
        all_cos = ds.embeddings(fixture.keys).astype(np.float64) @ text
        truth = fixture.truth[lab.name]
        assert all_cos[truth].mean() > all_cos[~truth].mean() + 0.05


def test_reader_errors_name_what_is_wrong(dataset, tmp_path):
    _, ds = dataset
    with pytest.raises(NotFound, match="does not exist"):
        VADataset(tmp_path / "nowhere")
    with pytest.raises(InputError, match="embeddings.h5.*shot-data.csv.*text-embeddings.json.*agg/"):
        VADataset(tmp_path).validate()
    with pytest.raises(NotFound, match="nope.*labels are: action, sci-fi"):
        ds.select_labels(["nope"])
    with pytest.raises(NotFound, match="are not in shot-data.csv"):
        ds.embeddings(["no-such|0"])
    broken = tmp_path / "broken"
    (broken / "agg").mkdir(parents=True)
    (broken / "agg" / "x.json").write_text('{"data": [{"key": "a|0", "agg": "yes"}]}')
    with pytest.raises(InputError, match="agg='yes'"):
        VADataset(broken).agg("x")
    (broken / "agg" / "x.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        VADataset(broken).agg("x")
    with pytest.raises(InputError, match="checkpoints/x.json"):
        VADataset(broken).select_labels(["x"])


def test_votes_are_reconstructed_only_where_the_file_allows():
    named = votes_of(AggItem("k|0", True, 2, {"B": True, "A": False, "C": True}))
    assert named == ([("va-dataset:B", True), ("va-dataset:A", False), ("va-dataset:C", True)], "named")
    votes, how = votes_of(AggItem("k|0", False, 0, None))
    assert how == "from_pos_cnt" and [v for _, v in votes] == [False] * 3 and len({a for a, _ in votes}) == 3
    assert votes_of(AggItem("k|0", True, 3, None))[1] == "from_pos_cnt"
    assert votes_of(AggItem("k|0", True, 2, None)) == ([("va-dataset:agg", True)], "aggregate_only")
    assert votes_of(AggItem("k|0", True, 0, None))[1] == "aggregate_only"  # pos_cnt contradicts agg


def test_import_builds_a_warehouse_on_the_dataset_and_is_idempotent(dataset, settings, wh, capsys):
    from va_core.labels import label_set

    fixture, ds = dataset
    assert main(["import-va-dataset", str(ds.root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    n_videos = ds.shots()["yt_id"].n_unique()
    assert report["clips_added"] == 600 and report["videos_added"] == n_videos
    assert report["labels"] == {"action": 3 * 120, "sci-fi": 3 * 80}

    videos = wh.read("videos")
    assert videos.height == n_videos and (videos["status"] == NO_VIDEO).all()
    assert videos["uri"].str.starts_with("https://www.youtube.com/watch?v=").all()
    clips = wh.read("clips").sort("clip_key")
    shots = ds.shots().sort("key")
    assert clips["clip_key"].to_list() == shots["key"].to_list()
    assert np.allclose(clips["start_s"].to_numpy(), shots["start"].to_numpy())

    emb = wh.arrow("clip_embeddings", where={"encoder_id": ENCODER_ID}).sort_by("clip_key")
    from va_core.warehouse import embedding_matrix

    matrix = embedding_matrix(emb.column("embedding"))
    raw = ds.embeddings(emb.column("clip_key").to_pylist())
    np.testing.assert_allclose(matrix, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)
    clusters = wh.read("clip_clusters").sort("clip_key")
    assert clusters["cluster_index"].to_list() == shots["cluster_index"].to_list()

    for lab in LABELS:
        agg = ds.agg(lab.name)
        ls = label_set(wh, lab.name)
        assert set(ls.positives) == agg.pos and set(ls.negatives) == agg.neg
        expected = np.mean([i.pos_cnt in (0, 3) for i in agg.items])
        assert ls.agreement == pytest.approx(expected)
        events = wh.read("label_events", where={"label": lab.name})
        assert (events["source"] == "import").all()
        assert set(events["annotator"].unique()) == {"va-dataset:A", "va-dataset:B", "va-dataset:C"}

    assert json.loads((settings.home / "config.json").read_text())["encoder"] == ENCODER_ID
    text = stored_text_embedding(settings, "action", ENCODER_ID)
    expected = ds.text_embedding("action")
    np.testing.assert_allclose(text, expected / np.linalg.norm(expected), atol=1e-6)

    # An import cut short after writing one video's clips but not its videos row is
    # completed by the next run, without duplicates; finished parts are not written again.
    victim = videos["video_id"][0]
    wh.delete("videos", {"video_id": victim})
    n_events = wh.count("label_events")
    assert main(["import-va-dataset", str(ds.root), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["videos_added"] == 1 and again["videos_already"] == n_videos - 1
    assert again["labels"] == {} and sorted(again["labels_already"]) == ["action", "sci-fi"]
    assert wh.count("clips") == 600 and wh.count("clip_embeddings") == 600 and wh.count("videos") == n_videos
    assert wh.count("label_events") == n_events


def test_an_imported_home_trains_and_feeds_with_the_datasets_own_embeddings(dataset, settings, monkeypatch, capsys):
    wh = Warehouse.from_settings(settings)
    fixture, ds = dataset
    assert main(["import-va-dataset", str(ds.root), "--json"]) == 0
    capsys.readouterr()
    monkeypatch.delenv("VA_ENCODER")  # the home's recorded encoder applies, as for a user
    assert main(["train", "action", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["encoder_id"] == ENCODER_ID and trained["model_version"] == 1
    from va_core.registry import load_model

    assert load_model(wh, "action").params["has_query"]  # the trainer started from the label's text embedding
    # with an audit round the corpus estimate chooses between starting from the query or not
    from va_core.sources import get_feed
    from va_core.labels import provenance_of, record_events
    from va_core.config import Settings
    from va_core.train import train_label

    home = Settings.from_env(home=settings.home)  # the home's own encoder, as the commands above use it
    truth = dict(zip(fixture.keys, fixture.truth["action"].tolist()))
    audit = get_feed(home, "action", "audit", k=120)
    record_events(wh, [{"label": "action", "clip_key": c["clip_key"], "value": truth[c["clip_key"]],
                        "source": "audit", **provenance_of(c)} for c in audit], annotator="expert")
    audited = train_label(home, "action")
    params = load_model(wh, "action", audited.model_version).params
    assert audited.n_audit >= 100 and params["chosen_by"] == "corpus estimate"
    estimates = params["estimates"]
    # ... keeping the query's model unless the other is better beyond the draws' noise
    gain = params["gain_without_query"]
    assert gain["point"] == pytest.approx(estimates["without_query"] - estimates["with_query"], abs=1e-9)
    assert params["has_query"] == (not gain["low"] > 0) and gain["low"] <= gain["point"] <= gain["high"]
    # the build fits and estimates the two candidates on two threads: each is what it is alone
    from dataclasses import replace

    from va_core import train
    from va_core.embeddings import load_corpus

    ls = train.label_set(wh, "action")
    data = train.training_data(ls, load_corpus(wh, ENCODER_ID), home)
    alone = {name: train.estimate_quality(wh, ls, load_corpus(wh, ENCODER_ID), train.fit_classifier(candidate), data).ap
             for name, candidate in (("with_query", data), ("without_query", replace(data, query=None)))}
    assert alone == estimates
    # zero-shot ranks by the dataset's stored text embedding of the label
    assert main(["feeds", "sci-fi", "--feed", "zero_shot", "-k", "5", "--json"]) == 0
    feed = json.loads(capsys.readouterr().out)
    keys = [c["clip_key"] for c in feed["feeds"]["zero_shot"]]
    text = stored_text_embedding(settings, "sci-fi", ENCODER_ID)
    from va_core.embeddings import load_corpus

    corpus = load_corpus(wh, ENCODER_ID)
    labelled = set(ds.agg("sci-fi").pos | ds.agg("sci-fi").neg)
    order = [corpus.keys[i] for i in np.argsort(-(corpus.matrix @ text)) if corpus.keys[i] not in labelled]
    assert keys == order[:5]
    # free-text search needs a text tower the dataset does not ship: a clear refusal
    assert main(["search", "a car chase", "--json"]) == 2
    assert "embeddings-only" in json.loads(capsys.readouterr().out)["error"]


def test_import_refuses_a_folder_that_is_not_the_dataset(tmp_path, settings, capsys):
    (tmp_path / "agg").mkdir()
    assert main(["import-va-dataset", str(tmp_path), "--json"]) == 2
    assert "embeddings.h5" in json.loads(capsys.readouterr().out)["error"]
    assert not (settings.home / "warehouse" / "clips").exists()


def test_a_label_with_no_aggregated_clip_is_skipped_with_a_message(dataset, settings, wh, capsys, tmp_path):
    import shutil

    fixture, ds = dataset
    root = tmp_path / "released"
    shutil.copytree(ds.root, root)
    (root / "agg" / "empty-one.json").write_text(json.dumps({"data": []}))
    assert main(["import-va-dataset", str(root), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["labels"] == {"action": 3 * 120, "sci-fi": 3 * 80}
    assert "empty-one" in report["labels_skipped"] and "empty 'data' list" in report["labels_skipped"]["empty-one"]
    assert "skipped empty-one" in captured.err
    assert set(wh.read("label_events")["label"]) == {"action", "sci-fi"}


def test_a_bad_label_file_name_refuses_the_import_before_anything_is_written(dataset, settings, capsys, tmp_path):
    import shutil

    fixture, ds = dataset
    root = tmp_path / "released"
    shutil.copytree(ds.root, root)
    shutil.copy(root / "agg" / "action.json", root / "agg" / "Bad Name.json")
    assert main(["import-va-dataset", str(root), "--json"]) == 2
    assert "'Bad Name'" in json.loads(capsys.readouterr().out)["error"]
    assert not (settings.home / "warehouse" / "clips").exists()


def test_a_yt_id_that_is_not_a_plain_id_refuses_the_import(dataset, settings, capsys, tmp_path):
    import shutil

    fixture, ds = dataset
    root = tmp_path / "released"
    shutil.copytree(ds.root, root)
    shots = pl.read_csv(root / "shot-data.csv")
    first = shots["yt_id"][0]
    bad = "nl\n"
    shots = shots.with_columns(
        pl.when(pl.col("yt_id") == first).then(pl.lit(bad)).otherwise(pl.col("yt_id")).alias("yt_id"),
        pl.when(pl.col("yt_id") == first).then(pl.format("{}|{}", pl.lit(bad), pl.col("frame_in")))
        .otherwise(pl.col("key")).alias("key"))
    shots.write_csv(root / "shot-data.csv")
    assert main(["import-va-dataset", str(root), "--json"]) == 2
    assert "have a yt_id that is not 1-64 characters" in json.loads(capsys.readouterr().out)["error"]
    assert not (settings.home / "warehouse" / "clips").exists()
