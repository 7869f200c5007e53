"""The one resource every asset and sensor uses: where the va warehouse is.

Assets and sensors never open Delta tables themselves; they ask this resource for the
``va_core`` settings and warehouse and call ``va_core`` with them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import dagster as dg

from va_core.config import Settings
from va_core.warehouse import Warehouse

CORPUS_DIRS_ENV = "VA_CORPUS_DIRS"


class VAResource(dg.ConfigurableResource):
    """The va home, warehouse and encoder, read from the environment unless configured.

    ``va dagster`` exports VA_HOME, VA_WAREHOUSE_URI and VA_ENCODER, so the defaults point
    at the same warehouse the ``va`` command and the labelling app use.
    """

    home: Optional[str] = None
    encoder: Optional[str] = None
    corpus_dirs: Optional[list[str]] = None

    def settings(self) -> Settings:
        return Settings.from_env(home=self.home, encoder=self.encoder)

    def warehouse(self) -> Warehouse:
        return Warehouse.from_settings(self.settings())

    def corpus_folders(self) -> list[Path]:
        """Folders the corpus sensor watches: configured, else $VA_CORPUS_DIRS, else $VA_HOME/corpus."""
        if self.corpus_dirs:
            raw = list(self.corpus_dirs)
        elif os.environ.get(CORPUS_DIRS_ENV, "").strip():
            raw = [p for p in os.environ[CORPUS_DIRS_ENV].split(os.pathsep) if p.strip()]
        else:
            raw = [str(self.settings().home / "corpus")]
        return [Path(p).expanduser().resolve() for p in raw]
