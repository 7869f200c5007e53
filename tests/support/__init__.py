"""Helpers the tests and the benchmarks share, kept out of the product packages: synthetic
corpora (``synthetic``), a small fake of the paper's released dataset (``va_dataset``) and
real footage with known transitions and camera moves (``footage``). Import them as
``tests.support.NAME`` (pytest puts the repository root on the path; benchmarks run from it)."""
