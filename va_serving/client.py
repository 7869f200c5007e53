"""Start the model server as a separate program and talk to it over HTTP.

Used by `va demo` (score one clip through the served models), the tests and the
benchmark. Nothing here imports bentoml at module level, so va_core can import this
module cheaply; the HTTP client is created on demand.
"""
from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from va_core.errors import NotFound, VAError
from va_core.process import free_port, stop_group

READY_TIMEOUT_S = 120.0


class ServerError(VAError, RuntimeError):
    """The model server did not start or stopped; the message carries its log's tail."""


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class ServerProcess:
    """`va serve` on ``host:port`` in its own process group, its output in ``log``."""

    settings: Any
    host: str = "127.0.0.1"
    port: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    log: Path | None = None
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> "ServerProcess":
        if self.process is not None:
            raise ServerError("the server was already started")
        self.port = self.port or free_port(self.host)
        logs = Path(self.settings.home) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log = self.log or logs / f"serve-{self.port}.log"
        from va_core.servers import serve_command

        argv, env = serve_command(self.settings, self.host, self.port)
        env.update(self.extra_env)
        with open(self.log, "ab") as out:
            # Own session: the server and its workers form one group we can stop together,
            # and it outlives this process when the caller keeps it.
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=env, start_new_session=True)
        return self

    def _get(self, path: str, timeout: float = 2.0) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def wait_ready(self, timeout: float = READY_TIMEOUT_S, poll_s: float = 0.25) -> None:
        """Poll /readyz until the served models are loaded; fail fast if the process dies."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise ServerError(f"the model server exited with status {code} before it was ready; "
                                  f"its log ({self.log}) ends with:\n{_tail(self.log)}")
            try:
                status, body = self._get("/readyz")
                if status == 200:
                    return
                last = f"/readyz answered {status}: {body.strip()[:200]}"
            except OSError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(poll_s)
        reason = last
        try:
            reason = self.client().ready().get("reason") or last
        except Exception:  # noqa: BLE001 - the reason is a courtesy; the timeout is the error
            pass
        self.stop()
        raise ServerError(f"the model server at {self.url} was not ready after {timeout:.0f}s ({reason}); "
                          f"its log ({self.log}) ends with:\n{_tail(self.log)}")

    def client(self, timeout: float = 60.0, token: str | None = None):
        """A BentoML client; ``token`` (default: the server's VA_SERVING_TOKEN) goes in ``Authorization``."""
        import bentoml

        if token is None:
            token = self.extra_env.get("VA_SERVING_TOKEN", os.environ.get("VA_SERVING_TOKEN"))
        return bentoml.SyncHTTPClient(self.url, timeout=timeout, server_ready_timeout=0, token=token or None)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM the server's process group, SIGKILL it if it lingers; returns the exit status."""
        if self.process is None:
            return None
        # workers that outlived their parent are still in the group: no grace for them
        return stop_group(self.process, timeout=timeout, linger=0)

    def __enter__(self) -> "ServerProcess":
        if self.process is None:
            self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class ScoredClip:
    """The result of :func:`serve_and_score`; ``server`` is set (and running) when kept."""

    url: str
    clip_key: str
    encoder_id: str
    scores: dict[str, float]
    versions: dict[str, int]
    log: str
    server: ServerProcess | None = None

    def as_dict(self) -> dict:
        return {
            "url": self.url, "clip_key": self.clip_key, "encoder_id": self.encoder_id,
            "scores": self.scores, "versions": self.versions, "log": self.log,
            "kept": self.server is not None, "pid": self.server.pid if self.server else None,
        }


def _a_clip(settings, encoder_ids: list[str], clip_key: str | None) -> tuple[str, str, list[float]]:
    """A clip embedding of one of the served encoders: ``clip_key`` or the first clip."""
    from va_core.warehouse import Warehouse, embedding_matrix

    wh = Warehouse.from_settings(settings)
    for encoder_id in encoder_ids:
        where = {"encoder_id": encoder_id}
        if clip_key is not None:
            where["clip_key"] = clip_key
        table = wh.arrow("clip_embeddings", columns=["clip_key", "embedding"], where=where)
        if table.num_rows:
            table = table.sort_by("clip_key").slice(0, 1)
            return table.column("clip_key")[0].as_py(), encoder_id, embedding_matrix(table.column("embedding"))[0]
    what = f"clip {clip_key!r}" if clip_key else "any clip"
    raise NotFound(f"{what} has no embedding of the served encoders ({', '.join(encoder_ids) or 'none'})")


def serve_and_score(settings, clip_key: str | None = None, *, keep: bool = False, host: str = "127.0.0.1",
                    port: int | None = None, timeout: float = READY_TIMEOUT_S) -> ScoredClip:
    """Start `va serve` on a free port, score one clip through HTTP, stop the server unless ``keep``.

    The clip is ``clip_key`` or the first clip embedded with a served encoder. The scores
    come from /score; the served versions from the same answer.
    """
    server = ServerProcess(settings, host=host, port=port).start()
    try:
        server.wait_ready(timeout)
        client = server.client()
        served = client.models()
        encoders = sorted({m["encoder_id"] for m in served["models"]})
        key, encoder_id, embedding = _a_clip(settings, encoders, clip_key)
        labels = [m["label"] for m in served["models"] if m["encoder_id"] == encoder_id]
        answer = client.score(embeddings=[list(map(float, embedding))], labels=labels)
        result = ScoredClip(
            url=server.url, clip_key=key, encoder_id=encoder_id,
            scores={label: float(values[0]) for label, values in answer["scores"].items()},
            versions={label: int(v) for label, v in answer["versions"].items()},
            log=str(server.log), server=server if keep else None,
        )
    except BaseException:
        server.stop()
        raise
    if not keep:
        server.stop()
    return result
