"""Where a node's silhouettes come from: a camera's estimates, or a replayed recording's ``.gwsil`` companion.

Why a lookup beside the frames rather than in them: a ``Frame`` is what every sensor and reader hands on, and
only RGB sources have silhouettes. The node asks ``Source.silhouettes(frame)`` in the source's own thread right
after drawing the frame, so the lookup needs no lock: the camera keeps each estimate's silhouettes by the frame's
seq until the node takes them; a replay says which recording and seq it is playing (``Replay.playing``) and the
recording's companion is read when the recording starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sensors.formats import iter_recordings, open_dataset, read_file
from sensors.formats.gwsil import SilhouetteRecords, companion, read_gwsil
from sensors.frame import Frame
from sensors.recording import Recording
from sensors.replay import Replay
from sensors.silhouette_sources import Silhouettes

KEPT_RECORDINGS = 2  # the recording playing and the one read ahead of it


class CameraSilhouettes:
    """An RGB source's silhouettes per frame seq, from when the estimate is made until the node takes them."""

    def __init__(self) -> None:
        self._waiting: dict[int, Silhouettes | None] = {}

    def keep(self, seq: int, silhouettes: Silhouettes | None) -> None:
        """Keep an estimate's silhouettes for its frame; without the full-image mask (the preview's), so that
        frames queued in the node hold 64 x 44 crops only."""
        if silhouettes is not None and silhouettes.mask is not None:
            silhouettes = Silhouettes(silhouettes.crops, silhouettes.valid, silhouettes.boxes)
        self._waiting[seq] = silhouettes

    def __call__(self, frame: Frame) -> Silhouettes | None:
        return self._waiting.pop(frame.seq, None)


class ReplaySilhouettes:
    """The silhouettes of replayed recordings that have a ``.gwsil`` companion (other recordings have none)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.replay: Replay | None = None  # set once the replay is made: it says which frame is playing
        self._by_recording: dict[int, tuple[Recording, dict[int, np.ndarray], SilhouetteRecords]] = {}
        # recording path -> its .gwsil, for the recordings that have one (a dataset has none)
        self.files = {p: companion(p) for p in paths if companion(p).is_file() and open_dataset(p) is None}

    def recordings(self) -> Iterator[Recording]:
        """The recordings of ``paths`` in order (as ``iter_recordings``), each companion read as its recording is."""
        for path in self.paths:
            sidecar = self.files.get(path)
            if sidecar is None:
                yield from iter_recordings([path])
                continue
            recording = read_file(path)
            records = read_gwsil(sidecar)
            if records.truncation is not None:
                print(f"warning: {sidecar}: {records.truncation}", flush=True)
            rows_of = _rows_by_seq(records.seq)
            self._by_recording[id(recording)] = (recording, rows_of, records)  # the recording kept: its id stays its
            while len(self._by_recording) > KEPT_RECORDINGS:
                self._by_recording.pop(next(iter(self._by_recording)))
            yield recording

    def __call__(self, frame: Frame) -> Silhouettes | None:
        playing = self.replay.playing if self.replay is not None else None
        if playing is None:
            return None
        found = self._by_recording.get(id(playing[0]))
        if found is None:
            return None
        _, rows_of, records = found
        rows = rows_of.get(playing[1])
        bodies = frame.num_bodies
        crops = np.zeros((bodies, *records.silhouettes.shape[1:]), np.uint8)
        valid = np.zeros(bodies, bool)
        boxes = np.zeros((bodies, 4), np.int32)
        if rows is not None:
            index = records.body_index[rows]
            inside = index < bodies  # a record naming a body the frame lacks is not this frame's
            rows, index = rows[inside], index[inside]
            crops[index], boxes[index], valid[index] = records.silhouettes[rows], records.boxes[rows], True
        return Silhouettes(crops, valid, boxes)


def _rows_by_seq(seq: np.ndarray) -> dict[int, np.ndarray]:
    """Row indices of each frame seq, for a lookup per frame."""
    order = np.argsort(seq, kind="stable")
    values, starts = np.unique(seq[order], return_index=True)
    return {int(v): rows for v, rows in zip(values, np.split(order, starts[1:]), strict=True)}
