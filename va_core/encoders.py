"""Encoder specs and the CLIP encoders they name.

Specs (``--encoder`` or ``VA_ENCODER``):

- ``open_clip:ARCH:TAG``   real weights of an open_clip pretrained tag, from the model hub
  (e.g. the default ``open_clip:ViT-B-32:laion2b_s34b_b79k``)
- ``open_clip:ARCH:/path/to/checkpoint``   real weights from a local file
- ``open_clip:ARCH:random``   the architecture with random weights (seed 0): benchmarks only
- ``tiny``   a tiny open_clip architecture with random weights (seed 0): no semantics, for
  tests and air-gapped smoke runs

An ``encoder_id`` names the model *and* its weights (a checkpoint by content hash), so
embeddings of two encoders never meet in one search or one classifier.

:func:`parse_spec` is pure Python and cheap; torch and open_clip are imported only by
:func:`load_encoder`.
"""
from __future__ import annotations

import hashlib
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from urllib.parse import urlparse

import numpy as np

from va_core.config import DEFAULT_ENCODER
from va_core.errors import EncoderUnavailable, InputError

TINY = "tiny"
# The tiny tower: 64x64 pixels in 8x8 patches, 2 layers of width 64, 64-d embeddings.
TINY_ARCH = "vit-w64-l2-p8-i64-d64"
RANDOM = "random"
HUB_TIMEOUT_S = 3.0
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


@dataclass(frozen=True)
class EncoderSpec:
    """A parsed encoder spec. ``weights`` is a hub tag, ``random``, or a checkpoint path."""

    kind: str  # "tiny" | "open_clip" | "stored" (embeddings imported without their model)
    arch: str
    weights: str
    checkpoint_sha: str | None = None

    @property
    def is_checkpoint(self) -> bool:
        return self.checkpoint_sha is not None

    @property
    def has_semantics(self) -> bool:
        """Random weights embed pixels, not meaning: text search over them is noise."""
        return self.kind != "tiny" and self.weights != RANDOM

    @property
    def spec(self) -> str:
        if self.kind == "tiny":
            return TINY
        if self.kind == "stored":
            return f"{STORED_PREFIX}{self.arch}"
        return f"open_clip:{self.arch}:{self.weights}"

    @property
    def encoder_id(self) -> str:
        if self.kind == "stored":
            return self.spec
        if self.kind == "tiny":
            return f"tiny:{TINY_ARCH}:random-seed0"
        if self.weights == RANDOM:
            return f"open_clip:{self.arch}:random-seed0"
        if self.is_checkpoint:
            return f"open_clip:{self.arch}:sha256-{self.checkpoint_sha}"
        return f"open_clip:{self.arch}:{self.weights}"


_sha_cache: dict[tuple[str, int, int], str] = {}


