"""Run tags the sensors set and the assets read, and the stage note that names a training run."""

import re

LABEL_EVENTS_VERSION = "va/label_events_version"  # the label_events version a label run trains on
LABEL = "va/label"  # one run per label at a time (instance tag concurrency limit)
VIDEO_URI = "va/video_uri"  # the file a video partition's run ingests

_RUN_NOTE = re.compile(r"trained by run ([0-9a-f-]{36}) ")


def run_note(run_id: str, label_events_version: int | None) -> str:
    """The stage note of a version a run trained: how the catalog tells it from others."""
    return f"trained by run {run_id} at label_events v{label_events_version}"


def run_of_note(note: str | None) -> str | None:
    """The run id a stage note written by :func:`run_note` names, or None."""
    found = _RUN_NOTE.search(note or "")
    return found.group(1) if found else None
