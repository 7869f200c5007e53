"""Ingestion: video files -> ``videos``, ``clips`` and ``clip_embeddings``.

Incremental and idempotent:

- a file already ingested, unchanged (same size and modification time, or same content
  hash) and embedded by the current encoder is skipped: a re-run writes nothing;
- a file whose content changed has all its rows replaced (``Warehouse.replace`` per
  video_id, so readers never see a mix), embeddings of other encoders included, since
  those described the old shots;
- a known file without embeddings of the current encoder gets only those, from its known
  shots, by seeking to the sampled frames;
- a file that cannot be read becomes a ``videos`` row with status ``failed`` and the error;
  the other files go on. It is retried when it changes.

Decoding runs in a producer thread and overlaps encoding in the calling thread. Rows are
written in batches (``flush_videos`` / ``flush_seconds``): clips and embeddings first, the
``videos`` row last, so a video whose ``videos`` row exists is complete; after a crash the
others are redone and replace their partial rows.

Every write replaces the rows of its videos (a conditional commit, never a blind append),
so two ingests of one folder at once, on one machine or several, leave one row per key:
the loser's commit is refused by Delta and rerun. Duplicates left by older versions are
removed at the start of every ingest (:func:`repair_duplicates`).
"""
from __future__ import annotations

import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from va_core.encoders import parse_spec
from va_core.errors import InputError
from va_core.motion import ENCODER_ID as MOTION_ENCODER_ID
from va_core.video import (FrameFit, Shot, Transition, canonical_uri, content_hash, find_videos, probe,
                           put_until_stopped, sample_frames, scan, video_id_for)
from va_core.warehouse import Warehouse, embedding_column

__all__ = ["FAILED", "TABLES", "ingest", "ingest_video", "plan"]

TABLES = ("videos", "clips", "transitions", "clip_embeddings")

ADDED, REPLACED, EMBEDDED, UNCHANGED, FAILED = "added", "replaced", "embedded", "unchanged", "failed"


@dataclass
class VideoOutcome:
    """What ingestion did with one file. ``action``: added, replaced, embedded, unchanged or failed."""

    uri: str
    video_id: str
    action: str
    error: str | None = None
    n_clips: int = 0
    n_frames: int = 0  # frames sampled and encoded
    n_decoded: int = 0


