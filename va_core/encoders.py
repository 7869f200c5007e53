"""Encoder specs and the CLIP encoders they name.

Specs (``--encoder`` or ``VA_ENCODER``):

- ``open_clip:ARCH:TAG``   real weights of an open_clip pretrained tag, from the model hub
  (e.g. the default ``open_clip:ViT-B-32:laion2b_s34b_b79k``)
- ``open_clip:ARCH:/path/to/checkpoint``   real weights from a local file
- ``open_clip:ARCH:random``   the architecture with random weights (seed 0): benchmarks only
- ``tiny``   a tiny open_clip architecture with random weights (seed 0): no semantics, for
  tests and air-gapped smoke runs

(and ``va-dataset:NAME``, written by the importer: embeddings without their model). Each
kind of spec is one entry of :data:`KINDS`; open_clip's own configs are the registry of its
architectures, tags and their preprocessing (:func:`preprocess_cfg`).

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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import urlparse

import numpy as np

from va_core.config import DEFAULT_ENCODER
from va_core.errors import EncoderUnavailable, InputError
from va_core.video import RESIZE_MODES, FrameFit

__all__ = ["EncoderSpec", "EncoderKind", "KINDS", "encoder_kind", "parse_spec", "weights_problem", "resolve_auto",
           "hub_unreachable_reason", "Preprocess", "preprocess_cfg", "Encoder", "load_encoder", "TINY", "OPEN_CLIP",
           "STORED", "STORED_PREFIX", "RANDOM", "HUB_TIMEOUT_S"]

TINY = "tiny"
# The tiny tower: 64x64 pixels in 8x8 patches, 2 layers of width 64, 64-d embeddings.
TINY_ARCH = "vit-w64-l2-p8-i64-d64"
RANDOM = "random"
HUB_TIMEOUT_S = 3.0
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


@dataclass(frozen=True)
class EncoderSpec:
    """A parsed encoder spec. ``weights`` is a hub tag, ``random``, or a checkpoint path."""

    kind: str  # a name in KINDS: "tiny" | "open_clip" | "stored" (embeddings imported without their model)
    arch: str
    weights: str
    checkpoint_sha: str | None = None

    @property
    def is_checkpoint(self) -> bool:
        return self.checkpoint_sha is not None

    @property
    def has_semantics(self) -> bool:
        """Random weights embed pixels, not meaning: text search over them is noise."""
        return encoder_kind(self.kind).has_weights and self.weights != RANDOM

    @property
    def spec(self) -> str:
        return encoder_kind(self.kind).spec(self)

    @property
    def encoder_id(self) -> str:
        return encoder_kind(self.kind).encoder_id(self)


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
    """``"tiny"`` / ``"open_clip:ARCH:TAG|PATH|random"`` / ``"va-dataset:NAME"`` -> :class:`EncoderSpec`.

    A checkpoint path must exist (its content hash is part of the encoder id).
    """
    if isinstance(spec, EncoderSpec):
        return spec
    text = (spec or "").strip()
    if text == "auto":
        raise InputError("encoder 'auto' is resolved by `va demo` only; use `tiny` or an open_clip spec")
    for kind in KINDS.values():
        parsed = kind.parse(text)
        if parsed is not None:
            return parsed
    syntaxes = [k.syntax for k in KINDS.values() if k.syntax]
    raise InputError(f"unknown encoder spec {text!r}; use " + ", ".join(syntaxes[:-1]) + " or " + syntaxes[-1])


def _parse_tiny(text: str) -> EncoderSpec | None:
    return EncoderSpec(TINY, TINY_ARCH, "random-seed0") if text == TINY else None


def _parse_stored(text: str) -> EncoderSpec | None:
    if text.startswith(STORED_PREFIX) and len(text) > len(STORED_PREFIX):
        return EncoderSpec(STORED, text[len(STORED_PREFIX):], STORED)
    return None


def _parse_open_clip(text: str) -> EncoderSpec | None:
    parts = text.split(":", 2)
    if parts[0] != OPEN_CLIP:
        return None
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise InputError(f"unknown encoder spec {text!r}; an open_clip spec is `open_clip:ARCH:TAG` "
                         f"(e.g. {DEFAULT_ENCODER}) or `open_clip:ARCH:/path/to/checkpoint`")
    _, arch, weights = parts
    if weights == RANDOM:
        return EncoderSpec(OPEN_CLIP, arch, RANDOM)
    if _looks_like_path(weights):
        path = Path(weights).expanduser().resolve()
        if not path.is_file():
            raise InputError(f"encoder checkpoint {str(path)!r} (from spec {text!r}) is not a file")
        return EncoderSpec(OPEN_CLIP, arch, str(path), checkpoint_sha=_file_sha(path))
    return EncoderSpec(OPEN_CLIP, arch, weights)


def _open_clip_id(spec: EncoderSpec) -> str:
    if spec.weights == RANDOM:
        return f"open_clip:{spec.arch}:random-seed0"
    if spec.is_checkpoint:
        return f"open_clip:{spec.arch}:sha256-{spec.checkpoint_sha}"
    return f"open_clip:{spec.arch}:{spec.weights}"


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
    return encoder_kind(parsed.kind).weights_problem(parsed)


def _hub_weights_problem(parsed: EncoderSpec) -> str | None:
    if parsed.weights == RANDOM or parsed.is_checkpoint:
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


# -- preprocessing -------------------------------------------------------------
INTERPOLATIONS = ("bicubic", "bilinear")


@dataclass(frozen=True)
class Preprocess:
    """How frames become a model's input: open_clip's eval transform for the model (its
    ``preprocess_cfg``), applied to a whole batch with torch ops.

    ``resize_mode``: ``shortest`` scales the shorter side to the size and centre-crops (CLIP);
    ``longest`` scales the longer side and pads with ``fill_color``; ``squash`` scales to the
    size without keeping the aspect (SigLIP). Sizes and crop offsets are rounded as
    torchvision's ``Resize``/``CenterCrop`` and open_clip's ``ResizeKeepRatio`` round them.
    """

    size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"
    fill_color: int = 0

    @classmethod
    def from_cfg(cls, cfg: dict) -> "Preprocess":
        """From an open_clip preprocess config (``model.visual.preprocess_cfg``, ``PreprocessCfg``)."""
        size = cfg["size"]
        size = (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[-2]), int(size[-1]))
        mode, interpolation = cfg.get("resize_mode") or "shortest", cfg.get("interpolation") or "bicubic"
        if mode not in RESIZE_MODES:
            raise InputError(f"preprocess resize_mode {mode!r} is not one of {', '.join(RESIZE_MODES)}")
        # open_clip's eval transform takes bicubic for anything but bilinear ('random' included)
        interpolation = interpolation if interpolation in INTERPOLATIONS else "bicubic"

        def three(v):
            return tuple(float(x) for x in (v if isinstance(v, (list, tuple)) else (v,) * 3))

        return cls(size, three(cfg["mean"]), three(cfg["std"]), interpolation, mode, int(cfg.get("fill_color") or 0))

    def resized_shape(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) a frame is scaled to before its crop or pad."""
        th, tw = self.size
        if self.resize_mode == "squash" or (height, width) == (th, tw):
            return th, tw
        if self.resize_mode == "shortest" and th == tw:
            # torchvision's Resize(int): the shorter side to the size, the other truncated
            short, long = (height, width) if height <= width else (width, height)
            other = int(th * long / short)
            return (th, other) if height <= width else (other, th)
        ratio_h, ratio_w = height / th, width / tw
        ratio = max(ratio_h, ratio_w) if self.resize_mode == "longest" else min(ratio_h, ratio_w)
        return round(height / ratio), round(width / ratio)

    def __call__(self, frames: np.ndarray):
        """uint8 RGB frames (N,H,W,3) -> the normalised (N,3,h,w) float tensor the model takes."""
        import torch
        import torch.nn.functional as F

        batch = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
        h, w = batch.shape[-2:]
        nh, nw = self.resized_shape(h, w)
        if (nh, nw) != (h, w):
            batch = F.interpolate(batch, size=(nh, nw), mode=self.interpolation, antialias=True,
                                  align_corners=False).clamp_(0, 255)
        th, tw = self.size
        if nh < th or nw < tw:  # CenterCropOrPad: pad first, then crop what is left over
            pad_w, pad_h = max(tw - nw, 0), max(th - nh, 0)
            batch = F.pad(batch, (pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2),
                          value=float(self.fill_color))
            nh, nw = batch.shape[-2:]
        if (nh, nw) != (th, tw):
            top, left = int(round((nh - th) / 2.0)), int(round((nw - tw) / 2.0))
            batch = batch[:, :, top:top + th, left:left + tw]
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        return (batch - mean) / std


