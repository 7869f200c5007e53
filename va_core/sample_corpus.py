"""A procedurally generated video corpus with known ground truth per shot.

Each video is a few shots joined by hard cuts. A shot has a dominant background colour,
one moving object (a ball, a box or a bar) and a camera motion (static, pan, zoom or
shake), and a sound of its own: a tone whose pitch follows the colour, whose timbre follows
the object and whose course follows the motion (steady, gliding, swelling, trembling), so
the player's sound has something to say. Everything follows from the seed, so tests and
the demo can check what ingestion found against what was drawn: ``ground_truth.csv`` lies
beside the videos, one row per shot with its exact frame span.

Cut detection may place a boundary a frame or two away from the drawn one;
:func:`truth_for_clips` maps ingested clips to shots by largest frame overlap.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import polars as pl

__all__ = ["generate", "truth_for_clips"]

GENERATOR_VERSION = 2  # 2: every video has a soundtrack
FPS = 24
SAMPLE_RATE = 16_000  # mono AAC: a tone needs no more
AUDIO_BIT_RATE = 32_000
WIDTH, HEIGHT = 320, 180
TRUTH_FILE = "ground_truth.csv"
MANIFEST_FILE = "corpus.json"

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 30),
    "orange": (235, 130, 20),
    "yellow": (225, 210, 40),
    "green": (40, 160, 50),
    "cyan": (30, 190, 200),
    "blue": (30, 60, 200),
    "purple": (130, 40, 170),
    "grey": (128, 128, 128),
}
OBJECTS = ("ball", "box", "bar")
MOTIONS = ("static", "pan", "zoom", "shake")
# the sound of a shot: pitch (Hz) per colour, harmonics (multiple, weight) per object
PITCHES = dict(zip(COLOURS, (196.0, 220.0, 262.0, 294.0, 330.0, 392.0, 440.0, 523.0)))
TIMBRES = {"ball": ((1, 1.0),), "box": ((1, 1.0), (3, 1 / 3), (5, 1 / 5)),
           "bar": ((1, 1.0), (2, 1 / 2), (3, 1 / 3), (4, 1 / 4))}
LEVEL = 0.25  # peak amplitude of a shot's tone
FADE_S = 0.008  # at each cut: the change of sound is heard, without a click
TRUTH_COLUMNS = ["colour", "object", "motion"]


@dataclass(frozen=True)
class SampleCorpus:
    """A generated corpus: its folder, the video files and the per-shot ground truth."""

    dir: Path
    videos: list[Path]
    truth: pl.DataFrame  # video, shot, frame_in, frame_out (inclusive), start_s, end_s, colour, object, motion

    @property
    def truth_path(self) -> Path:
        return self.dir / TRUTH_FILE


def _plan(rng: np.random.Generator, video: str) -> list[dict]:
    """Shots of one video: 3 to 6, each 0.5 to 4 s, no two neighbours of one colour."""
    shots, frame, previous = [], 0, None
    for i in range(int(rng.integers(3, 7))):
        # About one shot in six is shorter than a second (it still needs a sampled frame).
        seconds = rng.uniform(0.5, 0.95) if rng.random() < 0.17 else rng.uniform(1.2, 4.0)
        n = max(12, int(round(seconds * FPS)))
        colour = str(rng.choice([c for c in COLOURS if c != previous]))
        previous = colour
        shots.append({
            "video": video, "shot": i, "frame_in": frame, "frame_out": frame + n - 1,
            "start_s": frame / FPS, "end_s": (frame + n) / FPS, "colour": colour,
            "object": str(rng.choice(OBJECTS)), "motion": str(rng.choice(MOTIONS)),
        })
        frame += n
    return shots


def _world(rng: np.random.Generator, colour: str) -> np.ndarray:
    """A textured background twice the frame size, so the camera has room to move."""
    h, w = 2 * HEIGHT, 2 * WIDTH
    base = np.array(COLOURS[colour], dtype=np.float32)
    # Smooth blotches (bilinear upsampling of coarse noise) plus soft stripes: texture that
    # makes pan, zoom and shake visible without hiding the dominant colour.
    coarse = rng.uniform(0.75, 1.2, size=(h // 40 + 2, w // 40 + 2)).astype(np.float32)
    ys, xs = np.linspace(0, coarse.shape[0] - 1.001, h), np.linspace(0, coarse.shape[1] - 1.001, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    blotch = (coarse[y0][:, x0] * (1 - fy) * (1 - fx) + coarse[y0 + 1][:, x0] * fy * (1 - fx)
              + coarse[y0][:, x0 + 1] * (1 - fy) * fx + coarse[y0 + 1][:, x0 + 1] * fy * fx)
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    stripes = 1 + 0.08 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) / rng.uniform(6, 14))
    return _yuv(np.clip(base[None, None, :] * (blotch * stripes)[..., None], 0, 255))


# BT.601 limited range, what decoders assume for untagged SD video.
_RGB_TO_YUV = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
                       dtype=np.float64) / 255.0
_YUV_OFFSET = np.array([16.0, 128.0, 128.0])


def _yuv(rgb) -> np.ndarray:
    """RGB (..., 3) in 0..255 -> YUV (..., 3) uint8. Frames are drawn in YUV so that writing
    them needs no colour conversion per frame."""
    rgb = np.asarray(rgb, np.float64)
    # Element-wise, not a matrix product: BLAS may round differently from run to run.
    yuv = [sum(rgb[..., c] * _RGB_TO_YUV[row, c] for c in range(3)) + _YUV_OFFSET[row] for row in range(3)]
    return np.clip(np.stack(yuv, axis=-1), 0, 255).round().astype(np.uint8)


def _camera(motion: str, t: int, n: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """Top-left corner (y, x) of the view in the world and its zoom (1 = frame size)."""
    cy, cx = HEIGHT / 2, WIDTH / 2
    if motion == "pan":
        return cy, cx - WIDTH / 2 + WIDTH * t / max(1, n - 1), 1.0
    if motion == "zoom":
        z = 1.0 - 0.45 * t / max(1, n - 1)  # zoom in: the view shrinks around the centre
        return cy + HEIGHT * (1 - z) / 2, cx + WIDTH * (1 - z) / 2, z
    if motion == "shake":
        return cy + rng.uniform(-7, 7), cx + rng.uniform(-7, 7), 1.0
    return cy, cx, 1.0


def _view(world: np.ndarray, y: float, x: float, zoom: float) -> np.ndarray:
    if zoom == 1.0:  # a plain window: slicing, no gather
        top = int(min(max(y, 0), world.shape[0] - HEIGHT))
        left = int(min(max(x, 0), world.shape[1] - WIDTH))
        return world[top:top + HEIGHT, left:left + WIDTH]
    rows = np.clip((y + np.arange(HEIGHT) * zoom).astype(int), 0, world.shape[0] - 1)
    cols = np.clip((x + np.arange(WIDTH) * zoom).astype(int), 0, world.shape[1] - 1)
    return world[rows][:, cols]


def _draw(frame: np.ndarray, obj: str, cy: float, cx: float, tone: np.ndarray) -> None:
    yy, xx = np.ogrid[0:HEIGHT, 0:WIDTH]
    if obj == "ball":
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= 16 ** 2
    elif obj == "box":
        mask = (np.abs(yy - cy) <= 14) & (np.abs(xx - cx) <= 14)
    else:
        mask = (np.abs(yy - cy) <= 30) & (np.abs(xx - cx) <= 5)
    frame[mask] = tone


def _render_shot(shot: dict, rng: np.random.Generator):
    n = shot["frame_out"] - shot["frame_in"] + 1
    world = _world(rng, shot["colour"])
    # The object crosses the frame on a straight line in a light or dark tone.
    start = np.array([rng.uniform(30, HEIGHT - 30), rng.uniform(20, 60)])
    end = np.array([rng.uniform(30, HEIGHT - 30), rng.uniform(WIDTH - 60, WIDTH - 20)])
    if rng.random() < 0.5:
        start, end = end, start
    tone = _yuv((245, 245, 245) if sum(COLOURS[shot["colour"]]) < 420 else (20, 20, 20))
    for t in range(n):
        frame = _view(world, *_camera(shot["motion"], t, n, rng)).copy()
        cy, cx = start + (end - start) * t / max(1, n - 1)
        _draw(frame, shot["object"], cy, cx, tone)
        # yuv420p as PyAV takes it: the Y plane, then U and V subsampled 2x2, row-packed.
        yield np.concatenate([frame[:, :, 0], frame[::2, ::2, 1].reshape(-1, WIDTH),
                              frame[::2, ::2, 2].reshape(-1, WIDTH)])


def _shot_sound(shot: dict) -> np.ndarray:
    """The shot's tone over its span, float32 in [-LEVEL, LEVEL]; no randomness, so frames stay as they were."""
    start, end = round(shot["start_s"] * SAMPLE_RATE), round(shot["end_s"] * SAMPLE_RATE)
    t = np.arange(end - start, dtype=np.float64) / SAMPLE_RATE
    course = t / t[-1]  # 0 -> 1 over the shot (a shot has at least 12 frames)
    pitch = PITCHES[shot["colour"]] * (1 + 0.5 * course if shot["motion"] == "pan" else 1.0)  # a glide up a fifth
    phase = 2 * np.pi * np.cumsum(np.broadcast_to(pitch, t.shape)) / SAMPLE_RATE
    weights = TIMBRES[shot["object"]]
    tone = sum(w * np.sin(k * phase) for k, w in weights) / sum(w for _, w in weights)
    if shot["motion"] == "zoom":
        tone = tone * (0.25 + 0.75 * course)  # swells as the camera closes in
    elif shot["motion"] == "shake":
        tone = tone * (1 - 0.8 * (0.5 + 0.5 * np.sin(2 * np.pi * 7.0 * t)))  # trembles
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / FADE_S)
    return (LEVEL * tone * fade).astype(np.float32)