@dataclass
class IngestReport:
    encoder_id: str
    videos: list[VideoOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # paths that are neither files nor folders
    versions_before: dict = field(default_factory=dict)
    versions_after: dict = field(default_factory=dict)
    seconds: float = 0.0
    encode_seconds: float = 0.0
    warning: str | None = None
    repaired: dict = field(default_factory=dict)  # table -> duplicate rows removed before ingesting

    def count(self, action: str) -> int:
        return sum(v.action == action for v in self.videos)

    @property
    def n_clips(self) -> int:
        return sum(v.n_clips for v in self.videos)

    @property
    def n_frames(self) -> int:
        return sum(v.n_frames for v in self.videos)

    @property
    def frames_per_s(self) -> float:
        return self.n_frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def wrote(self) -> bool:
        return self.versions_before != self.versions_after

    def to_dict(self) -> dict:
        return {
            "encoder_id": self.encoder_id,
            "counts": {a: self.count(a) for a in (ADDED, REPLACED, EMBEDDED, UNCHANGED, FAILED)},
            "n_clips": self.n_clips, "n_frames": self.n_frames,
            "seconds": round(self.seconds, 3), "frames_per_s": round(self.frames_per_s, 2),
            "versions_before": self.versions_before, "versions_after": self.versions_after,
            "videos": [asdict(v) for v in self.videos], "problems": self.problems, "warning": self.warning,
            "repaired": self.repaired,
        }

    def summary(self) -> str:
        c = {a: self.count(a) for a in (ADDED, REPLACED, EMBEDDED, UNCHANGED, FAILED)}
        lines = [
            f"{len(self.videos)} video file(s) with {self.encoder_id}: {c[ADDED]} added, {c[REPLACED]} replaced, "
            f"{c[EMBEDDED]} embedded, {c[UNCHANGED]} unchanged, {c[FAILED]} failed",
            f"{self.n_clips} clips, {self.n_frames} frames encoded in {self.seconds:.1f} s "
            f"({self.frames_per_s:.1f} frames/s)" + ("" if self.wrote else "; nothing written"),
        ]
        failed = [v for v in self.videos if v.action == FAILED]
        if failed:
            lines.append("failed:")
            lines += [f"  {v.uri}: {v.error}" for v in failed]
        if self.problems:
            lines.append("skipped:")
            lines += [f"  {p}" for p in self.problems]
        if self.repaired:
            lines.append("repaired: removed duplicate rows (" +
                         ", ".join(f"{t}: {n}" for t, n in self.repaired.items()) + ")")
        if self.warning:
            lines.append(f"note: {self.warning}")
        return "\n".join(lines)


@dataclass
class _Job:
    path: Path
    uri: str
    video_id: str
    kind: str  # ADDED | REPLACED | EMBEDDED
    size: int
    mtime_ns: int
    digest: str | None
    known_shots: list[Shot] | None = None  # EMBEDDED: shots from the clips table
    known_transitions: list[Transition] | None = None  # EMBEDDED: from the transitions table


def _now() -> datetime:
    return datetime.now(timezone.utc)


_FILTER_MAX = 1000  # up to this many ids, reads filter on them; beyond, whole columns are read


def _ids_in(wh: Warehouse, table: str, video_ids: list[str], where: dict | None = None) -> set[str]:
    """Which of ``video_ids`` have rows in ``table`` (one small column read)."""
    cond = dict(where or {})
    if len(video_ids) <= _FILTER_MAX:
        cond["video_id"] = video_ids or [""]
    return set(wh.read(table, columns=["video_id"], where=cond)["video_id"].unique().to_list()) & set(video_ids)


def _known(wh: Warehouse, encoder_id: str, video_ids: list[str]) -> tuple[dict[str, dict], set[str]]:
    """Existing videos rows of these ids, and those of them embedded by this encoder."""
    where = {"video_id": video_ids or [""]} if len(video_ids) <= _FILTER_MAX else None
    videos = {r["video_id"]: r for r in wh.read(
        "videos", columns=["video_id", "status", "error", "size_bytes", "mtime_ns", "content_hash"],
        where=where).to_dicts()}
    return videos, _ids_in(wh, "clip_embeddings", video_ids, {"encoder_id": encoder_id})


def repair_duplicates(wh: Warehouse) -> dict[str, int]:
    """One row per key in the corpus tables: duplicates (from an older version's concurrent
    ingests, say) are removed before anything is planned. Returns table -> rows removed."""
    removed = {t: wh.dedupe(t) for t in TABLES if wh.exists(t)}
    return {t: n for t, n in removed.items() if n}


def _digest(path: Path) -> str | None:
    try:
        return content_hash(path)
    except OSError:  # unreadable: decoding will fail too and store the reason
        return None


def plan(wh: Warehouse, files: list[Path], encoder_id: str) -> tuple[list[_Job], list[VideoOutcome]]:
    """Split files into work to do and files that are up to date. Reads only small columns."""
    videos, embedded = _known(wh, encoder_id, [video_id_for(f) for f in files])
    jobs, unchanged = [], []
    for path in files:
        uri, vid = canonical_uri(path), video_id_for(path)
        st = path.stat()
        row = videos.get(vid)
        restat = row is not None and (row["size_bytes"], row["mtime_ns"]) != (st.st_size, st.st_mtime_ns)
        digest = _digest(path) if restat else None
        same = row is not None and (not restat or (digest is not None and digest == row["content_hash"]))
        if same and (row["status"] == "failed" or vid in embedded):
            unchanged.append(VideoOutcome(uri, vid, UNCHANGED, error=row["error"] if row["status"] == "failed" else None))
            continue
        if same:
            kind, digest = EMBEDDED, row["content_hash"]
        else:
            kind = REPLACED if row is not None else ADDED
            digest = digest or _digest(path)
        jobs.append(_Job(path, uri, vid, kind, st.st_size, st.st_mtime_ns, digest))
    need_shots = [j.video_id for j in jobs if j.kind == EMBEDDED]
    if need_shots:
        clips = wh.read("clips", columns=["video_id", "frame_in", "frame_out", "start_s", "end_s"],
                        where={"video_id": need_shots}).sort("frame_in")
        by_video: dict[str, list[Shot]] = {}
        for r in clips.to_dicts():
            by_video.setdefault(r["video_id"], []).append(Shot(r["frame_in"], r["frame_out"], r["start_s"], r["end_s"]))
        gradual: dict[str, list[Transition]] = {}
        if wh.exists("transitions"):
            for r in wh.read("transitions", where={"video_id": need_shots}).to_dicts():
                gradual.setdefault(r["video_id"], []).append(
                    Transition(r["kind"], r["frame_start"], r["frame_end"], r["start_s"], r["end_s"]))
        for j in jobs:
            if j.kind == EMBEDDED:
                j.known_transitions = gradual.get(j.video_id, [])
                j.known_shots = by_video.get(j.video_id)
                if not j.known_shots:  # an ok video without clips: rebuild it entirely
                    j.kind = REPLACED
    return jobs, unchanged


# -- the pipeline ---------------------------------------------------------------
_END = object()


def _produce(jobs: list[_Job], size: int, fit: FrameFit, out: queue.Queue, stop: threading.Event,
             scan_options: dict) -> None:
    """Decode every job's shots into ``out``: ("begin", job, info), ("shot", job, ShotFrames),
    ("end", job, (n_decoded, transitions)) or ("fail", job, message); then _END. Frames are
    ``size`` squares fitted as ``fit`` says (the encoder's)."""

    def put(item) -> bool:
        return put_until_stopped(out, item, stop, 0.2)

    try:
        for job in jobs:
            if stop.is_set():
                return
            try:
                if job.kind == EMBEDDED:
                    info = probe(job.path)
                    if not put(("begin", job, info)):
                        return
                    for item in sample_frames(job.path, job.known_shots, size, transitions=job.known_transitions,
                                              fit=fit):
                        if not put(("shot", job, item)):
                            return
                    put(("end", job, (0, [])))
                else:
                    result = scan(job.path, size, fit=fit, **scan_options)
                    if not put(("begin", job, result.info)):
                        return
                    for item in result.shots:
                        if not put(("shot", job, item)):
                            return
                    put(("end", job, (result.n_decoded, result.transitions)))
            except InputError as exc:
                put(("fail", job, str(exc).removeprefix(f"{job.path}: ")))
            except Exception as exc:  # one bad file never stops the batch; the error is kept
                put(("fail", job, f"{type(exc).__name__}: {exc}"))
    finally:
        while True:  # _END must arrive even when the queue is full and nobody stops us
            try:
                out.put(_END, timeout=0.2)
                break
            except queue.Full:
                if stop.is_set():
                    break


@dataclass
class _Video:
    job: _Job
    info: object = None
    shots: list = field(default_factory=list)  # [Shot, n_sampled, embedding or None, motion descriptor or None]
    ended: bool = False
    n_decoded: int = 0
    transitions: list = field(default_factory=list)
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.error is not None or (self.ended and all(s[2] is not None for s in self.shots))


class _Writer:
    """Buffers finished videos and writes them in a few commits per table."""

    def __init__(self, wh: Warehouse, encoder_id: str, video_ids: list[str], flush_videos: int,
                 flush_seconds: float):
        self.wh, self.encoder_id = wh, encoder_id
        self.flush_videos, self.flush_seconds = flush_videos, flush_seconds
        self.pending: list[_Video] = []
        self.last = time.monotonic()
        # Video ids that already have rows: their rows are replaced, the others appended.
        self.with_clips = _ids_in(wh, "clips", video_ids)
        self.with_transitions = _ids_in(wh, "transitions", video_ids)
        self.embedded_any = _ids_in(wh, "clip_embeddings", video_ids)

    def add(self, video: _Video) -> None:
        self.pending.append(video)
        if len(self.pending) >= self.flush_videos or time.monotonic() - self.last >= self.flush_seconds:
            self.flush()

    def _put(self, table: str, rows: pa.Table, ids: list[str], known: set[str], where_extra: dict | None = None):
        """Replace the rows of ``ids`` atomically, never a blind append.

        A replace is a conditional commit: if another ingest (another process or machine)
        wrote rows of these videos since this one read the table, Delta refuses the commit
        and it is rerun, replacing them. So concurrent ingests of one folder leave one row
        per key. When none of ``ids`` had rows and none were added, nothing is committed.
        """
        if not ids or (not rows.num_rows and known.isdisjoint(ids)):
            return
        self.wh.replace(table, {"video_id": sorted(set(ids)), **(where_extra or {})}, rows)

    def flush(self) -> None:
        batch, self.pending, self.last = self.pending, [], time.monotonic()
        if not batch:
            return
        now = _now()
        clip_rows, transition_rows, emb_keys, emb_vids, emb_mats, motion_keys = [], [], [], [], [], []
        motion_mats = []
        rebuilt, embedded_only, video_rows = [], [], []
        for v in batch:
            job = v.job
            ok = v.error is None
            if job.kind != EMBEDDED:
                rebuilt.append(job.video_id)
            else:
                embedded_only.append(job.video_id)
            if ok and job.kind != EMBEDDED:
                transition_rows += [{"video_id": job.video_id, "kind": tr.kind, "frame_start": tr.frame_start,
                                     "frame_end": tr.frame_end, "start_s": tr.start_s, "end_s": tr.end_s,
                                     "boundary_frame": tr.boundary} for tr in v.transitions]
            if ok:
                for shot, n_sampled, emb, motion in v.shots:
                    key = f"{job.video_id}|{shot.frame_in}"
                    if motion is not None:
                        motion_keys.append((key, job.video_id))
                        motion_mats.append(motion)
                    if job.kind != EMBEDDED:
                        clip_rows.append({"clip_key": key, "video_id": job.video_id, "frame_in": shot.frame_in,
                                          "frame_out": shot.frame_out, "start_s": shot.start_s,
                                          "end_s": shot.end_s, "n_sampled": n_sampled})
                    emb_keys.append(key)
                    emb_vids.append(job.video_id)
                    emb_mats.append(emb)
            info = v.info
            video_rows.append({
                "video_id": job.video_id, "uri": job.uri, "status": "ok" if ok else "failed", "error": v.error,
                "duration_s": getattr(info, "duration_s", None), "fps": getattr(info, "fps", None),
                "width": getattr(info, "width", None), "height": getattr(info, "height", None),
                "n_frames": (v.n_decoded or getattr(info, "n_frames", None)) if ok else getattr(info, "n_frames", None),
                "size_bytes": job.size, "mtime_ns": job.mtime_ns, "content_hash": job.digest,
                "n_clips": len(v.shots) if ok else 0, "ingested_at": now,
            })
        # An embedding-only job leaves its videos row and clips as they are (even when it fails).
        video_rows = [r for r, v in zip(video_rows, batch) if v.job.kind != EMBEDDED]
        dim = emb_mats[0].shape[0] if emb_mats else 0
        embeddings = pa.table({
            "clip_key": pa.array(emb_keys, pa.string()), "video_id": pa.array(emb_vids, pa.string()),
            "encoder_id": pa.array([self.encoder_id] * len(emb_keys), pa.string()),
            "embedding": embedding_column(np.stack(emb_mats) if emb_mats else np.zeros((0, dim), np.float32)),
        })
        clips = pa.Table.from_pylist(clip_rows, schema=self.wh.spec("clips").schema)
        self._put("clips", clips, rebuilt, self.with_clips)
        transitions = pa.Table.from_pylist(transition_rows, schema=self.wh.spec("transitions").schema)
        self._put("transitions", transitions, rebuilt, self.with_transitions)
        # Rebuilt videos lose the embeddings of every encoder (they described the old shots);
        # embedding-only videos replace just this encoder's rows.
        rebuilt_emb = embeddings.filter(pc.is_in(embeddings["video_id"], pa.array(rebuilt, pa.string())))
        if motion_keys:  # the camera-motion descriptor is an embedding of its own, beside the encoder's
            rebuilt_emb = pa.concat_tables([rebuilt_emb, pa.table({
                "clip_key": pa.array([k for k, _ in motion_keys], pa.string()),
                "video_id": pa.array([vid for _, vid in motion_keys], pa.string()),
                "encoder_id": pa.array([MOTION_ENCODER_ID] * len(motion_keys), pa.string()),
                "embedding": embedding_column(np.stack(motion_mats)),
            })])
        self._put("clip_embeddings", rebuilt_emb, rebuilt, self.embedded_any)
        only_emb = embeddings.filter(pc.is_in(embeddings["video_id"], pa.array(embedded_only, pa.string())))
        if embedded_only and only_emb.num_rows:
            self.wh.replace("clip_embeddings", {"video_id": sorted(set(embedded_only)),
                                                "encoder_id": self.encoder_id}, only_emb)
        if video_rows:  # last: a videos row says its clips and embeddings are complete
            rows = pa.Table.from_pylist(video_rows, schema=self.wh.spec("videos").schema)
            self.wh.replace("videos", {"video_id": sorted({r["video_id"] for r in video_rows})}, rows)
        self.with_clips.update(rebuilt)
        self.with_transitions.update(rebuilt)
        self.embedded_any.update(emb_vids)


def _run(jobs: list[_Job], encoder, writer: _Writer, report: IngestReport, progress: bool,
         batch_frames: int, scan_options: dict) -> None:
    from tqdm import tqdm

    q: queue.Queue = queue.Queue(maxsize=max(8, 4 * batch_frames))
    stop = threading.Event()
    producer = threading.Thread(target=_produce, name="va-decode", daemon=True,
                                args=(jobs, encoder.image_size, encoder.frame_fit, q, stop, scan_options))
    videos: dict[str, _Video] = {}
    order: list[str] = []
    waiting: list[tuple[_Video, int, np.ndarray]] = []  # shots whose frames are not encoded yet
    n_waiting = 0
    bar = tqdm(total=len(jobs), desc="ingesting", unit="video", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    started = time.perf_counter()

    def encode() -> None:
        nonlocal waiting, n_waiting
        if not waiting:
            return
        t = time.perf_counter()
        frames = np.concatenate([w[2] for w in waiting])
        emb = encoder.encode_images(frames)
        report.encode_seconds += time.perf_counter() - t
        start = 0
        for video, i, f in waiting:
            pooled = emb[start:start + len(f)].mean(axis=0)
            start += len(f)
            video.shots[i][2] = (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)
        waiting, n_waiting = [], 0

    def finish_ready() -> None:
        while order and videos[order[0]].done:
            v = videos.pop(order.pop(0))
            outcome = VideoOutcome(v.job.uri, v.job.video_id, FAILED if v.error else v.job.kind, v.error,
                                   0 if v.error else len(v.shots),
                                   0 if v.error else sum(s[1] for s in v.shots), v.n_decoded)
            report.videos.append(outcome)
            writer.add(v)
            bar.update(1)
            elapsed = time.perf_counter() - started
            bar.set_postfix(clips=report.n_clips, fps=f"{report.n_frames / max(elapsed, 1e-9):.1f}", refresh=False)

    producer.start()
    try:
        while True:
            try:
                item = q.get(timeout=0.05 if waiting else None)
            except queue.Empty:
                encode()  # the decoder is slower than us right now: do not sit on a partial batch
                finish_ready()
                continue
            if item is _END:
                break
            kind, job, payload = item
            if kind == "begin":
                videos[job.video_id] = _Video(job, payload)
                order.append(job.video_id)
                bar.set_description(f"ingesting {job.path.name[:30]}", refresh=False)
            elif kind == "shot":
                v = videos[job.video_id]
                v.shots.append([payload.shot, len(payload.frames), None, payload.motion])
                waiting.append((v, len(v.shots) - 1, payload.frames))
                n_waiting += len(payload.frames)
                if n_waiting >= batch_frames:
                    encode()
            elif kind == "end":
                videos[job.video_id].ended = True
                videos[job.video_id].n_decoded, videos[job.video_id].transitions = payload
            else:  # fail
                if job.video_id not in videos:
                    videos[job.video_id] = _Video(job)
                    order.append(job.video_id)
                v = videos[job.video_id]
                v.error = payload
                waiting = [w for w in waiting if w[0] is not v]
                n_waiting = sum(len(w[2]) for w in waiting)
            finish_ready()
        encode()
        finish_ready()
    finally:
        stop.set()
        producer.join(timeout=5)
        bar.close()


def ingest(settings, paths, progress: bool = True, flush_videos: int = 50, flush_seconds: float = 30.0,
           batch_frames: int | None = None, scan_options: dict | None = None) -> IngestReport:
    """Ingest video files and folders (searched recursively for video suffixes).

    Returns an :class:`IngestReport`. Raises InputError only when no path names anything;
    unreadable files are reported (and stored) as failed. The encoder is loaded only when
    there is something to encode, so an up-to-date corpus is checked without torch.
    ``scan_options``: keywords of :func:`va_core.video.scan` (default: gradual transitions and
    camera motion on; the benchmarks turn them off to measure what they cost).
    """
    started = time.perf_counter()
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise InputError("no paths given: name video files or folders to ingest")
    spec = parse_spec(settings.encoder)
    wh = Warehouse.from_settings(settings)
    files, problems = find_videos(paths)
    if not files and problems:
        raise InputError("nothing to ingest: " + "; ".join(problems))
    report = IngestReport(spec.encoder_id, problems=problems, versions_before=wh.versions(TABLES))
    report.repaired = repair_duplicates(wh)
    jobs, unchanged = plan(wh, files, spec.encoder_id)
    report.videos.extend(unchanged)
    if jobs:
        from va_core.encoders import load_encoder

        encoder = load_encoder(spec)
        report.warning = encoder.warning
        writer = _Writer(wh, spec.encoder_id, [j.video_id for j in jobs], flush_videos, flush_seconds)
        try:
            _run(jobs, encoder, writer, report, progress, batch_frames or (64 if encoder.image_size <= 128 else 32),
                 {"gradual": True, "motion": True, **(scan_options or {})})
        finally:
            writer.flush()  # what finished before an interruption is kept
        settings.remember_encoder(spec.spec)
    elif not spec.has_semantics:
        report.warning = (f"encoder {spec.encoder_id} has random weights: its embeddings carry no meaning "
                          "(text search is noise); use it for tests and smoke runs only")
    report.versions_after = wh.versions(TABLES)
    report.seconds = time.perf_counter() - started
    return report


def ingest_video(settings, path, progress: bool = False) -> VideoOutcome:
    """Ingest one file (a Dagster partition); returns what happened to it."""
    report = ingest(settings, [path], progress=progress)
    if not report.videos:
        raise InputError(f"{path}: not a file")
    return report.videos[0]
