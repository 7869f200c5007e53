"""Fixtures shared by every test package: an isolated va home per test."""
from __future__ import annotations

import pytest

from va_core.config import Settings
from va_core.warehouse import Warehouse


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh VA_HOME with the tiny encoder; nothing leaks between tests."""
    root = tmp_path / "va-home"
    monkeypatch.setenv("VA_HOME", str(root))
    monkeypatch.setenv("VA_ENCODER", "tiny")
    monkeypatch.delenv("VA_WAREHOUSE_URI", raising=False)
    monkeypatch.delenv("VA_STORAGE_OPTIONS", raising=False)
    return root


@pytest.fixture
def settings(home) -> Settings:
    return Settings.from_env()


@pytest.fixture
def wh(settings) -> Warehouse:
    return Warehouse.from_settings(settings)