def preprocess_cfg(arch: str, weights: str | None = None) -> dict:
    """open_clip's preprocessing for ``arch`` with ``weights`` (a pretrained tag, a checkpoint
    path, or None / ``random``), from its own configs: no model is built, nothing downloaded.

    A tag's pretrained config gives mean, std, interpolation and resize mode. A checkpoint of
    an architecture whose pretrained tags all share one preprocessing gets that one (the
    architecture was trained with it); random weights and other checkpoints get open_clip's
    defaults. The size is the architecture's.
    """
    import open_clip
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    model_cfg = open_clip.get_model_config(arch)
    if model_cfg is None:
        _check_arch(arch)  # names the near misses
        raise InputError(f"open_clip has no architecture {arch!r}")
    base = PreprocessCfg(size=model_cfg.get("vision_cfg", {}).get("image_size", PreprocessCfg.size))
    if not weights or weights == RANDOM:
        return merge_preprocess_dict(base, {})
    if not _looks_like_path(weights):
        tag = open_clip.get_pretrained_cfg(arch, weights)
        if not tag:
            raise InputError(f"open_clip has no pretrained tag {weights!r} for {arch!r}")
        return merge_preprocess_dict(base, tag)
    keys = ("mean", "std", "interpolation", "resize_mode")
    tags = [open_clip.get_pretrained_cfg(arch, t) for t in open_clip.list_pretrained_tags_by_model(arch)]
    kinds = {tuple(repr(c.get(k)) for k in keys) for c in tags}
    return merge_preprocess_dict(base, tags[0] if len(kinds) == 1 else {})


