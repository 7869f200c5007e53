"""The model server's front door: every request is checked here before BentoML parses it.

An ASGI middleware (``VAService.add_asgi_middleware``) that

- asks for the shared token when ``VA_SERVING_TOKEN`` is set (``Authorization: Bearer
  TOKEN``; the health checks and the API docs stay public, see :data:`PUBLIC`);
- checks the body of every API endpoint against :data:`ENDPOINTS` (the one description
  of each endpoint's fields): JSON shape and types for ``/score``, ``/models`` and
  ``/ready``; for ``/classify`` a multipart form whose ``video`` part is an uploaded file
  (BentoML would download the value of a plain form field given as a URL: a request can
  never make this server fetch anything), parsed while it streams to a spooled copy;
- answers ``GET /models`` (BentoML's endpoints are POST only) and ``GET /docs`` (a
  redirect to the Swagger UI BentoML serves at ``/``).

A refusal is ``{"error": "..."}`` with a 4xx status and one log line; what passes is
replayed unchanged to BentoML, whose own parsing can then no longer fail on it.
"""
from __future__ import annotations

import hmac
import json
import logging
import math
import tempfile
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote

log = logging.getLogger("va.serving")

PUBLIC = frozenset({"/", "/docs", "/docs.json", "/schema.json", "/livez", "/readyz", "/healthz"})
PUBLIC_PREFIXES = ("/static_content/", "/assets/")
UPLOAD_NAME_HEADER = b"x-va-upload-name"  # set by the gate (never by a client) for /classify, %-quoted
MAX_FIELD_BYTES = 64 * 1024
SPOOL_BYTES = 8 * 1024 * 1024
CHUNK = 256 * 1024


class Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


# -- field checks: each takes the decoded value and returns it or raises Refused(400) ------

def _bad(message: str) -> Refused:
    return Refused(400, message)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return abs(value) < 2 ** 128  # beyond float32; float() of a huge int overflows
    return True


def embeddings_field(value: Any) -> Any:
    if not isinstance(value, list):
        raise _bad(f"embeddings must be a 2-d array (a list of rows of numbers), got {_kind(value)}")
    if value and not isinstance(value[0], list):
        if all(_is_number(v) for v in value):
            raise _bad("embeddings must be a 2-d array (N rows x D dimensions), got one row of "
                       f"{len(value)} numbers: wrap it in a list")
        raise _bad(f"embeddings[0] must be a row (a list of numbers), got {_kind(value[0])}")
    if _plain_matrix(value):
        return value
    width = len(value[0]) if value else 0
    for i, row in enumerate(value):  # the slow walk, only to name what is wrong
        if not isinstance(row, list):
            raise _bad(f"embeddings[{i}] must be a row (a list of numbers), got {_kind(row)}")
        if len(row) != width:
            raise _bad(f"embeddings rows differ in length: row 0 has {width} numbers, row {i} has {len(row)}")
        for j, v in enumerate(row):
            if not _is_number(v):
                what = "an integer beyond float32's range" if _kind(v) == "a number" else _kind(v)
                raise _bad(f"embeddings[{i}][{j}] must be a number, got {what} {json.dumps(v)[:40]}")
    return value


def _plain_matrix(value: list) -> bool:
    """A rectangular list of rows of numbers, checked by numpy in C (a 1024 x 512 body in milliseconds)."""
    import numpy as np

    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        return False
    return array.ndim == 2 and array.dtype.kind in "fi"


def labels_field(value: Any) -> Any:
    if value is None:
        return value
    if not isinstance(value, list):
        raise _bad(f"labels must be a list of label names, got {_kind(value)}")
    if len(value) > 1000:
        raise _bad(f"labels lists {len(value)} names; at most 1000")
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v or len(v) > 200:
            raise _bad(f"labels[{i}] must be a label name (a non-empty string), got {_kind(v)}")
    return value


