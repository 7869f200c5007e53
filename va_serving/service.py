"""The BentoML service of the approved classifiers: `va serve` runs it.

Endpoints (POST, JSON unless said otherwise; docs/ARCHITECTURE.md has the shapes):

- ``/score``     ``{"embeddings": N x D, "labels": [...]?}`` -> per label the scores, the yes/no
  decisions, the threshold and the version; ``threshold`` / ``target_precision`` /
  ``target_recall`` choose another operating point (va_core.operating)
- ``/classify``  a video file (multipart) -> its shots with a score and a decision per approved label
- ``/models``    (GET too) what is served: versions, thresholds, AP, lineage, hot-reload state
- ``/ready``     ``{"ready": bool, "reason": ...}``: the classifiers are loaded
- GET ``/livez`` and ``/readyz`` (BentoML's); ``/readyz`` answers 503 until ``/ready`` is true
- GET ``/`` (``/docs`` redirects there) the Swagger UI, ``/docs.json`` the OpenAPI document

Where the models come from (``VA_SERVING_SOURCE``):

- ``warehouse`` (default, what `va serve` uses): the approved versions in the ``models``
  table, followed without a restart (see va_serving.served), and mirrored into the
  BentoML model store at every change;
- ``store``: the approved entries of the BentoML model store, i.e. the models packed in
  a Bento or container; fixed for the life of the process.

Every request passes va_serving.gate first (the token, the body's shape, GET /models,
/docs). Bad requests get a 4xx ``{"error": ...}`` naming what is wrong and one log line;
the service stays up.
"""
import logging
import os
import threading
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Optional
from urllib.parse import unquote

import bentoml
import numpy as np
from bentoml.validators import DType
from starlette.responses import JSONResponse

from va_core.config import Settings
from va_core.errors import InputError, NotFound, VAError
from va_core.operating import Request as OperatingRequest
from va_serving.batcher import MicroBatcher
from va_serving.config import ServingConfig
from va_serving.gate import UPLOAD_NAME_HEADER, Gate, refusal_line
from va_serving.served import (WAREHOUSE, NotReady, ScoreJob, ServedModels, TooLarge, check_embeddings, check_points,
                               decisions, resolve_labels, score_jobs)

log = logging.getLogger("va.serving")

SOURCE = os.environ.get("VA_SERVING_SOURCE", WAREHOUSE)


STATUS = ((TooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE), (NotFound, HTTPStatus.NOT_FOUND),
          (InputError, HTTPStatus.BAD_REQUEST), (NotReady, HTTPStatus.SERVICE_UNAVAILABLE),
          (VAError, HTTPStatus.UNPROCESSABLE_ENTITY))


def refused(exc: VAError, path: str, upload: tuple[Path, str] | None = None) -> JSONResponse:
    """A domain error as a JSON answer with its status, logged as one line (BentoML would log a traceback).

    With ``upload`` (the server's copy, the client's file name) the message names the client's file.
    """
    status = next(code for kind, code in STATUS if isinstance(exc, kind))
    message = str(exc)
    if upload is not None:
        copy, name = upload
        message = message.replace(str(copy), name).replace(copy.name, name)
    log.warning(refusal_line("POST", path, int(status), message))
    return JSONResponse({"error": message}, status_code=int(status))


def _packed_models() -> list:
    """The approved entries of the model store, declared so that `bentoml build` packs them.

    Run with BENTOML_HOME of the va home (``va_serving.build`` sets it after syncing).
    """
    from va_serving.store import approved_entries

    try:
        return [bentoml.models.BentoModel(e.tag) for e in approved_entries()]
    except Exception as exc:  # noqa: BLE001 - an unreadable store must not stop the server importing
        log.warning("cannot list the BentoML model store: %s", exc)
        return []


