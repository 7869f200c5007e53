"""Text and clip similarity search over an ingested home."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from va_cli import main as cli
from va_core.embeddings import load_corpus
from va_core.encoders import load_encoder, parse_spec
from va_core.errors import InputError, NotFound
from va_core.search import RESULT_COLUMNS, search_text, similar_clips, top_k
from va_core.warehouse import Warehouse, embedding_column, embedding_matrix


def test_top_k_matches_a_full_sort():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((1000, 16)).astype(np.float32)
    q = rng.standard_normal(16).astype(np.float32)
    idx, scores = top_k(m, q, 10)
    expected = np.argsort(-(m @ q))[:10]
    assert idx.tolist() == expected.tolist()
    np.testing.assert_allclose(scores, (m @ q)[expected], rtol=1e-6)
    idx2, _ = top_k(m, q, 10, exclude=expected[:3])
    assert idx2.tolist() == np.argsort(-(m @ q))[3:13].tolist()
    assert top_k(m, q, 5000)[0].shape == (1000,)
    assert top_k(m[:0], q, 5)[0].shape == (0,)


def test_text_search_ranks_clips_by_cosine(ingested_home, sample_corpus_dir):
    results = search_text(ingested_home, "a red ball moving left", k=7)
    assert results.columns == RESULT_COLUMNS
    assert results.height == 7 and results["rank"].to_list() == list(range(1, 8))
    scores = results["score"].to_numpy()
    assert np.all(np.diff(scores) <= 0)
    # the scores are the cosine between the query's text embedding and each clip's embedding
    wh = Warehouse.from_settings(ingested_home)
    enc = load_encoder("tiny")
    q = enc.encode_text(["a red ball moving left"])[0]
    emb = wh.arrow("clip_embeddings", where={"encoder_id": parse_spec("tiny").encoder_id})
    matrix = embedding_matrix(emb.column("embedding"))
    all_scores = matrix @ q
    best = np.sort(all_scores)[::-1][:7]
    np.testing.assert_allclose(scores, best, atol=1e-5)
    row = results.row(0, named=True)
    clip = wh.read("clips", where={"clip_key": row["clip_key"]}).row(0, named=True)
    assert (row["start_s"], row["end_s"], row["frame_in"]) == (clip["start_s"], clip["end_s"], clip["frame_in"])
    assert row["uri"].startswith(str(sample_corpus_dir)) and row["video_id"] == clip["video_id"]


def test_search_sees_only_the_current_encoder(ingested_home):
    wh = Warehouse.from_settings(ingested_home)
    tiny = parse_spec("tiny").encoder_id
    keys = wh.read("clips")["clip_key"].to_list()
    # another encoder's embeddings of the same clips, in another dimension
    other = np.random.default_rng(0).standard_normal((len(keys), 32)).astype(np.float32)
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    wh.append("clip_embeddings", pa.table({
        "clip_key": keys, "video_id": [k.split("|")[0] for k in keys],
        "encoder_id": ["open_clip:other:sha256-0"] * len(keys), "embedding": embedding_column(other)}))
    results = search_text(ingested_home, "anything", k=len(keys) + 10)
    assert results.height == len(keys)  # each clip once: the other encoder's rows are not searched
    assert load_corpus(wh, tiny).dim == 64 and load_corpus(wh, "open_clip:other:sha256-0").dim == 32


def test_similar_clips_excludes_the_clip_itself(ingested_home):
    wh = Warehouse.from_settings(ingested_home)
    key = wh.read("clips")["clip_key"].sort()[3]
    results = similar_clips(ingested_home, key, k=5)
    assert results.height == 5 and key not in results["clip_key"].to_list()
    with pytest.raises(NotFound, match="no-such-video"):
        similar_clips(ingested_home, "no-such-video|0")


def test_bad_queries_are_refused(ingested_home):
    with pytest.raises(InputError, match="empty"):
        search_text(ingested_home, "   ", k=5)
    with pytest.raises(InputError, match="k must be"):
        search_text(ingested_home, "red", k=0)


def test_search_before_ingestion_says_what_to_do(settings):
    with pytest.raises(NotFound, match="va ingest"):
        search_text(settings, "red", k=5)


def test_cli_search_prints_one_json_document(ingested_home, capsys):
    code = cli.main(["search", "a green box", "-k", "3", "--json", "--home", str(ingested_home.home)])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    assert data["encoder_id"] == parse_spec("tiny").encoder_id and "no meaning" in data["warning"]
    assert [r["rank"] for r in data["results"]] == [1, 2, 3]
    assert set(RESULT_COLUMNS) <= set(data["results"][0])


def test_cli_search_text_output(ingested_home, capsys):
    assert cli.main(["search", "a green box", "-k", "2", "--home", str(ingested_home.home)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["#", "score", "clip_key"] and len(lines) == 4


def test_corpus_rows_follow_sorted_keys_and_reload_after_a_write(wh):
    keys = [f"v|{i}" for i in range(9, -1, -1)]  # written in reverse order
    m = np.random.default_rng(2).standard_normal((10, 4)).astype(np.float32)
    wh.append("clip_embeddings", pa.table({"clip_key": keys, "video_id": ["v"] * 10, "encoder_id": ["e"] * 10,
                                           "embedding": embedding_column(m)}))
    corpus = load_corpus(wh, "e")
    assert corpus.keys.tolist() == sorted(keys)
    for i, k in enumerate(corpus.keys):
        np.testing.assert_array_equal(corpus.matrix[i], m[keys.index(k)])
    assert corpus.matrix.flags["C_CONTIGUOUS"] and load_corpus(wh, "e") is corpus  # cached
    wh.append("clip_embeddings", pa.table({"clip_key": ["w|0"], "video_id": ["w"], "encoder_id": ["e"],
                                           "embedding": embedding_column(m[:1])}))
    assert len(load_corpus(wh, "e")) == 11


def test_corpus_refuses_two_rows_for_one_clip(wh):
    m = np.eye(3, dtype=np.float32)
    wh.append("clip_embeddings", pa.table({"clip_key": ["a|0", "a|0", "b|0"], "video_id": ["a", "a", "b"],
                                           "encoder_id": ["e"] * 3, "embedding": embedding_column(m)}))
    from va_core.errors import VAError

    with pytest.raises(VAError, match="several rows for one clip key"):
        load_corpus(wh, "e")
