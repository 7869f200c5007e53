"""Embedding pipeline efficiency: ingestion frames/s over bare-encoder frames/s, same frames.

Ingestion (``va_core.ingest.ingest``: decode, detect shots, sample, encode, write to Delta)
runs over a generated sample corpus into a fresh home. The reference, same run and same
process: the frames ingestion encoded, already decoded and in memory, encoded by the bare
encoder in batches of the size ingestion uses. Efficiency = ingestion frames/s / bare
frames/s; 1.0 means decoding and writing cost nothing on top of encoding (they overlap it
entirely). Also reported: decoding alone (the producer's work without the encoder).

Encoders: ``tiny`` and ``open_clip:ViT-B-32:random`` (the real architecture, random
weights: the speed of ViT-B-32 without its download).

    .venv/bin/python -m benchmarks.embedding_pipeline           # 24 videos
    .venv/bin/python -m benchmarks.embedding_pipeline --quick   # 3 videos

Writes benchmarks/results/embedding_pipeline[_quick].json and prints a markdown table.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ._results import arguments, markdown, report, save

ENCODERS = ["tiny", "open_clip:ViT-B-32:random"]


def _frames(corpus: Path, size: int) -> np.ndarray:
    from va_core.video import find_videos, scan

    files, _ = find_videos([corpus])
    out = [s.frames for f in files for s in scan(f, size).shots]
    return np.concatenate(out)


def _decode_seconds(corpus: Path, size: int) -> float:
    from va_core.video import find_videos, scan

    files, _ = find_videos([corpus])
    t0 = time.perf_counter()
    for f in files:
        for _ in scan(f, size).shots:
            pass
    return time.perf_counter() - t0


def measure(spec: str, corpus: Path, work: Path) -> dict:
    from va_core.config import Settings
    from va_core.encoders import load_encoder
    from va_core.ingest import ingest

    encoder = load_encoder(spec)  # loading is not part of either measurement
    batch = 64 if encoder.image_size <= 128 else 32
    frames = _frames(corpus, encoder.image_size)
    encoder.encode_images(frames[:batch])  # warm-up: allocator, thread pool

    home = work / spec.replace(":", "_").replace("/", "_")
    settings = Settings(home=home, warehouse_uri=str(home / "warehouse"), encoder=spec)
    t0 = time.perf_counter()
    report = ingest(settings, [corpus], progress=False, batch_frames=batch)
    ingest_s = time.perf_counter() - t0
    if report.n_frames != len(frames):
        raise RuntimeError(f"ingestion encoded {report.n_frames} frames, the scan found {len(frames)}")

    t0 = time.perf_counter()
    for s in range(0, len(frames), batch):
        encoder.encode_images(frames[s:s + batch])
    bare_s = time.perf_counter() - t0
    decode_s = _decode_seconds(corpus, encoder.image_size)
    n = len(frames)
    return {
        "encoder": spec, "encoder_id": encoder.encoder_id, "videos": len(report.videos),
        "clips": report.n_clips, "frames": n, "batch": batch,
        "decoded_frames": sum(v.n_decoded for v in report.videos),
        "ingest_s": round(ingest_s, 3), "ingest_fps": round(n / ingest_s, 2),
        "encode_in_ingest_s": round(report.encode_seconds, 3),
        "bare_s": round(bare_s, 3), "bare_fps": round(n / bare_s, 2),
        "decode_only_s": round(decode_s, 3),
        "efficiency": round(bare_s / ingest_s, 3),
    }


def table(rows: list[dict]) -> str:
    head = ["encoder", "videos", "clips", "frames encoded", "frames decoded", "ingestion frames/s",
            "bare encoder frames/s", "efficiency", "decoding alone s", "ingestion s"]
    return markdown(head, [[r["encoder"], r["videos"], r["clips"], r["frames"], r["decoded_frames"],
                            f"{r['ingest_fps']:.1f}", f"{r['bare_fps']:.1f}", f"{r['efficiency']:.2f}",
                            f"{r['decode_only_s']:.2f}", f"{r['ingest_s']:.2f}"] for r in rows],
                    align="l" + "r" * 9)


def main(argv=None) -> int:
    parser = arguments(__doc__, "3 videos")
    parser.add_argument("--videos", type=int, default=None)
    parser.add_argument("--encoders", nargs="*", default=ENCODERS)
    args = parser.parse_args(argv)
    n_videos = args.videos or (3 if args.quick else 24)

    from va_core.sample_corpus import generate

    with tempfile.TemporaryDirectory(prefix="va-bench-") as tmp:
        work = Path(tmp)
        print(f"generating {n_videos} sample videos", file=sys.stderr)
        corpus = generate(work / "corpus", n_videos=n_videos, seed=0).dir
        rows = []
        for spec in args.encoders:
            print(f"measuring {spec}", file=sys.stderr)
            rows.append(measure(spec, corpus, work))
            print(table(rows[-1:]), file=sys.stderr)
    report(table(rows), save("embedding_pipeline", args.quick, {"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