def text_field(name: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is not None and (not isinstance(value, str) or not value or len(value) > 500):
            raise _bad(f"{name} must be a non-empty string, got {_kind(value)}")
        return value
    return check


def fraction_field(name: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None:
            return value
        if not _is_number(value) or not math.isfinite(value):
            raise _bad(f"{name} must be a number between 0 and 1, got {_kind(value)} {json.dumps(value)[:40]}")
        if not 0 <= value <= 1:
            raise _bad(f"{name} must be between 0 and 1, got {value}")
        return value
    return check


FILE = object()  # a multipart part with a filename


@dataclass(frozen=True)
class Endpoint:
    fields: dict[str, Any]  # name -> check, or FILE
    required: tuple[str, ...] = ()
    multipart: bool = False

    def describe(self) -> str:
        return ", ".join(f"{k} (file)" if v is FILE else k for k, v in self.fields.items()) or "no fields"


_POINT = {"threshold": fraction_field("threshold"), "target_precision": fraction_field("target_precision"),
          "target_recall": fraction_field("target_recall")}
ENDPOINTS = {
    "/score": Endpoint({"embeddings": embeddings_field, "labels": labels_field,
                        "encoder_id": text_field("encoder_id"), **_POINT}, ("embeddings",)),
    "/classify": Endpoint({"video": FILE, "labels": labels_field, **_POINT}, ("video",), multipart=True),
    "/models": Endpoint({}),
    "/ready": Endpoint({}),
}


def _check_fields(path: str, endpoint: Endpoint, data: dict) -> None:
    unknown = [k for k in data if k not in endpoint.fields]
    if unknown:
        raise _bad(f"unknown field {unknown[0]!r} for {path}; it takes: {endpoint.describe()}")
    for name in endpoint.required:
        if name not in data:
            kind = "an uploaded file" if endpoint.fields[name] is FILE else "a field"
            raise _bad(f"{path} needs {name} ({kind}); it takes: {endpoint.describe()}")
    for name, value in data.items():
        check = endpoint.fields[name]
        if check is not FILE:
            check(value)


def check_json(path: str, body: bytes) -> None:
    endpoint = ENDPOINTS[path]
    if not body.strip():
        if endpoint.required:
            raise _bad(f"empty body: {path} takes a JSON object with {endpoint.describe()}")
        return
    from pydantic_core import from_json

    try:
        data = from_json(body)  # what BentoML's validation parses with; ~5x faster than json.loads
    except ValueError as exc:
        raise _bad(f"the body is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(data, dict):
        raise _bad(f"the body must be a JSON object with {endpoint.describe()}, got {_kind(data)}")
    _check_fields(path, endpoint, data)


# -- multipart -----------------------------------------------------------------------------

class FormCheck:
    """Streams a multipart body through python-multipart, keeping part names, filenames and small values."""

    def __init__(self, boundary: bytes):
        from python_multipart.multipart import MultipartParser

        self.parts: list[dict] = []
        self._header_name = b""
        self._header_value = b""
        self.ended = False
        self.parser = MultipartParser(boundary, callbacks={
            "on_part_begin": self._begin, "on_part_data": self._data,
            "on_header_field": self._field, "on_header_value": self._value, "on_header_end": self._header_end,
            "on_end": self._end})

    def _begin(self):
        self.parts.append({"headers": {}, "size": 0, "value": b""})

    def _field(self, data, start, end):
        self._header_name += data[start:end]

    def _value(self, data, start, end):
        self._header_value += data[start:end]

    def _header_end(self):
        self.parts[-1]["headers"][self._header_name.decode("latin-1").lower()] = self._header_value.decode("latin-1")
        self._header_name, self._header_value = b"", b""

    def _data(self, data, start, end):
        part = self.parts[-1]
        part["size"] += end - start
        if part["size"] <= MAX_FIELD_BYTES:
            part["value"] += data[start:end]

    def _end(self):
        self.ended = True

    def write(self, chunk: bytes) -> None:
        from python_multipart.exceptions import MultipartParseError

        try:
            self.parser.write(chunk)
        except MultipartParseError as exc:
            raise _bad(f"the multipart body does not match its boundary or is malformed: {exc}") from None

    def finish(self, path: str) -> str:
        """Check the parts against the endpoint; returns the uploaded file's name."""
        from python_multipart.multipart import parse_options_header

        self.write(b"")
        if not self.ended:
            raise _bad("the multipart body ends before its closing boundary (or no part matches the boundary "
                       "given in Content-Type)")
        endpoint = ENDPOINTS[path]
        data, upload = {}, None
        for i, part in enumerate(self.parts):
            disposition, options = parse_options_header(part["headers"].get("content-disposition", ""))
            name = options.get(b"name")
            if disposition != b"form-data" or not name:
                raise _bad(f"multipart part {i} has no Content-Disposition: form-data; name=...")
            name = name.decode("utf-8", "replace")
            if name in data or (name == "video" and upload is not None):
                raise _bad(f"field {name!r} is given more than once")
            if name not in endpoint.fields:
                raise _bad(f"unknown field {name!r} for {path}; it takes: {endpoint.describe()}")
            filename = options.get(b"filename")
            if endpoint.fields[name] is FILE:
                if not filename:
                    raise _bad(f"{name} must be an uploaded file (a multipart part with a filename), not a plain "
                               "form field: this server does not fetch URLs")
                upload = filename.decode("utf-8", "replace")
                if part["size"] == 0:
                    raise _bad(f"the uploaded file {upload!r} is empty")
                continue
            if part["size"] > MAX_FIELD_BYTES:
                raise Refused(413, f"field {name!r} is over {MAX_FIELD_BYTES // 1024} KB")
            try:
                data[name] = json.loads(part["value"])
            except (ValueError, RecursionError):
                raise _bad(f"field {name!r} must hold JSON (e.g. labels=[\"cat\"], threshold=0.3), "
                           f"got {part['value'][:40]!r}") from None
        if upload is not None:
            data["video"] = upload
        _check_fields(path, endpoint, data)
        return upload


# -- the middleware ------------------------------------------------------------------------

def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    if not content_type:
        return "", {}
    main, *params = content_type.split(";")
    options = {}
    for p in params:
        key, _, value = p.strip().partition("=")
        options[key.strip().lower()] = value.strip().strip('"')
    return main.strip().lower(), options


async def _respond(send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def refusal_line(method: str, path: str, status: int, message: str) -> str:
    return f"refused {method} {path} ({status}): {' '.join(message.split())[:300]}"


class Gate:
    def __init__(self, app, token: str | None = None, max_body_mb: float = 64.0, max_video_mb: float = 512.0):
        self.app = app
        self.token = token or None
        self.max_body = int(max_body_mb * 1e6)
        self.max_upload = int(max_video_mb * 1e6) + 1_000_000  # the form's own bytes on top of the video

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method, path = scope["method"], scope["path"]
        try:
            self._authorize(scope, path)
            if path == "/docs" and method in ("GET", "HEAD"):
                await send({"type": "http.response.start", "status": 307,
                            "headers": [(b"location", b"/"), (b"content-length", b"0")]})
                return await send({"type": "http.response.body", "body": b""})
            if path == "/models" and method == "GET":
                scope = {**scope, "method": "POST",
                         "headers": [*_without(scope, b"content-type"), (b"content-type", b"application/json")]}
                return await self.app(scope, _replay([b"{}"], receive), send)
            if method == "POST" and path in ENDPOINTS:
                if ENDPOINTS[path].multipart:
                    return await self._form(scope, receive, send, path)
                body = await self._json(scope, receive, path)
                return await self.app(scope, _replay([body], receive), send)
        except Refused as exc:
            log.warning(refusal_line(method, path, exc.status, exc.message))
            return await _respond(send, exc.status, {"error": exc.message}, exc.headers)
        return await self.app(scope, receive, send)

    def _authorize(self, scope, path: str) -> None:
        if self.token is None or path in PUBLIC or path.startswith(PUBLIC_PREFIXES):
            return
        given = _header(scope, b"authorization") or ""
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token.encode()):
            what = "a wrong token" if given else "no token"
            raise Refused(401, f"{path} needs the server's token (Authorization: Bearer TOKEN); the request has {what}",
                          {"WWW-Authenticate": "Bearer"})

    def _declared_length(self, scope, limit: int) -> None:
        raw = _header(scope, b"content-length")
        if raw is None:
            return
        if not raw.strip().isdigit():
            raise _bad(f"Content-Length is not a number: {raw[:40]!r}")
        if int(raw) > limit:
            raise Refused(413, f"the body of {int(raw)} bytes is over the limit of {limit} bytes")

    async def _json(self, scope, receive, path: str) -> bytes:
        media, _ = _media_type(_header(scope, b"content-type"))
        if media not in ("", "application/json"):
            raise Refused(415, f"{path} takes application/json, got Content-Type {media!r}")
        self._declared_length(scope, self.max_body)
        chunks, size = [], 0
        async for chunk in _body(receive):
            size += len(chunk)
            if size > self.max_body:
                raise Refused(413, f"the body is over the limit of {self.max_body} bytes (VA_SERVING_MAX_BODY_MB)")
            chunks.append(chunk)
        body = b"".join(chunks)
        check_json(path, body)
        return body

    async def _form(self, scope, receive, send, path: str):
        media, options = _media_type(_header(scope, b"content-type"))
        if media != "multipart/form-data":
            raise Refused(415, f"{path} takes multipart/form-data with the video as an uploaded file "
                          f"(curl -F video=@FILE), got Content-Type {media or 'none'!r}")
        boundary = options.get("boundary")
        if not boundary or len(boundary) > 200:
            raise _bad("Content-Type multipart/form-data has no boundary")
        self._declared_length(scope, self.max_upload)
        check = FormCheck(boundary.encode("latin-1"))
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            size = 0
            async for chunk in _body(receive):
                size += len(chunk)
                if size > self.max_upload:
                    raise Refused(413, f"the upload is over the limit of {self.max_upload} bytes "
                                  "(VA_SERVING_MAX_VIDEO_MB)")
                check.write(chunk)
                spool.write(chunk)
            upload = check.finish(path)
            spool.seek(0)
            named = quote(upload, safe=" ").encode("ascii")  # any file name survives a header
            headers = [*_without(scope, UPLOAD_NAME_HEADER), (UPLOAD_NAME_HEADER, named)]
            return await self.app({**scope, "headers": headers}, _replay_file(spool, receive), send)


def _without(scope, name: bytes) -> list:
    return [(k, v) for k, v in scope.get("headers", []) if k.lower() != name]


async def _body(receive):
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refused(400, "the client went away before the body ended")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def _replay(chunks: list[bytes], then):
    """A ``receive`` giving the body read already, then the client's own (its disconnect)."""
    queue = list(chunks) or [b""]

    async def receive():
        if queue:
            chunk = queue.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(queue)}
        return await then()

    return receive


def _replay_file(spool, then):
    state = {"done": False}

    async def receive():
        if state["done"]:
            return await then()
        chunk = spool.read(CHUNK)
        more = bool(chunk) and spool.tell() < _size(spool)
        state["done"] = not more
        return {"type": "http.request", "body": chunk, "more_body": more}

    return receive


def _size(spool) -> int:
    here = spool.tell()
    spool.seek(0, 2)
    end = spool.tell()
    spool.seek(here)
    return end
