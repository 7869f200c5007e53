"""Encoder specs, the tiny encoder, checkpoints, and failing fast without the model hub."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from va_core import encoders
from va_core.config import DEFAULT_ENCODER
from va_core.encoders import load_encoder, parse_spec, resolve_auto, weights_problem
from va_core.errors import EncoderUnavailable, InputError


def test_parse_spec_names_model_and_weights(tmp_path):
    assert parse_spec("tiny").encoder_id.startswith("tiny:")
    default = parse_spec(DEFAULT_ENCODER)
    assert (default.arch, default.weights, default.encoder_id) == ("ViT-B-32", "laion2b_s34b_b79k", DEFAULT_ENCODER)
    assert parse_spec("open_clip:ViT-B-32:random").encoder_id == "open_clip:ViT-B-32:random-seed0"
    ckpt = tmp_path / "weights.pt"
    ckpt.write_bytes(b"one")
    a = parse_spec(f"open_clip:ViT-B-32:{ckpt}")
    assert a.is_checkpoint and a.encoder_id.startswith("open_clip:ViT-B-32:sha256-")
    ckpt.write_bytes(b"two")  # other weights under the same name: another encoder
    assert parse_spec(f"open_clip:ViT-B-32:{ckpt}").encoder_id != a.encoder_id
    assert not parse_spec("tiny").has_semantics and not parse_spec("open_clip:RN50:random").has_semantics
    assert default.has_semantics


@pytest.mark.parametrize("bad", ["", "clip", "open_clip:ViT-B-32", "open_clip::x", "hf:ViT-B-32:x", "auto"])
def test_malformed_specs_are_refused(bad):
    with pytest.raises(InputError):
        parse_spec(bad)


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(InputError, match="nope.pt"):
        parse_spec(f"open_clip:ViT-B-32:{tmp_path / 'nope.pt'}")


def test_parsing_a_spec_does_not_import_torch():
    code = ("import sys; from va_core.encoders import parse_spec; parse_spec('tiny'); "
            f"parse_spec('{DEFAULT_ENCODER}'); print('torch' in sys.modules, 'open_clip' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_tiny_encoder_embeds_frames_and_text():
    enc = load_encoder("tiny")
    assert load_encoder("tiny") is enc  # one model per process
    assert (enc.dim, enc.image_size, enc.has_semantics) == (64, 64, False)
    assert "no meaning" in enc.warning
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    emb = enc.encode_images(frames)
    assert emb.shape == (5, 64) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # batching does not change results; neither does the frame size once resized
    enc.batch_size, saved = 2, enc.batch_size
    try:
        np.testing.assert_allclose(enc.encode_images(frames), emb, atol=1e-5)
    finally:
        enc.batch_size = saved
    red, blue = np.zeros((1, 90, 160, 3), np.uint8), np.zeros((1, 90, 160, 3), np.uint8)
    red[..., 0], blue[..., 2] = 220, 220
    r, b = enc.encode_images(red), enc.encode_images(blue)
    assert r.shape == (1, 64) and float((r @ b.T)[0, 0]) < 0.999
    text = enc.encode_text(["a red ball", "a blue box"])
    assert text.shape == (2, 64)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(text[0], text[1])
    assert enc.encode_images(np.zeros((0, 64, 64, 3), np.uint8)).shape == (0, 64)
    with pytest.raises(InputError):
        enc.encode_images(np.zeros((2, 64, 64), np.float32))


def test_tiny_weights_are_the_same_in_every_process():
    enc = load_encoder("tiny")
    frame = np.full((1, 64, 64, 3), 100, np.uint8)
    here = enc.encode_images(frame)[0]
    code = ("import numpy as np, json; from va_core.encoders import load_encoder; "
            "print(json.dumps(load_encoder('tiny').encode_images(np.full((1,64,64,3),100,np.uint8))[0].tolist()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    np.testing.assert_allclose(np.array(json.loads(out.stdout)), here, atol=1e-6)


@pytest.fixture
def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused at once
    return port


@pytest.fixture
def no_hub(monkeypatch, closed_port, tmp_path):
    """The model hub is a closed port on this machine and the weights cache is empty."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setattr(encoders, "_maybe_cached", lambda: True)  # take the full path: look in the cache
    monkeypatch.setattr(encoders, "_cached_weights", lambda spec: None)

    import open_clip

    def must_not_be_called(*a, **k):
        raise AssertionError("open_clip was asked to download weights that cannot be had")

    monkeypatch.setattr(open_clip, "create_model_and_transforms", must_not_be_called)


def test_real_spec_fails_fast_without_the_hub_naming_the_alternatives(no_hub):
    with pytest.raises(EncoderUnavailable) as err:
        load_encoder(DEFAULT_ENCODER)
    message = str(err.value)
    assert "tiny" in message and "open_clip:ViT-B-32:/path/to/checkpoint" in message
    assert "127.0.0.1" in message