def _soundtrack(shots: list[dict]) -> np.ndarray:
    """The video's sound: its shots' tones end to end, shape (1, samples), mono planar."""
    return np.concatenate([_shot_sound(shot) for shot in shots])[None, :]


def _write_video(path: Path, shots: list[dict], rng: np.random.Generator) -> None:
    import av

    tmp = path.with_name(path.name + ".part")
    sound = _soundtrack(shots)
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        # One thread and no macroblock tree: x264's output then depends on the frames only
        # (with mb-tree, repeated runs here gave different bytes).
        stream.options = {"crf": "20", "preset": "veryfast", "x264-params": "mbtree=0"}
        stream.codec_context.thread_count = 1
        audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono", bit_rate=AUDIO_BIT_RATE,
                                     time_base=Fraction(1, SAMPLE_RATE))
        index, written = 0, 0
        for shot in shots:
            for yuv in _render_shot(shot, rng):
                frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                frame.pts = index
                index += 1
                for packet in stream.encode(frame):
                    container.mux(packet)
                # the sound as far as the picture, so the two are interleaved in the file
                upto = min(sound.shape[1], round(index * SAMPLE_RATE / FPS))
                if upto > written:
                    chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(sound[:, written:upto]), format="fltp",
                                                       layout="mono")
                    chunk.sample_rate, chunk.pts, chunk.time_base = SAMPLE_RATE, written, Fraction(1, SAMPLE_RATE)
                    written = upto
                    for packet in audio.encode(chunk):
                        container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    tmp.replace(path)


