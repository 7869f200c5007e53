"""Serving limits and the hot-reload interval, read from the environment.

They are separate from :class:`va_core.config.Settings` because only the model server
uses them; ``va serve`` passes the environment through unchanged.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from va_core.config import ConfigError


def _number(name: str, default: float, cast=float, minimum: float = 0.0):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return cast(default)
    try:
        value = cast(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


@dataclass(frozen=True)
class ServingConfig:
    # Rows a single /score request may carry; larger batches get 413.
    max_request_rows: int = 1024
    # Rows scored together by the micro-batcher (requests are never split).
    max_batch_rows: int = 4096
    # How long the batcher may hold a lone request hoping for company; 0 = never wait.
    max_wait_ms: float = 0.0
    # How often the watcher checks the `models` table version for new approvals.
    reload_interval_s: float = 1.0
    # Largest video /classify accepts.
    max_video_mb: float = 512.0
    # Largest JSON body (/score): 1024 rows of 512 numbers are about 10 MB.
    max_body_mb: float = 64.0
    # When set, every endpoint but the health checks and the API docs asks for
    # `Authorization: Bearer TOKEN` (see docs/DEPLOY.md). Off by default.
    token: str | None = None

    @classmethod
    def from_env(cls) -> "ServingConfig":
        return cls(
            max_request_rows=_number("VA_SERVING_MAX_ROWS", cls.max_request_rows, int, 1),
            max_batch_rows=_number("VA_SERVING_MAX_BATCH_ROWS", cls.max_batch_rows, int, 1),
            max_wait_ms=_number("VA_SERVING_MAX_WAIT_MS", cls.max_wait_ms),
            reload_interval_s=_number("VA_SERVING_RELOAD_S", cls.reload_interval_s, float, 0.05),
            max_video_mb=_number("VA_SERVING_MAX_VIDEO_MB", cls.max_video_mb, float, 0.001),
            max_body_mb=_number("VA_SERVING_MAX_BODY_MB", cls.max_body_mb, float, 0.001),
            token=_token(),
        )


def _token() -> str | None:
    raw = os.environ.get("VA_SERVING_TOKEN", "")
    if not raw.strip():
        return None
    if raw != raw.strip() or len(raw) < 16 or not raw.isprintable():
        raise ConfigError("VA_SERVING_TOKEN must be at least 16 printable characters without surrounding spaces "
                          "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    return raw