# -- the encoders ------------------------------------------------------------
class Encoder:
    """A CLIP model in eval mode: frames and texts in, L2-normalised float32 rows out."""

    def __init__(self, spec: EncoderSpec, model, tokenizer, preprocess: Preprocess, dim: int,
                 batch_size: int = 64):
        self.spec = spec
        self.encoder_id = spec.encoder_id
        self.has_semantics = spec.has_semantics
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.image_size = int(preprocess.size[0])
        self.dim = int(dim)
        self.batch_size = batch_size
        self._lock = threading.Lock()  # one forward pass at a time per model

    @property
    def frame_fit(self) -> FrameFit:
        """How the decoder fits frames to ``image_size`` squares for this encoder: its own resize mode
        and fill, so the square passes through :class:`Preprocess` unscaled."""
        return FrameFit(self.preprocess.resize_mode, self.preprocess.fill_color)

    def __repr__(self) -> str:
        return f"Encoder({self.encoder_id!r}, dim={self.dim}, image_size={self.image_size})"

    @property
    def warning(self) -> str | None:
        if self.has_semantics:
            return None
        return (f"encoder {self.encoder_id} has random weights: its embeddings carry no meaning "
                "(text search is noise); use it for tests and smoke runs only")

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


def _build_tiny(spec: EncoderSpec) -> Encoder:
    import open_clip
    import torch
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
    from open_clip.transform import PreprocessCfg

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CLIP(
            embed_dim=64,
            vision_cfg=CLIPVisionCfg(layers=2, width=64, head_width=32, patch_size=8, image_size=64),
            text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=2, layers=2),
        )
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=77)
    return Encoder(spec, model, tokenizer, Preprocess.from_cfg(asdict(PreprocessCfg(size=64))), 64)


def _build_open_clip(spec: EncoderSpec) -> Encoder:
    import open_clip
    import torch

    _check_arch(spec.arch)
    if spec.weights == RANDOM:
        pretrained = None
    elif spec.is_checkpoint:
        pretrained = spec.weights
    else:
        _hub_file(spec)  # an unknown tag is named before open_clip tries to fetch it
        # the cached file, loaded directly, keeps open_clip off the network
        pretrained = _cached_weights(spec) or spec.weights
    # the preprocessing is passed explicitly: open_clip reads a tag's own only when it loads the tag
    cfg = preprocess_cfg(spec.arch, spec.weights)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            model, _, _ = open_clip.create_model_and_transforms(
                spec.arch, pretrained=pretrained, image_mean=cfg["mean"], image_std=cfg["std"],
                image_interpolation=cfg["interpolation"], image_resize_mode=cfg["resize_mode"])
        except (RuntimeError, FileNotFoundError, KeyError, ValueError) as exc:
            raise EncoderUnavailable(f"cannot load encoder {spec.spec!r}: {exc}") from exc
    dim = model.text_projection.shape[1] if hasattr(model, "text_projection") and model.text_projection is not None \
        else model.visual.output_dim
    preprocess = Preprocess.from_cfg({**cfg, **(getattr(model.visual, "preprocess_cfg", None) or {})})
    return Encoder(spec, model, open_clip.get_tokenizer(spec.arch), preprocess, dim)


