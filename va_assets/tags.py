"""Run tags the sensors set and the assets read."""

LABEL_EVENTS_VERSION = "va/label_events_version"  # the label_events version a label run trains on
LABEL = "va/label"  # one run per label at a time (instance tag concurrency limit)
VIDEO_URI = "va/video_uri"  # the file a video partition's run ingests