@bentoml.service(
    name="va-classifiers",
    description="Scores video clips with the approved va classifiers.",
    workers=1,
    traffic={"timeout": 600},
    labels={"app": "va"},
)
class VAService:
    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self.config = ServingConfig.from_env()
        on_change = self._mirror if SOURCE == WAREHOUSE else None
        self.served = ServedModels(self.settings, SOURCE, self.config.reload_interval_s, on_change).start()
        self.batcher = MicroBatcher(self._score_batch, rows=lambda job: job.rows,
                                    max_rows=max(self.config.max_batch_rows, self.config.max_request_rows),
                                    max_wait_ms=self.config.max_wait_ms)
        threading.Thread(target=self._warm_encoder, name="va-encoder-warmup", daemon=True).start()

    # -- lifecycle ------------------------------------------------------------------
    def _mirror(self, snapshot) -> None:
        """Keep the home's BentoML store in step with the models table (registry view, bentoml build)."""
        from va_serving.store import sync_models

        changes = sync_models(self.settings, into="process")
        if changes:
            log.info("model store: %s", ", ".join(f"{c['tag']} {c['action']} ({c['stage']})" for c in changes))

    def _warm_encoder(self) -> None:
        """Load the encoder in the background when a served model uses it: the first /classify is not slow."""
        from va_core.encoders import parse_spec
        from va_serving.classify import encoder_for

        try:
            encoder_id = parse_spec(self.settings.encoder).encoder_id
            snap = self.served._snapshot
            if snap is not None and any(m.encoder_id == encoder_id for m in snap.models.values()):
                encoder_for(self.settings.encoder)
        except Exception as exc:  # noqa: BLE001 - /classify reports it when asked
            log.warning("encoder %s is not available for /classify: %s", self.settings.encoder, exc)

    def __is_ready__(self) -> bool:
        return self.served.ready()[0]

    @bentoml.on_shutdown
    def _stop_watching(self) -> None:
        self.served.stop()

    def _score_batch(self, jobs):
        return score_jobs(self.served.snapshot, jobs)

    # -- endpoints ------------------------------------------------------------------
    # threshold / target_precision / target_recall choose the operating point (at most one;
    # default: each version's F1-best threshold): see va_core.operating.
    @bentoml.api
    async def score(self, embeddings: Annotated[np.ndarray, DType("float32")],
                    labels: Optional[list[str]] = None, encoder_id: Optional[str] = None,
                    threshold: Optional[float] = None, target_precision: Optional[float] = None,
                    target_recall: Optional[float] = None) -> dict:
        """Scores and yes/no decisions of N clip embeddings (N x D) for the given labels, or every served
        label of that D (of ``encoder_id``'s models when given), at each version's threshold or the
        operating point asked for."""
        try:
            point = OperatingRequest(threshold, target_precision, target_recall)
            matrix = check_embeddings(embeddings, self.config.max_request_rows)
            snapshot = self.served.snapshot
            chosen = resolve_labels(snapshot, labels, matrix.shape[1], encoder_id)
            check_points(snapshot, chosen, point)
            result = await self.batcher.submit(ScoreJob(matrix, chosen, point))
        except VAError as exc:
            return refused(exc, "/score")
        return {"n": int(matrix.shape[0]), **decisions(result, chosen)}

    @bentoml.api
    def classify(self, video: Path, ctx: bentoml.Context, labels: Optional[list[str]] = None,
                 threshold: Optional[float] = None, target_precision: Optional[float] = None,
                 target_recall: Optional[float] = None) -> dict:
        """A video file -> its shots (as `va ingest` cuts them) with a score and a yes/no decision per
        approved label."""
        from va_core.video import probe
        from va_serving.classify import embed_video, encoder_for

        name = unquote(ctx.request.headers.get(UPLOAD_NAME_HEADER.decode(), "")) or video.name
        try:
            point = OperatingRequest(threshold, target_precision, target_recall)
            size_mb = video.stat().st_size / 1e6
            if size_mb > self.config.max_video_mb:
                raise TooLarge(f"{name}: video of {size_mb:.1f} MB is over the limit of "
                               f"{self.config.max_video_mb:g} MB (VA_SERVING_MAX_VIDEO_MB)")
            probe(video)  # not a video -> 400 before any model or encoder is touched
            snapshot = self.served.snapshot
            encoder = encoder_for(self.settings.encoder)
            chosen = resolve_labels(snapshot, labels, encoder.dim, encoder.encoder_id)
            check_points(snapshot, chosen, point)
            embedded = embed_video(video, encoder)
            [result] = score_jobs(snapshot, [ScoreJob(embedded.matrix, chosen, point)])
            if isinstance(result, Exception):
                raise result
        except VAError as exc:
            answer = refused(exc, "/classify", (video, name))
            ctx.response.status_code = answer.status_code  # BentoML sets the answer's status from the context
            return answer
        info = embedded.info
        answer = decisions(result, chosen)
        shots = embedded.describe_shots()
        for i, shot in enumerate(shots):
            shot["scores"] = {label: answer["scores"][label][i] for label in chosen}
            shot["decisions"] = {label: answer["decisions"][label][i] for label in chosen}
        return {
            "video": {"name": name, "duration_s": info.duration_s, "fps": info.fps, "width": info.width,
                      "height": info.height},
            "encoder_id": encoder.encoder_id,
            "versions": answer["versions"], "thresholds": answer["thresholds"],
            "operating_points": answer["operating_points"],
            "shots": shots,
        }

    @bentoml.api
    async def models(self) -> dict:
        """The served classifiers with versions, AP and lineage, and the hot-reload state."""
        data = self.served.describe()
        data["batching"] = self.batcher.stats.as_dict()
        data["limits"] = {"max_request_rows": self.config.max_request_rows,
                          "max_batch_rows": self.batcher.max_rows, "max_video_mb": self.config.max_video_mb}
        return data

    @bentoml.api
    async def ready(self) -> dict:
        """Readiness meaning "classifiers loaded" (GET /readyz answers 503 until it is true)."""
        ok, reason = self.served.ready()
        snap = self.served._snapshot
        return {"ready": ok, "reason": reason, "n_models": len(snap.models) if snap else 0,
                "source": self.served.source, "error": self.served.error}


VAService.models.extend(_packed_models())
_config = ServingConfig.from_env()
VAService.add_asgi_middleware(Gate, token=_config.token, max_body_mb=_config.max_body_mb,
                              max_video_mb=_config.max_video_mb)
