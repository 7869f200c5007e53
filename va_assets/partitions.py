"""Dynamic partitions: one per video of the corpus and one per label.

Keys are added by the sensors when a new video file or a new label shows up, so a new
video is embedded alone and a label's models retrain without touching the others.
"""
from __future__ import annotations

import dagster as dg

VIDEOS = "videos"
LABELS = "labels"

video_partitions = dg.DynamicPartitionsDefinition(name=VIDEOS)
label_partitions = dg.DynamicPartitionsDefinition(name=LABELS)
