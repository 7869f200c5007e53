"""Serve the app: Gradio mounted on a FastAPI app that also serves clips by key.

``/va/clip?key=KEY`` answers with the clip's own mp4, cut once and cached under VA_HOME
(:mod:`va_core.playback`). The key is looked up in the tables; no request text becomes a
path. The clip route asks for the same login as the app; both follow the users file
while the app runs (:mod:`va_ui.logins`).
"""
from __future__ import annotations

import sys
import threading

import gradio as gr
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse
from starlette.routing import Mount

from va_core.errors import InputError, NotFound
from va_core.playback import clip_file
from va_ui.app import TITLE, build_app
from va_ui.auth import users_file
from va_ui.logins import LOGIN_MESSAGE, Logins
from va_ui.views import CLIP_ROUTE, CSS, KEYS_JS


def _gradio_app(api: FastAPI):
    for route in api.routes:
        if isinstance(route, Mount) and hasattr(route.app, "tokens"):
            return route.app
    raise RuntimeError("the Gradio app is not mounted")


def logged_in_user(api: FastAPI, request: Request) -> str | None:
    """The user Gradio's login cookie names, or None. Same cookies as Gradio's own ``/user``."""
    app = _gradio_app(api)
    token = (request.cookies.get(f"access-token-{app.cookie_id}")
             or request.cookies.get(f"access-token-unsecure-{app.cookie_id}"))
    return app.tokens.get(token)


def create_server(settings) -> FastAPI:
    """The whole web app for one va home, ready for uvicorn."""
    api = FastAPI(title=TITLE, docs_url=None, redoc_url=None, openapi_url=None)
    logins = Logins(users_file(settings))

    @api.get(CLIP_ROUTE)
    def clip(request: Request, key: str = Query(..., max_length=512)):
        if logins.door().needs_login and logged_in_user(api, request) is None:
            raise HTTPException(status_code=401, detail="log in to watch clips")
        try:
            path = clip_file(settings, key)
        except InputError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        # A cut never changes under its name (the name hashes what it depends on).
        return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, max-age=86400"})

    blocks = build_app(settings)
    # Mounted with a login; Logins then opens or closes it as the users file says.
    app = gr.mount_gradio_app(
        api, blocks, path="/", auth=logins.check, auth_message=LOGIN_MESSAGE,
        css=CSS, head=KEYS_JS, footer_links=[], show_error=True, ssr_mode=False,
    )
    logins.bind(_gradio_app(app), blocks).start()
    return app


def _warm(settings) -> None:
    from va_ui.handlers import warm_up

    done = warm_up(settings)
    if "problem" in done:
        print(f"va ui: {done['problem']}", file=sys.stderr, flush=True)
    else:
        print(f"va ui: ready ({done['clips']} clips, {done['encoder']}, {done['seconds']} s)", file=sys.stderr,
              flush=True)


def serve(settings, host: str = "127.0.0.1", port: int = 7860) -> None:
    import uvicorn

    threading.Thread(target=_warm, args=(settings,), name="va-warm-up", daemon=True).start()
    uvicorn.run(create_server(settings), host=host, port=port, log_level="warning")