def _file_sha(path: Path) -> str:
    """First 16 hex digits of the file's SHA-256, cached per (path, size, mtime)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _sha_cache:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _sha_cache[key] = h.hexdigest()[:16]
    return _sha_cache[key]


def _looks_like_path(text: str) -> bool:
    return (os.sep in text or "/" in text or text.startswith((".", "~"))
            or text.lower().endswith(_CHECKPOINT_SUFFIXES))


# Embeddings imported with the paper's released dataset (`va import-va-dataset`): the clips
# and their vectors are there, the model that made them is not.
STORED_PREFIX = "va-dataset:"


def parse_spec(spec: str | EncoderSpec) -> EncoderSpec:
    """``"tiny"`` / ``"open_clip:ARCH:TAG|PATH|random"`` -> :class:`EncoderSpec`.

    A checkpoint path must exist (its content hash is part of the encoder id).
    """
    if isinstance(spec, EncoderSpec):
        return spec
    text = (spec or "").strip()
    if text == TINY:
        return EncoderSpec("tiny", TINY_ARCH, "random-seed0")
    if text.startswith(STORED_PREFIX) and len(text) > len(STORED_PREFIX):
        return EncoderSpec("stored", text[len(STORED_PREFIX):], "stored")
    if text == "auto":
        raise InputError("encoder 'auto' is resolved by `va demo` only; use `tiny` or an open_clip spec")
    parts = text.split(":", 2)
    if len(parts) != 3 or parts[0] != "open_clip" or not parts[1] or not parts[2]:
        raise InputError(
            f"unknown encoder spec {text!r}; use `tiny`, `open_clip:ARCH:TAG` (e.g. {DEFAULT_ENCODER}) "
            "or `open_clip:ARCH:/path/to/checkpoint`"
        )
    _, arch, weights = parts
    if weights == RANDOM:
        return EncoderSpec("open_clip", arch, RANDOM)
    if _looks_like_path(weights):
        path = Path(weights).expanduser().resolve()
        if not path.is_file():
            raise InputError(f"encoder checkpoint {str(path)!r} (from spec {text!r}) is not a file")
        return EncoderSpec("open_clip", arch, str(path), checkpoint_sha=_file_sha(path))
    return EncoderSpec("open_clip", arch, weights)


# -- can the weights be had? ------------------------------------------------
def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _answers(url: str, proxy: str | None, timeout: float) -> str | None:
    """None if the server at ``url`` answers an HTTP request within ``timeout``, else the reason.

    An answer, not just a connection: a hub (or proxy) that accepts connections and never
    replies would otherwise pass, and huggingface_hub would then wait and retry for minutes.
    Any status counts as an answer. Name resolution cannot be given a timeout, so the
    attempt runs in a daemon thread that is abandoned at the deadline.
    """
    import http.client
    import ssl

    target = urlparse(url)
    host = target.hostname or "huggingface.co"
    port = target.port or (443 if target.scheme == "https" else 80)
    where = f"{host}:{port}"
    outcome: list[str | None] = []

    def attempt():
        try:
            if proxy:
                via = urlparse(proxy)
                cls = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
                kwargs = {"context": ssl.create_default_context()} if target.scheme == "https" else {}
                conn = cls(via.hostname, via.port or 80, timeout=timeout, **kwargs)
                conn.set_tunnel(host, port)
            elif target.scheme == "https":
                conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                conn.request("HEAD", "/")
                conn.getresponse()
            finally:
                conn.close()
            outcome.append(None)
        except (OSError, http.client.HTTPException) as exc:
            outcome.append(f"{where}: {type(exc).__name__}: {exc}" if str(exc) else f"{where}: {type(exc).__name__}")

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else f"{where}: no answer within {timeout:.0f} s"


def hub_unreachable_reason(timeout: float = HUB_TIMEOUT_S) -> str | None:
    """Why the model hub cannot be reached (None if it answers), in at most ``timeout`` seconds."""
    if _truthy("HF_HUB_OFFLINE") or _truthy("TRANSFORMERS_OFFLINE"):
        return "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    return _answers(endpoint, proxy, timeout)


def _hub_file(spec: EncoderSpec) -> tuple[str, list[str]] | None:
    """(repo_id, candidate filenames) of a pretrained tag on the hub, or None for URL weights."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(spec.arch, spec.weights)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(spec.arch)
        raise InputError(
            f"open_clip has no pretrained tag {spec.weights!r} for {spec.arch!r}"
            + (f"; its tags are: {', '.join(tags)}" if tags else "")
        )
    hub = cfg.get("hf_hub", "")
    if not hub:
        return None
    repo, filename = os.path.split(hub.rstrip("/")) if not hub.endswith("/") else (hub.rstrip("/"), "")
    filename = filename or "open_clip_pytorch_model.bin"
    candidates = [filename]
    if filename.endswith((".bin", ".pth")):
        candidates.insert(0, filename.rsplit(".", 1)[0] + ".safetensors")
    if filename == "open_clip_pytorch_model.bin":
        candidates.insert(0, "open_clip_model.safetensors")
    return repo, candidates


def _cached_weights(spec: EncoderSpec) -> str | None:
    """Path of the tag's weights if a previous download left them in the local cache."""
    import open_clip

    found = _hub_file(spec)
    if found is None:
        url = open_clip.get_pretrained_url(spec.arch, spec.weights)
        path = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        return str(path) if url and path.is_file() else None
    repo, candidates = found
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for name in candidates:
        hit = try_to_load_from_cache(repo, name)
        if isinstance(hit, str) and os.path.isfile(hit):
            return hit
    return None


def _unavailable(spec: EncoderSpec, reason: str) -> EncoderUnavailable:
    return EncoderUnavailable(
        f"encoder {spec.spec!r} needs pretrained weights from the model hub, which cannot be reached "
        f"({reason}). Use `--encoder tiny` (random weights, no semantics: tests and smoke runs only) "
        f"or real weights from a local file: `--encoder open_clip:{spec.arch}:/path/to/checkpoint`."
    )


