"""Reproducible benchmarks: `.venv/bin/python -m benchmarks.<name> [--quick]` (see README.md)."""
