"""Headless Chromium for benchmarks that drive a web page: Debian's chromium, driven by Playwright.

The flags keep Chromium from reaching for the network at start (there is none here).
"""
from __future__ import annotations

import shutil

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def launch(playwright):
    """A headless Chromium browser from ``sync_playwright()``."""
    chromium = shutil.which("chromium")
    if not chromium:
        raise RuntimeError("no chromium on PATH: apt-get install -y chromium (or `make browser`)")
    return playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
