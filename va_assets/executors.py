"""Which executor runs the steps of a run: a process per step here, a pod per step on Kubernetes."""
from __future__ import annotations

import os

import dagster as dg

EXECUTOR_ENV = "VA_EXECUTOR"
CHOICES = ("multiprocess", "k8s")


def choice() -> str:
    value = os.environ.get(EXECUTOR_ENV, "").strip() or "multiprocess"
    if value not in CHOICES:
        raise ValueError(f"{EXECUTOR_ENV}={value!r}: choose one of {', '.join(CHOICES)}")
    return value


def default_executor() -> dg.ExecutorDefinition:
    if choice() == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as exc:
            raise ImportError(f"{EXECUTOR_ENV}=k8s needs dagster-k8s: pip install 'va[k8s]' ({exc})") from exc
        return k8s_job_executor
    return dg.multiprocess_executor


def label_executor() -> dg.ExecutorDefinition:
    """Locally a label's run keeps its steps in one process unless run config asks for more."""
    return default_executor() if choice() == "k8s" else dg.multi_or_in_process_executor