def _maybe_cached() -> bool:
    """Whether any downloaded weights could be on this machine (a cheap look, no torch)."""
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.expanduser("~/.cache/huggingface"), "hub")
    clip = os.path.expanduser("~/.cache/clip")
    return ((os.path.isdir(hub) and any(n.startswith("models--") for n in os.listdir(hub)))
            or (os.path.isdir(clip) and bool(os.listdir(clip))))


def weights_problem(spec: str | EncoderSpec) -> str | None:
    """Why the spec's weights cannot be had here (None if they can), decided in seconds.

    Torch and open_clip are imported only when some weights are cached locally (importing
    them takes longer than the whole answer otherwise).
    """
    parsed = parse_spec(spec)
    if parsed.kind == "stored":
        return "its embeddings were imported without the model that made them"
    if parsed.kind == "tiny" or parsed.weights == RANDOM or parsed.is_checkpoint:
        return None
    _check_arch(parsed.arch)
    reason = hub_unreachable_reason()
    if reason is None:
        return None
    if _maybe_cached():
        _hub_file(parsed)  # an unknown tag is named, not reported as unreachable
        if _cached_weights(parsed):
            return None
    return reason


def resolve_auto(default: str = DEFAULT_ENCODER, stream=None) -> str:
    """``--encoder auto``: the default encoder if its weights can be had, else ``tiny`` with a banner."""
    problem = weights_problem(default)
    if problem is None:
        return default
    bar = "=" * 78
    print(
        f"{bar}\n  The default encoder {default} is not available here ({problem}).\n"
        "  Using `tiny`: a tiny CLIP architecture with RANDOM weights. Its embeddings carry no\n"
        "  meaning: text search returns noise and classifiers learn only colours and textures.\n"
        f"  For real results pass --encoder open_clip:ViT-B-32:/path/to/checkpoint.\n{bar}",
        file=stream or sys.stderr,
    )
    return TINY


def _known_archs() -> list[str]:
    """open_clip's architectures; read from its config files unless open_clip is already imported
    (it then also knows configs registered at run time)."""
    if "open_clip" in sys.modules:
        return list(sys.modules["open_clip"].list_models())
    import importlib.util

    found = importlib.util.find_spec("open_clip")
    if found is None or not found.submodule_search_locations:
        raise EncoderUnavailable("open_clip is not installed: pip install open_clip_torch")
    configs = Path(list(found.submodule_search_locations)[0]) / "model_configs"
    return sorted(p.stem for p in configs.glob("*.json"))


def _check_arch(arch: str) -> None:
    known = _known_archs()
    if arch not in known:
        import difflib

        near = difflib.get_close_matches(arch, known, n=5)
        raise InputError(f"open_clip has no architecture {arch!r}" + (f"; did you mean {', '.join(near)}?" if near else ""))


# -- the encoders ------------------------------------------------------------
class Encoder:
    """A CLIP model in eval mode: frames and texts in, L2-normalised float32 rows out."""

    def __init__(self, spec: EncoderSpec, model, tokenizer, image_size: int, mean, std, dim: int,
                 batch_size: int = 64):
        import torch

        self.spec = spec
        self.encoder_id = spec.encoder_id
        self.has_semantics = spec.has_semantics
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.image_size = int(image_size)
        self.dim = int(dim)
        self.batch_size = batch_size
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self._lock = threading.Lock()  # one forward pass at a time per model

    def __repr__(self) -> str:
        return f"Encoder({self.encoder_id!r}, dim={self.dim}, image_size={self.image_size})"

    @property
    def warning(self) -> str | None:
        if self.has_semantics:
            return None
        return (f"encoder {self.encoder_id} has random weights: its embeddings carry no meaning "
                "(text search is noise); use it for tests and smoke runs only")

    def preprocess(self, frames):
        """uint8 RGB frames (N,H,W,3) -> normalised (N,3,S,S) tensor (shortest side resized, centre crop)."""
        import torch
        import torch.nn.functional as F

        batch = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
        s = self.image_size
        h, w = batch.shape[-2:]
        if (h, w) != (s, s):
            scale = s / min(h, w)
            nh, nw = max(s, round(h * scale)), max(s, round(w * scale))
            if (nh, nw) != (h, w):
                batch = F.interpolate(batch, size=(nh, nw), mode="bicubic", antialias=True,
                                      align_corners=False).clamp_(0, 255)
            top, left = (nh - s) // 2, (nw - s) // 2
            batch = batch[:, :, top:top + s, left:left + s]
        return (batch - self._mean) / self._std

    def encode_images(self, frames: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """(N,H,W,3) uint8 RGB frames (a list of equal-sized frames works too) -> (N, dim)."""
        import torch

        if len(frames) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not isinstance(frames, np.ndarray):
            frames = np.stack(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise InputError(f"frames must be uint8 RGB of shape (N,H,W,3), got {frames.dtype} {frames.shape}")
        out = []
        with self._lock, torch.inference_mode():
            for s in range(0, len(frames), self.batch_size):
                emb = self.model.encode_image(self.preprocess(frames[s:s + self.batch_size]))
                out.append(torch.nn.functional.normalize(emb.float(), dim=-1).numpy())
        return np.concatenate(out).astype(np.float32, copy=False)

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if isinstance(texts, str):
            raise InputError("encode_text takes a list of strings")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock, torch.inference_mode():
            emb = self.model.encode_text(self.tokenizer(list(texts)))
            return torch.nn.functional.normalize(emb.float(), dim=-1).numpy().astype(np.float32, copy=False)


def _build_tiny():
    import open_clip
    import torch
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CLIP(
            embed_dim=64,
            vision_cfg=CLIPVisionCfg(layers=2, width=64, head_width=32, patch_size=8, image_size=64),
            text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=2, layers=2),
        )
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=77)
    return model, tokenizer, 64, open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD, 64


