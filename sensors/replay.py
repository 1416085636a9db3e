"""Replay: recorded files played back as a live stream of frames.

Recordings play one after another on one continuous clock and sequence; every
recording's tracks get fresh track ids (a person walking again is a new track),
and ``track_labels`` says which recording (person, walk, ...) each track came from.
Frames come at the recorded pace times ``speed``, or as fast as possible with ``speed=None``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from sensors.frame import Frame
from sensors.recording import Recording


class Replay:
    def __init__(
        self,
        recordings: Callable[[], Iterable[Recording]],
        *,
        speed: float | None = 1.0,
        loop: bool = False,
        gap_s: float = 0.5,
        sensor_id: str | None = "replay",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``recordings`` is called once per pass, so datasets are read lazily and loops re-read them.
        Frames carry ``sensor_id``, or with None each recording's own (so its sensor calibration applies)."""
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be positive or None (as fast as possible), got {speed}")
        self._recordings = recordings
        self.speed = speed
        self.loop = loop
        self.gap_s = gap_s
        self.sensor_id = sensor_id
        self._clock = clock
        self._sleep = sleep
        self.track_labels: dict[int, dict] = {}
        # the recording of the frame last yielded and that frame's seq in it (its companion files are keyed by it)
        self.playing: tuple[Recording, int] | None = None

    @staticmethod
    def of(recordings: list[Recording], **options) -> Replay:
        return Replay(lambda: recordings, **options)

    def __iter__(self) -> Iterator[Frame]:
        seq, stream_t, next_track = 0, 0.0, 0
        start_wall = None
        while True:
            played = False
            for rec in self._recordings():
                if rec.num_frames == 0:
                    continue
                played = True
                new_ids, labels = rec.renumbered_tracks(next_track)
                self.track_labels.update(labels)
                next_track += len(labels)
                sensor_id = rec.sensor_id if self.sensor_id is None else self.sensor_id
                shifted = replace(rec, track_ids=new_ids, sensor_id=sensor_id)
                t_base = stream_t - float(rec.t[0])
                for frame in shifted.frames():
                    t = frame.t + t_base
                    if self.speed is not None:
                        if start_wall is None:
                            start_wall = self._clock() - t / self.speed
                        delay = start_wall + t / self.speed - self._clock()
                        if delay > 0:
                            self._sleep(delay)
                    self.playing = (rec, int(frame.seq))
                    yield replace(frame, seq=seq, t=t)
                    seq += 1
                period = 1.0 / rec.rate_hz if rec.rate_hz else 0.0
                stream_t = float(rec.t[-1]) + t_base + period + self.gap_s
            if not (self.loop and played):
                return