def _embeddings_only(spec: EncoderSpec) -> Encoder:
    raise EncoderUnavailable(
        f"encoder {spec.encoder_id!r} is embeddings-only (imported with `va import-va-dataset`): "
        "it cannot encode new video frames or free text. Training, feeds, zero-shot on the dataset's "
        "stored label embeddings and /score work; to search by text or ingest videos use a real "
        f"encoder, e.g. `open_clip:ViT-B-32:/path/to/checkpoint` or `tiny` for a smoke run")


# -- the kinds of encoder -------------------------------------------------------
@dataclass(frozen=True)
class EncoderKind:
    """One kind of encoder spec.

    ``parse(text)``: the spec, or None when the text is not of this kind (malformed text of
    this kind is an InputError); ``spec``/``encoder_id``: its canonical text and the id its
    embeddings are stored under; ``has_weights``: trained weights (else random: no semantics);
    ``text_tower``: it embeds free text (else a label's query embedding must come with the
    corpus, as the released dataset's); ``has_model``: it can be built at all;
    ``weights_problem``: why the weights cannot be had
    here (None if they can), in seconds and before torch is imported; ``build``: the
    :class:`Encoder` (raises EncoderUnavailable for embeddings without a model).
    """

    name: str
    description: str  # one line for people
    syntax: str | None  # how people write it, for messages (None: written by the importer only)
    parse: Callable[[str], "EncoderSpec | None"]
    spec: Callable[[EncoderSpec], str]
    encoder_id: Callable[[EncoderSpec], str]
    build: Callable[[EncoderSpec], Encoder]
    weights_problem: Callable[[EncoderSpec], "str | None"] = lambda spec: None
    has_weights: bool = True
    text_tower: bool = True
    has_model: bool = True  # False: embeddings only, nothing to build (``build`` says why)


OPEN_CLIP = "open_clip"
STORED = "stored"

# The kinds of encoder, tried in this order by parse_spec. A new one is one entry here.
KINDS: dict[str, EncoderKind] = {k.name: k for k in (
    EncoderKind(TINY, "a tiny open_clip architecture with random weights (seed 0): tests and air-gapped smoke runs",
                "`tiny`", _parse_tiny, lambda s: TINY, lambda s: f"tiny:{TINY_ARCH}:random-seed0", _build_tiny,
                has_weights=False),
    EncoderKind(STORED, "embeddings imported with the released dataset, without the model that made them", None,
                _parse_stored, lambda s: f"{STORED_PREFIX}{s.arch}", lambda s: f"{STORED_PREFIX}{s.arch}",
                _embeddings_only,
                weights_problem=lambda s: "its embeddings were imported without the model that made them",
                text_tower=False, has_model=False),
    EncoderKind(OPEN_CLIP, "an open_clip architecture with a pretrained tag, a local checkpoint or random weights",
                f"`open_clip:ARCH:TAG` (e.g. {DEFAULT_ENCODER}) or `open_clip:ARCH:/path/to/checkpoint`",
                _parse_open_clip, lambda s: f"open_clip:{s.arch}:{s.weights}", _open_clip_id, _build_open_clip,
                weights_problem=_hub_weights_problem),
)}


def encoder_kind(name: str) -> EncoderKind:
    """The kind of encoder called ``name``."""
    found = KINDS.get(name)
    if found is None:
        raise InputError(f"unknown kind of encoder {name!r}; kinds are: {', '.join(KINDS)}")
    return found


_encoders: dict[str, Encoder] = {}
_encoders_lock = threading.Lock()


def load_encoder(spec: str | EncoderSpec) -> Encoder:
    """The encoder of a spec, built once per process. Fails in seconds if its weights cannot be had."""
    parsed = parse_spec(spec)
    kind = encoder_kind(parsed.kind)
    with _encoders_lock:
        hit = _encoders.get(parsed.encoder_id)
        if hit is not None:
            return hit
        if kind.has_model:  # an embeddings-only kind's build says why it has none
            reason = kind.weights_problem(parsed)  # before torch is imported: seconds, not minutes
            if reason:
                raise _unavailable(parsed, reason)
        encoder = kind.build(parsed)
        _encoders[parsed.encoder_id] = encoder
        return encoder