def _build_open_clip(spec: EncoderSpec):
    import open_clip
    import torch

    _check_arch(spec.arch)
    kwargs = {}
    if spec.weights == RANDOM:
        pretrained = None
    elif spec.is_checkpoint:
        pretrained = spec.weights
    else:
        _hub_file(spec)  # an unknown tag is named before open_clip tries to fetch it
        pretrained = _cached_weights(spec)
        if pretrained:
            # Loading the cached file directly keeps open_clip off the network; the tag's
            # preprocessing is then passed explicitly.
            cfg = open_clip.get_pretrained_cfg(spec.arch, spec.weights)
            kwargs = {k: cfg[k] for k in ("mean", "std") if k in cfg}
            kwargs = {"image_mean": kwargs.get("mean"), "image_std": kwargs.get("std")}
        else:
            pretrained = spec.weights
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            model, _, _ = open_clip.create_model_and_transforms(spec.arch, pretrained=pretrained, **kwargs)
        except (RuntimeError, FileNotFoundError, KeyError, ValueError) as exc:
            raise EncoderUnavailable(f"cannot load encoder {spec.spec!r}: {exc}") from exc
    pp = getattr(model.visual, "preprocess_cfg", {}) or {}
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    dim = model.text_projection.shape[1] if hasattr(model, "text_projection") and model.text_projection is not None \
        else model.visual.output_dim
    mean = pp.get("mean") or open_clip.OPENAI_DATASET_MEAN
    std = pp.get("std") or open_clip.OPENAI_DATASET_STD
    return model, open_clip.get_tokenizer(spec.arch), size, mean, std, dim


_encoders: dict[str, Encoder] = {}
_encoders_lock = threading.Lock()


def load_encoder(spec: str | EncoderSpec) -> Encoder:
    """The encoder of a spec, built once per process. Fails in seconds if its weights cannot be had."""
    parsed = parse_spec(spec)
    with _encoders_lock:
        hit = _encoders.get(parsed.encoder_id)
        if hit is not None:
            return hit
        if parsed.kind == "stored":
            raise EncoderUnavailable(
                f"encoder {parsed.encoder_id!r} is embeddings-only (imported with `va import-va-dataset`): "
                "it cannot encode new video frames or free text. Training, feeds, zero-shot on the dataset's "
                "stored label embeddings and /score work; to search by text or ingest videos use a real "
                f"encoder, e.g. `open_clip:ViT-B-32:/path/to/checkpoint` or `tiny` for a smoke run")
        if parsed.kind != "tiny":
            reason = weights_problem(parsed)  # before torch is imported: seconds, not minutes
            if reason:
                raise _unavailable(parsed, reason)
        built = _build_tiny() if parsed.kind == "tiny" else _build_open_clip(parsed)
        encoder = Encoder(parsed, *built)
        _encoders[parsed.encoder_id] = encoder
        return encoder
