"""Malformed requests get a 4xx naming what is wrong, never a 5xx; a refusal logs one line; the door token."""
from __future__ import annotations

import json
import random

import httpx
import numpy as np
import pytest

from .homes import SYNTH_DIM

pytestmark = pytest.mark.server


def _multipart(boundary: str, parts: list[tuple[str, str | None, bytes]], closing: str | None = None) -> bytes:
    out = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return out + f"--{closing or boundary}--\r\n".encode()


def _form(body: bytes, boundary: str = "XyZ") -> dict:
    return {"content": body, "headers": {"content-type": f"multipart/form-data; boundary={boundary}"}}


# The cases a client met (see docs/ARCHITECTURE.md, serving): each names what is wrong.
CASES = {
    "embeddings is an object": ("/score", {"json": {"embeddings": {"a": 1}}}, 400, "embeddings must be a 2-d array"),
    "a string in a row": ("/score", {"json": {"embeddings": [[1.0, "2"]]}}, 400, "embeddings[0][1] must be a number"),
    "unknown field": ("/score", {"json": {"embedings": [[1.0]]}}, 400, "unknown field 'embedings'"),
    "labels not a list": ("/score", {"json": {"embeddings": [[1.0]], "labels": "cat"}}, 400, "labels must be a list"),
    "pickle": ("/score", {"content": b"\x80\x04", "headers": {"content-type": "application/vnd.bentoml+pickle"}},
               415, "takes application/json"),
    "JSON to classify": ("/classify", {"json": {"video": "https://example.com/a.mp4"}}, 415, "multipart/form-data"),
    "a URL as a plain field": ("/classify", _form(_multipart("XyZ", [("video", None, b"https://example.com/a.mp4")])),
                               400, "video must be an uploaded file"),
    "wrong field name": ("/classify", _form(_multipart("XyZ", [("file", "clip.mp4", b"\x00\x01")])), 400,
                         "unknown field 'file'"),
    "boundary mismatch": ("/classify", _form(_multipart("AAA", [("video", "clip.mp4", b"data")]), "XyZ"), 400,
                          "boundary"),
    "no closing boundary": ("/classify", _form(_multipart("XyZ", [("video", "clip.mp4", b"data")])[:-10]), 400,
                            "closing boundary"),
    "no file": ("/classify", _form(_multipart("XyZ", [("labels", None, b'["warm"]')])), 400, "needs video"),
    "labels not JSON": ("/classify", _form(_multipart("XyZ", [("video", "a.mp4", b"x"), ("labels", None, b"warm")])),
                        400, "field 'labels' must hold JSON"),
    "not a video": ("/classify", _form(_multipart("XyZ", [("video", "holiday.mp4", b"not frames")])), 400,
                    "holiday.mp4"),
    "not a video, a name beyond ASCII": ("/classify", _form(_multipart("XyZ", [("video", "été à Zürich.mp4",
                                                                                 b"not frames")])), 400,
                                         "été à Zürich.mp4"),
    "a body for /models": ("/models", {"json": {"x": 1}}, 400, "unknown field 'x' for /models"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_malformed_request_is_a_4xx_naming_what_is_wrong(server, case):
    path, request, status, words = CASES[case]
    r = httpx.post(server.url + path, timeout=20, **request)
    assert r.status_code == status, r.text
    assert words in r.json()["error"], r.text
    if case.startswith("not a video"):
        assert "tmp" not in r.json()["error"]  # the client's file is named, not the server's copy


def _bad_bodies(rng: random.Random, n: int) -> list[tuple[str, dict]]:
    """Generated bad requests: mutated JSON bodies, broken multipart forms, wrong types and media types."""
    good = {"embeddings": np.zeros((2, SYNTH_DIM)).tolist(), "labels": ["cat"]}
    junk = [None, True, -1, 1e308, 10 ** 400, "x", "", [], {}, [[]], [["a"]], [[None]], [[1], [1, 2]], {"a": 1},
            "http://169.254.169.254/latest/meta-data", [[float("nan")]], "\u0000", [1, [2]], [[True, False]]]
    fields = ["embeddings", "labels", "encoder_id", "threshold", "target_precision", "target_recall", "video",
              "file", "", "__proto__"]
    out = []
    for i in range(n):
        kind = i % 6
        if kind == 0:  # a field set to junk, or an unknown field
            body = dict(good)
            field, value = rng.choice(fields), rng.choice(junk)
            optional = ("labels", "encoder_id", "threshold", "target_precision", "target_recall")
            body[field] = "x" if value is None and field in optional else value  # null there is a good request
            if "embeddings" in body and rng.random() < 0.3:
                del body["embeddings"]
            text = json.dumps(body, allow_nan=True) if rng.random() < 0.9 else json.dumps(body)[: rng.randrange(40)]
            out.append(("/score", {"content": text.encode(), "headers": {"content-type": "application/json"}}))
        elif kind == 1:  # bytes that are not JSON, or JSON that is not an object
            raw = rng.choice([bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))), b"[" * 5000,
                              b'"embeddings"', b"[[1,2]]", b"\xff\xfe{}", b"null", b"1e999999"])
            out.append((rng.choice(["/score", "/models", "/ready"]),
                        {"content": raw, "headers": {"content-type": "application/json"}}))
        elif kind == 2:  # wrong media types
            ctype = rng.choice(["text/plain", "application/x-www-form-urlencoded", "application/vnd.bentoml+pickle",
                                "multipart/form-data", "multipart/form-data; boundary=", "image/png"])
            out.append((rng.choice(["/score", "/classify"]),
                        {"content": b"embeddings=1&video=http://example.com/v.mp4", "headers": {"content-type": ctype}}))
        else:  # multipart forms with broken parts
            boundary = "".join(rng.choice("abcXYZ0123-") for _ in range(rng.randrange(1, 30)))
            parts = []
            for _ in range(rng.randrange(0, 4)):
                name = rng.choice(["video", "labels", "threshold", "file", "target_recall", "vid\u00e9o"])
                filename = rng.choice([None, "", "clip.mp4", "../../etc/passwd", "a\r\nb.mp4"])
                value = rng.choice([b"", b"junk", b'["warm"]', b"2", b"http://example.com/v.mp4", b"\x00" * 100])
                parts.append((name, filename, value))
            body = _multipart(boundary, parts, closing=rng.choice([None, boundary + "x"]))
            if rng.random() < 0.3:
                body = body[: rng.randrange(len(body) + 1)]
            sent = boundary if rng.random() < 0.8 else boundary[::-1] + "q"
            out.append(("/classify", _form(body, sent)))
    return out


