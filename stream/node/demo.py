"""The demo: the bundled CMU walks split into a gallery and the walks replayed against it.

Per subject, the first trial (in trial order) is enrolled and the other trials are replayed, so
every replayed walk is a walk the gallery has never seen, of a person it has. The gallery is built
in moments from the bundled recording into a new file (never one that exists: the demo touches no
gallery it did not make), so the demo needs nothing but the package.
"""

from __future__ import annotations

from pathlib import Path

from sensors.demo import demo_recording_path
from sensors.formats import read_file
from sensors.recording import Recording
from stream.gallery.gallery import Gallery
from stream.windows import track_windows


def single_tracks(recording: Recording) -> list[Recording]:
    """Each track of ``recording`` as its own one-body recording, with its labels."""
    out = []
    for track in recording.unique_tracks().tolist():
        t, joints, confidence = recording.track(track)
        single = Recording.single_body(
            recording.layout,
            joints,
            recording.rate_hz or 30.0,
            confidence=confidence,
            sensor_id=recording.sensor_id,
            metadata=recording.track_labels(track),
            t0=float(t[0]),
        )
        out.append(single)
    return out


def demo_split() -> tuple[list[Recording], list[Recording]]:
    """(walks to enroll: the first trial of each subject, walks to replay: the others)."""
    walks = sorted(single_tracks(read_file(demo_recording_path())), key=lambda r: r.metadata["trial"])
    seen: set[str] = set()
    enroll, replay = [], []
    for walk in walks:
        subject = walk.metadata["subject"]
        (replay if subject in seen else enroll).append(walk)
        seen.add(subject)
    return enroll, replay


def build_demo_gallery(path: Path, encoder, walks: list[Recording]) -> Gallery:
    """A new gallery at ``path`` (refused if anything is there) holding ``walks``, one identity per CMU subject."""
    gallery = Gallery.create(path, encoder.card)
    rate = float(encoder.card["rate_hz"])
    for walk in walks:
        subject = str(walk.metadata["subject"])
        attributes = {"enrolled_from": walk.metadata["trial"], "subject": subject}
        identity = gallery.add_identity(f"CMU subject {subject}", attributes)
        for part in track_windows(walk, encoder.f, rate):
            gallery.enroll_track(identity, part, encoder.encode, f"demo:{walk.metadata['trial']}")
    return gallery