@pytest.fixture
def silent_hub(no_hub, monkeypatch):
    """A hub on this machine that accepts every connection and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])  # held open, never written to
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    yield accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_hub_that_accepts_and_never_answers_fails_within_seconds(silent_hub):
    started = time.monotonic()
    with pytest.raises(EncoderUnavailable) as err:
        load_encoder(DEFAULT_ENCODER)
    assert time.monotonic() - started < encoders.HUB_TIMEOUT_S + 2
    assert silent_hub, "the probe never connected"
    message = str(err.value)  # the unreachable hub's message, naming the alternatives
    assert "cannot be reached" in message and "no answer within" in message and "127.0.0.1" in message
    assert "tiny" in message and "open_clip:ViT-B-32:/path/to/checkpoint" in message


def test_hub_offline_variable_is_respected(no_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert weights_problem(DEFAULT_ENCODER) == "HF_HUB_OFFLINE is set"
    with pytest.raises(EncoderUnavailable, match="HF_HUB_OFFLINE"):
        load_encoder(DEFAULT_ENCODER)


def test_unknown_architecture_and_tag_are_named(no_hub):
    with pytest.raises(InputError, match="ViT-B-33"):
        load_encoder("open_clip:ViT-B-33:laion2b_s34b_b79k")
    with pytest.raises(InputError, match="ViT-B-33"):
        weights_problem("open_clip:ViT-B-33:laion2b_s34b_b79k")
    with pytest.raises(InputError, match="no pretrained tag 'nonsense'"):
        load_encoder("open_clip:ViT-B-32:nonsense")


def test_offline_answer_needs_no_torch_when_nothing_is_cached(tmp_path, closed_port):
    """Without cached weights the offline verdict comes before torch is imported (seconds)."""
    code = ("import sys; from va_core.encoders import weights_problem; "
            f"r = weights_problem('{DEFAULT_ENCODER}'); print(repr(r)); print('torch' in sys.modules)")
    env = {**__import__("os").environ, "HF_HOME": str(tmp_path / "hf"), "HOME": str(tmp_path),
           "HF_ENDPOINT": f"http://127.0.0.1:{closed_port}"}
    env.pop("HF_HUB_OFFLINE", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    verdict, torch_loaded = out.stdout.strip().splitlines()
    assert "127.0.0.1" in verdict and torch_loaded == "False"


def test_auto_falls_back_to_tiny_with_a_banner(no_hub, capsys):
    assert resolve_auto() == "tiny"
    err = capsys.readouterr().err
    assert "RANDOM weights" in err and DEFAULT_ENCODER in err


def test_auto_keeps_the_default_when_its_weights_are_cached(monkeypatch, capsys):
    monkeypatch.setattr(encoders, "_maybe_cached", lambda: True)
    monkeypatch.setattr(encoders, "_cached_weights", lambda spec: "/somewhere/cached.safetensors")
    assert resolve_auto() == DEFAULT_ENCODER
    assert capsys.readouterr().err == ""


def test_local_checkpoint_loads_through_open_clip(tiny_checkpoint):
    spec, arch = tiny_checkpoint
    enc = load_encoder(spec)
    assert enc.encoder_id.startswith(f"open_clip:{arch}:sha256-") and enc.has_semantics
    frames = np.random.default_rng(1).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    # the checkpoint holds the tiny weights: the same model, loaded by the real path
    np.testing.assert_allclose(enc.encode_images(frames), load_encoder("tiny").encode_images(frames), atol=1e-5)
    np.testing.assert_allclose(enc.encode_text(["x"]), load_encoder("tiny").encode_text(["x"]), atol=1e-5)


def _frames_with_a_red_left_edge(n=2, h=90, w=160):
    """Smooth frames (a gradient) whose leftmost eighth is red: a centre crop of a wide frame cuts it off."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([40 + 100 * x / w, 60 + 80 * y / h, 120 + 0 * x], axis=-1)
    frames = np.repeat(base[None], n, axis=0)
    frames[:, :, : w // 8] = (230, 20, 20)
    frames[1] = frames[1][::-1]  # another frame: upside down
    return frames.round().astype(np.uint8)


def _open_clips_own(cfg, frames):
    from open_clip.transform import PreprocessCfg, image_transform_v2
    from PIL import Image

    transform = image_transform_v2(PreprocessCfg(**cfg), is_train=False)
    return np.stack([transform(Image.fromarray(f)).numpy() for f in frames])


@pytest.mark.parametrize("arch, tag, mode, mean", [
    ("ViT-B-16-SigLIP", "webli", "squash", (0.5, 0.5, 0.5)),
    ("ViT-B-32", "laion2b_s34b_b79k", "shortest", (0.48145466, 0.4578275, 0.40821073)),
])
def test_preprocessing_comes_from_open_clips_config_for_the_model(arch, tag, mode, mean):
    cfg = encoders.preprocess_cfg(arch, tag)  # open_clip's own JSON and pretrained configs: no download
    assert (cfg["resize_mode"], tuple(cfg["mean"]), cfg["size"]) == (mode, mean, 224)
    pp = encoders.Preprocess.from_cfg(cfg)
    frames = _frames_with_a_red_left_edge()
    ours = pp(frames).numpy()
    theirs = _open_clips_own(cfg, frames)
    assert ours.shape == theirs.shape == (2, 3, 224, 224)
    # one batch of torch ops gives what open_clip's per-image PIL transform gives
    assert np.abs(ours - theirs).mean() < 0.01 and np.abs(ours - theirs).max() < 0.05
    red = (ours[:, 0, :, :8] * pp.std[0] + pp.mean[0]).mean() > 0.8  # red channel at the left edge, unnormalised
    assert red == (mode == "squash")  # squash keeps the whole frame; shortest centre-crops the edge away


def test_longest_side_resize_pads_with_the_fill_colour():
    cfg = {**encoders.preprocess_cfg("ViT-B-32"), "resize_mode": "longest", "fill_color": 0}
    pp = encoders.Preprocess.from_cfg(cfg)
    frames = _frames_with_a_red_left_edge()
    ours, theirs = pp(frames).numpy(), _open_clips_own(cfg, frames)
    assert ours.shape == theirs.shape == (2, 3, 224, 224)
    assert np.abs(ours - theirs).mean() < 0.01
    top = ours[:, :, :40] * np.array(pp.std).reshape(1, 3, 1, 1) + np.array(pp.mean).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(top, 0.0, atol=1e-6)  # 160x90 -> 224x126: 49 rows of black above
    with pytest.raises(InputError, match="resize_mode 'crop'"):
        encoders.Preprocess.from_cfg({**cfg, "resize_mode": "crop"})


@pytest.mark.parametrize("mode", ["shortest", "squash", "longest"])
def test_frames_the_decoder_fits_pass_the_encoders_preprocessing_unscaled(mode):
    """Decoding to the encoder's frame fit, then preprocessing, gives what preprocessing the whole
    frame gives; a frame decoded to another fit does not."""
    import av

    from va_core.video import FrameFit, to_rgb

    pp = encoders.Preprocess.from_cfg({**encoders.preprocess_cfg("ViT-B-32"), "resize_mode": mode, "fill_color": 0})
    frame = _frames_with_a_red_left_edge()[0]
    decoded = to_rgb(av.VideoFrame.from_ndarray(frame, format="rgb24"), 224, fit=FrameFit(mode, pp.fill_color))
    assert pp.resized_shape(224, 224) == (224, 224)  # nothing left for the encoder to scale
    whole, fitted = pp(frame[None]).numpy(), pp(decoded[None]).numpy()
    assert np.abs(whole - fitted).mean() < 0.02
    other = to_rgb(av.VideoFrame.from_ndarray(frame, format="rgb24"), 224,
                   fit=FrameFit("shortest" if mode != "shortest" else "squash"))
    assert np.abs(whole - pp(other[None]).numpy()).mean() > 0.1


def test_a_checkpoint_gets_its_architectures_preprocessing_and_random_weights_the_default(tmp_path):
    ckpt = tmp_path / "siglip.pt"
    ckpt.write_bytes(b"weights")
    assert encoders.preprocess_cfg("ViT-B-16-SigLIP", str(ckpt))["resize_mode"] == "squash"  # every tag says so
    assert encoders.preprocess_cfg("ViT-B-16-SigLIP", "random")["resize_mode"] == "shortest"  # open_clip's default
    with pytest.raises(InputError, match="no pretrained tag 'nope'"):
        encoders.preprocess_cfg("ViT-B-32", "nope")
    with pytest.raises(InputError, match="no architecture"):
        encoders.preprocess_cfg("ViT-B-33", "x")


def test_an_open_clip_model_is_built_with_its_preprocessing(tiny_checkpoint):
    spec, arch = tiny_checkpoint
    enc = load_encoder(spec)
    assert enc.preprocess == encoders.Preprocess.from_cfg(encoders.preprocess_cfg(arch, parse_spec(spec).weights))
    assert enc.preprocess.size == (64, 64) and enc.image_size == 64


def test_a_registered_kind_of_encoder_is_parsed_built_and_named(monkeypatch):
    tiny = encoders.KINDS["tiny"]
    kind = encoders.EncoderKind(
        "tiny2", "the tiny tower under another name", "`tiny2`",
        lambda text: encoders.EncoderSpec("tiny2", "t2", "random-seed0") if text == "tiny2" else None,
        lambda s: "tiny2", lambda s: "tiny2:random-seed0", lambda s: tiny.build(s), has_weights=False)
    monkeypatch.setitem(encoders.KINDS, "tiny2", kind)
    spec = parse_spec("tiny2")
    assert (spec.spec, spec.encoder_id, spec.has_semantics, weights_problem("tiny2")) == (
        "tiny2", "tiny2:random-seed0", False, None)
    enc = load_encoder("tiny2")
    assert enc.encoder_id == "tiny2:random-seed0"
    assert enc.encode_images(np.zeros((1, 64, 64, 3), np.uint8)).shape == (1, 64)
    with pytest.raises(InputError, match="`tiny2`"):
        parse_spec("tiny3")  # the message lists the registered kinds
    monkeypatch.undo()
    with pytest.raises(InputError, match="unknown encoder spec 'tiny2'"):
        parse_spec("tiny2")