def generate(out_dir, n_videos: int = 12, seed: int = 0, progress: bool = False) -> SampleCorpus:
    """Write ``n_videos`` short H.264 mp4 videos (with AAC sound) and ``ground_truth.csv`` into ``out_dir``.

    Deterministic: the same (n_videos, seed) gives the same shots and frames. A folder that
    already holds this exact corpus is left untouched (its files keep their times, so
    ingestion finds nothing new).
    """
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"generator_version": GENERATOR_VERSION, "n_videos": n_videos, "seed": seed,
                "fps": FPS, "width": WIDTH, "height": HEIGHT, "sample_rate": SAMPLE_RATE}
    names = [f"sample_{i:03d}.mp4" for i in range(n_videos)]
    manifest_path = out / MANIFEST_FILE
    if (manifest_path.exists() and (out / TRUTH_FILE).exists() and all((out / n).exists() for n in names)
            and json.loads(manifest_path.read_text()) == manifest):
        return SampleCorpus(out, [out / n for n in names], pl.read_csv(out / TRUTH_FILE))
    rows = []
    iterator = range(n_videos)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="generating sample videos", unit="video")
    for i in iterator:
        rng = np.random.default_rng([seed, i])
        shots = _plan(rng, names[i])
        _write_video(out / names[i], shots, rng)
        rows.extend(shots)
    truth = pl.DataFrame(rows)
    truth.write_csv(out / TRUTH_FILE)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return SampleCorpus(out, [out / n for n in names], truth)


def load_truth(corpus_dir) -> pl.DataFrame:
    path = Path(corpus_dir) / TRUTH_FILE
    if not path.exists():
        from va_core.errors import NotFound

        raise NotFound(f"{path} does not exist: {corpus_dir} is not a generated sample corpus")
    return pl.read_csv(path)


def truth_for_clips(corpus_dir, clips: pl.DataFrame) -> pl.DataFrame:
    """Ground truth of ingested clips: the drawn shot that overlaps each clip most.

    ``clips`` needs clip_key, video_id, frame_in, frame_out (the ``clips`` table). Returns
    one row per clip of a corpus video: clip_key, video, shot, colour, object, motion and
    ``truth_overlap`` (share of the clip's frames inside that shot, 1.0 when the cuts match).
    """
    from va_core.video import video_id_for

    corpus = Path(corpus_dir).expanduser().resolve()
    truth = load_truth(corpus)
    ids = pl.DataFrame({"video": truth["video"].unique().to_list()}).with_columns(
        pl.col("video").map_elements(lambda name: video_id_for(corpus / name), return_dtype=pl.String)
        .alias("video_id"))
    shots = truth.join(ids, on="video").rename({"frame_in": "t_in", "frame_out": "t_out"})
    joined = clips.select("clip_key", "video_id", "frame_in", "frame_out").join(shots, on="video_id")
    overlap = (pl.min_horizontal("frame_out", "t_out") - pl.max_horizontal("frame_in", "t_in") + 1).clip(lower_bound=0)
    return (
        joined.with_columns((overlap / (pl.col("frame_out") - pl.col("frame_in") + 1)).alias("truth_overlap"))
        .sort(["clip_key", "truth_overlap"], descending=[False, True])
        .unique("clip_key", keep="first", maintain_order=True)
        .select("clip_key", "video", "shot", *TRUTH_COLUMNS, "truth_overlap")
    )