def test_fuzzed_requests_get_4xx_never_5xx_and_the_server_stays_up(serving_home, server, client):
    """A few hundred generated bad bodies and forms: each a 4xx with an error message, one log line each."""
    before = server.log.read_text(errors="replace")
    statuses = {}
    with httpx.Client(base_url=server.url, timeout=20) as http:
        for path, request in _bad_bodies(random.Random(14), 300):
            r = http.post(path, **request)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert 400 <= r.status_code < 500, (path, request, r.status_code, r.text)
            assert r.json()["error"], r.text
        ok = http.post("/score", json={"embeddings": serving_home.corpus.matrix[:1].tolist()})
    assert ok.status_code == 200 and server.process.poll() is None
    print(f"fuzz: 300 requests, statuses {statuses}")
    log = server.log.read_text(errors="replace")[len(before):]
    assert "Traceback" not in log
    assert log.count("refused POST") == 300


def test_the_token_guards_every_endpoint_but_health_and_docs(serving_home):
    from bentoml.exceptions import BentoMLException

    from va_serving.client import ServerProcess

    token = "t0ken-for-tests-only-0123456789"
    env = {"VA_SERVING_TOKEN": token, "BENTOML_HOME": str(serving_home.settings.home / "bentoml")}
    with ServerProcess(serving_home.settings, extra_env=env) as server:
        url = server.url
        for path in ("/livez", "/readyz", "/docs.json", "/schema.json"):
            assert httpx.get(url + path, timeout=10).status_code == 200, path
        for path, method in (("/models", "GET"), ("/models", "POST"), ("/score", "POST"), ("/classify", "POST"),
                             ("/ready", "POST"), ("/metrics", "GET")):
            r = httpx.request(method, url + path, timeout=10, headers={"authorization": "Bearer wrong"})
            assert r.status_code == 401 and "token" in r.json()["error"], (path, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
        r = httpx.get(url + "/models", timeout=10, headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 200
        answer = server.client().score(embeddings=serving_home.corpus.matrix[:2], labels=["cat"])
        assert len(answer["decisions"]["cat"]) == 2
        with pytest.raises(BentoMLException) as info:
            server.client(token="not-the-token").score(embeddings=serving_home.corpus.matrix[:2], labels=["cat"])
        assert int(info.value.error_code) == 401
