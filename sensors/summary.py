"""Plain-data summaries of recordings and datasets, for ``gaitwatch info`` and tests."""

from __future__ import annotations

from collections import Counter

import numpy as np

from sensors.formats.gwsil import SilhouetteRecords
from sensors.formats.kgbd import KgbdDataset
from sensors.progress import progress as show_progress
from sensors.recording import Recording


def measured_rate(recording: Recording) -> float | None:
    """Frames per second from the median time step (None with fewer than 2 frames)."""
    if recording.num_frames < 2:
        return None
    step = float(np.median(np.diff(recording.t)))
    return 1.0 / step if step > 0 else None


def recording_summary(recording: Recording) -> dict:
    rate = measured_rate(recording)
    summary = {
        "kind": "recording",
        "layout": recording.layout.name,
        "joints": recording.layout.num_joints,
        "units": recording.units,
        "sensor_id": recording.sensor_id,
        "bodies": len(recording.unique_tracks()),
        "max_bodies_per_frame": int(np.diff(recording.body_offsets).max(initial=0)),
        "frames": recording.num_frames,
        "body_frames": recording.num_body_frames,
        "duration_s": round(recording.duration, 3),
        "nominal_rate_hz": recording.rate_hz,
        "measured_rate_hz": None if rate is None else round(rate, 3),
        "labels": {k: v for k, v in recording.metadata.items() if k != "tracks"},
    }
    tracks = recording.metadata.get("tracks")
    if tracks:
        summary["track_labels"] = tracks
    if recording.truncation:
        summary["truncated"] = {
            "complete_frames": recording.truncation.complete_frames,
            "dropped_bytes": recording.truncation.dropped_bytes,
            "reason": recording.truncation.reason,
        }
    return summary


def dataset_summary(dataset: KgbdDataset, progress: bool = True) -> dict:
    frames, durations = [], 0.0
    walks = show_progress(dataset, "reading walks", total=len(dataset), enabled=progress)
    for rec in walks:
        frames.append(rec.num_frames)
        durations += rec.duration
    walks_per_person = Counter(Counter(w.person for w in dataset.walks).values())
    return {
        "kind": "dataset",
        "dataset": "kgbd",
        "path": str(dataset.path),
        "layout": "kinect_v1",
        "people": len(dataset.people),
        "walks": len(dataset),
        "frames": int(sum(frames)),
        "body_frames": int(sum(frames)),
        "duration_s": round(durations, 1),
        "nominal_rate_hz": 30.0,
        "frames_per_walk": {"min": min(frames), "median": float(np.median(frames)), "max": max(frames)},
        "walks_per_person": {str(k): v for k, v in sorted(walks_per_person.items())},
    }


def silhouette_summary(records: SilhouetteRecords) -> dict:
    """A ``.gwsil``: method, size, how many silhouettes of how many frames, the time they span, a torn tail."""
    summary = {
        "kind": "silhouettes",
        "method": records.method,
        "size": list(records.silhouettes.shape[1:]),
        "sensor_id": records.header.get("sensor_id", "unknown"),
        "silhouettes": len(records.seq),
        "frames": len(np.unique(records.seq)),
        "duration_s": float(records.t.max() - records.t.min()) if len(records.t) else 0.0,
    }
    if records.truncation is not None:
        summary["truncated"] = {
            "reason": records.truncation.reason,
            "dropped_bytes": records.truncation.dropped_bytes,
        }
    return summary
