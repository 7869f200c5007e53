"""`va demo`'s entry point: va_core's loop on a generated corpus (``va_core.demo``), then its
last step, which belongs to serving: start the model server on the approved model and score a
clip over HTTP. With ``--serve`` the server keeps running in the foreground until Ctrl-C."""
from __future__ import annotations

import json

from va_core.demo import run_demo, say
from va_serving.client import serve_and_score

__all__ = ["cli_demo", "serve_step"]


def serve_step(settings, label: str, approved: dict, args, kept: list) -> tuple[dict, list[str]]:
    """Start the model server, score a clip over HTTP, stop it; with ``--serve`` keep it in ``kept``."""
    say("[serve] starting the model server and scoring a clip over HTTP")
    result = serve_and_score(settings, keep=bool(getattr(args, "serve", False)))
    score = result.scores.get(label)
    lines = [f"served {label} v{result.versions.get(label)} at {result.url}: "
             f"clip {result.clip_key} scored {score:.3f} over HTTP (POST /score)"]
    if result.server is not None:
        kept.append(result.server)
        lines.append(f"the server keeps running at {result.url} (pid {result.server.pid}); Ctrl-C stops it")
    return {"served": True, **result.as_dict()}, lines


def cli_demo(args, settings):
    kept: list = []

    def serve(settings, label, approved, args):
        return serve_step(settings, label, approved, args, kept)

    serve.__name__ = "serve_step"  # the key of its result under "final" in the demo's JSON
    data, text = run_demo(settings, args, final_steps=[serve])
    if not kept:
        return data, text
    # --serve: show the result now, then stay in the foreground with the server until Ctrl-C.
    server = kept[0]
    print(json.dumps(data, default=str) if args.json else text, flush=True)
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    raise SystemExit(0)
