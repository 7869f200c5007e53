"""Settings read from the environment, overridable per call (``--home``)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from va_core.errors import VAError

__all__ = ["ConfigError", "DEFAULT_ENCODER", "Settings"]

DEFAULT_ENCODER = "open_clip:ViT-B-32:laion2b_s34b_b79k"


class ConfigError(VAError, ValueError):
    """A setting is malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    home: Path
    warehouse_uri: str
    storage_options: dict[str, str] = field(default_factory=dict)
    encoder: str = DEFAULT_ENCODER

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @classmethod
    def from_env(cls, home: str | os.PathLike | None = None, encoder: str | None = None) -> "Settings":
        root = Path(home or os.environ.get("VA_HOME") or "./.va").expanduser().resolve()
        uri = os.environ.get("VA_WAREHOUSE_URI") or str(root / "warehouse")
        # An explicit --home wins over a warehouse URI inherited from the environment,
        # unless that URI is remote (then home only holds caches and artifacts).
        if home is not None and "://" not in uri:
            uri = str(root / "warehouse")
        raw = os.environ.get("VA_STORAGE_OPTIONS", "")
        try:
            options = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            raise ConfigError(f"VA_STORAGE_OPTIONS is not valid JSON: {exc}") from exc
        if not isinstance(options, dict):
            raise ConfigError("VA_STORAGE_OPTIONS must be a JSON object of string values")
        return cls(
            home=root,
            warehouse_uri=uri,
            storage_options={str(k): str(v) for k, v in options.items()},
            encoder=encoder or os.environ.get("VA_ENCODER") or _home_config(root).get("encoder") or DEFAULT_ENCODER,
        )

    def remember_encoder(self, spec: str) -> None:
        """Record the encoder a home was built with, so later commands need no --encoder."""
        self.home.mkdir(parents=True, exist_ok=True)
        config = _home_config(self.home)
        config["encoder"] = spec
        path = self.home / "config.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(config, indent=2) + "\n")
        tmp.replace(path)


def _home_config(home: Path) -> dict:
    path = home / "config.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    return data if isinstance(data, dict) else {}
