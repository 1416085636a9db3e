"""Which body in this frame is which person: tracks with a start, an end and a timeout.

Why two ways: a Kinect (and a replayed file) gives every body a tracking id, which is kept; a pose
estimator may not, so bodies without an id (track id < 0) are associated frame to frame by the mean
distance of their joints to each open track's last position (greedy, nearest pair first; at most six
bodies per frame make an optimal assignment unnecessary), within ``max_jump_m``.

A track unseen for longer than ``timeout_s`` has ended, also when its body id comes back after that: a video
read as a file keeps only the images with a person, every walker as body 0, so the next walk through the
picture comes as body 0 after a gap. Track keys are unique over a run: ``sensor/id`` for the first track of
a sensor's body id, ``sensor/id#2``, ``#3``, ... for the next ones under that id, and ``sensor/aN`` for
tracks made of bodies without an id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sensors.frame import Frame


@dataclass
class _Open:
    key: str
    last_t: float
    last_centre: np.ndarray | None  # kept only for tracks without sensor ids


@dataclass
class TrackUpdate:
    """The outcome of one frame: per body its track key, plus tracks that started and ended (with last seen time)."""

    keys: list[str]
    started: list[str] = field(default_factory=list)
    ended: list[tuple[str, float]] = field(default_factory=list)


class Tracker:
    def __init__(self, timeout_s: float = 0.5, max_jump_m: float = 0.5) -> None:
        self.timeout_s = timeout_s
        self.max_jump_m = max_jump_m
        self._open: dict[str, dict[int, _Open]] = {}  # sensor -> sensor-side id -> open track
        self._next_anonymous = 0
        self._starts: dict[tuple[str, int], int] = {}  # (sensor, its body id) -> tracks started under that id

    def update(self, frame: Frame) -> TrackUpdate:
        tracks = self._open.setdefault(frame.sensor_id, {})
        update = TrackUpdate(keys=[])
        for sensor_track, state in list(tracks.items()):  # first: a body id seen again after the timeout is new
            if frame.t - state.last_t > self.timeout_s:
                update.ended.append((state.key, state.last_t))
                del tracks[sensor_track]
        ids = frame.track_ids.tolist()
        centres = None  # only bodies without a sensor id need positions (the common case skips the cost)
        if any(i < 0 for i in ids):
            centres = np.nanmean(frame.joints, axis=1)
            ids = self._associate(tracks, ids, centres)
        for body, sensor_track in enumerate(ids):
            state = tracks.get(sensor_track)
            if state is None:
                state = tracks[sensor_track] = _Open(self._new_key(frame.sensor_id, sensor_track), frame.t, None)
                update.started.append(state.key)
            state.last_t = frame.t
            if centres is not None:
                state.last_centre = centres[body]
            update.keys.append(state.key)
        return update

    def end_all(self) -> list[tuple[str, float]]:
        """Every open track, ended (the source has finished), with the time it was last seen."""
        ended = [(state.key, state.last_t) for tracks in self._open.values() for state in tracks.values()]
        self._open.clear()
        return ended

    def _new_key(self, sensor: str, sensor_track: int) -> str:
        """A key no track of this run had: anonymous ids are never reused, a sensor's own ids may be."""
        if sensor_track < 0:
            return f"{sensor}/a{-sensor_track - 1_000_000}"
        starts = self._starts[(sensor, sensor_track)] = self._starts.get((sensor, sensor_track), 0) + 1
        return f"{sensor}/{sensor_track}" if starts == 1 else f"{sensor}/{sensor_track}#{starts}"

    def _associate(self, tracks: dict[int, _Open], ids: list[int], centres: np.ndarray) -> list[int]:
        """Sensor ids for bodies without one: the nearest unclaimed open track, or a new track."""
        free = [i for i in tracks if i not in ids and tracks[i].last_centre is not None]
        pairs = sorted(
            (float(np.linalg.norm(centres[body] - tracks[t].last_centre)), body, t)
            for body, sensor_id in enumerate(ids)
            if sensor_id < 0
            for t in free
        )
        out, claimed, assigned = list(ids), set(), set()
        for distance, body, t in pairs:
            if distance <= self.max_jump_m and body not in assigned and t not in claimed:
                out[body] = t
                claimed.add(t)
                assigned.add(body)
        for body, sensor_id in enumerate(ids):
            if sensor_id < 0 and body not in assigned:
                self._next_anonymous += 1
                out[body] = -1_000_000 - self._next_anonymous  # negative: never a sensor's own id
        return out
