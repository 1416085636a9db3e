"""The node: frames in, identity events out.

Three kinds of thread joined by bounded queues, so that a slow stage never blocks a sensor:

    source threads --frames--> framing thread --windows, track start/end--> encoding thread
    (one per sensor:           (canonical joints, tracker,                  (batch, encode, match,
     read, pace)                ring buffer per track)                       publish; status each second)

A live sensor's frame that finds its queue full replaces the oldest one waiting (the newest frame
wins) and the drop is counted; a recorded file waits instead, so nothing of a file is ever dropped.
Only the encoding thread touches the ZeroMQ socket (ZeroMQ sockets are not thread-safe) and the
gallery's matcher; the order of a track's events is kept because its windows and its end travel
through the same queue.

With silhouettes (an RGB camera with ``--silhouettes``, a recording with its ``.gwsil``), each frame
travels with its bodies' aligned silhouettes: the framing thread cuts silhouette windows per track beside the
skeleton windows (``sensors.silhouette_windows.SilhouetteRing``), ``--record`` writes them to the recording's
``.gwsil`` companion, and where the node has a silhouette encoder the encoding thread encodes them and the
matcher fuses the two channels (``stream.matcher``, ``stream.fusion``).

A track is announced (``track.start``) with its first window, not when its first body is seen: a body
glimpsed for less than a window (a false detection, someone crossing the edge of the view) would
otherwise start and end a track that never had a decision. Such a track is never published; the start
event still carries the time the track was first seen.
"""

from __future__ import annotations

import math
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calibration.mapping import mapping_for
from calibration.sensor_pose import PoseLookup, SensorPose
from sensors.errors import InputError
from sensors.formats.gwrec import RecordingWriter
from sensors.formats.gwsil import SilhouetteWriter, companion
from sensors.frame import Frame
from sensors.layouts import CANONICAL
from sensors.silhouette_sources import Silhouettes
from sensors.silhouette_windows import SilhouetteRing
from stream.events import IDENTITY, STATUS, TRACK_END, TRACK_START, Publisher, window_field
from stream.gallery.gallery import Gallery
from stream.matcher import ChannelView, Decision, SilhouetteChannel, TrackMatcher
from stream.node.ring import WindowRing
from stream.node.tracker import Tracker

_DONE = object()
SWITCH_INTERVAL_S = 0.0005
SILHOUETTES_QUEUED = 64
"""Silhouette windows waiting to be encoded, at most (56 kB each, encoded far slower than skeleton windows): bounded
apart from the work queue's count, so that a replay at full speed does not queue hundreds of MB of them."""


@dataclass
class NodeConfig:
    node_id: str = "gaitwatch"
    stride: int | None = None  # frames between windows of a track (default: f, windows do not overlap)
    max_gap_s: float = 0.2  # a longer gap in a track restarts its ring
    track_timeout_s: float = 0.5  # a track unseen this long has ended
    threshold: float = math.inf  # distance up to which the nearest identity is accepted (inf: closed set)
    k: int = 5  # candidates per decision
    min_windows: int = 3  # windows pooled before the first decision
    enroll_after: int | None = None  # enroll an unknown track as anonymous after this many windows
    max_batch: int = 64
    max_wait_s: float = 0.0  # a batch waits at most this long for more windows (0: takes what is queued)
    frame_queue: int = 4096
    window_queue: int = 16384
    status_period_s: float = 1.0
    silhouette_method: str | None = None  # how the silhouettes were made (mediapipe, background): a .gwsil says so
    # sensor id -> its pose in the shared world frame (``gaitwatch calibrate``); frames of a sensor without
    # one stay in that sensor's own canonical frame
    sensor_poses: dict[str, SensorPose] = field(default_factory=dict)


@dataclass
class Counters:
    frames: int = 0
    body_frames: int = 0
    windows: int = 0
    silhouette_windows: int = 0
    decisions: int = 0
    dropped_frames: int = 0
    dropped_windows: int = 0
    tracks: int = 0  # tracks announced: those that gave a window
    framing_s: float = 0.0  # time in the framing thread's per-frame work (tracker, mapping, rings)
    deciding_s: float = 0.0  # time in the encoding thread's per-batch work (encode, match, publish)


@dataclass
class Source:
    """Frames from one sensor or file; ``live`` sources drop frames under load, files never do."""

    frames: Iterable[Frame]
    live: bool = False
    # sensor track id -> labels (replays fill it); the node takes a track's labels out when the track starts
    track_labels: dict[int, dict] = field(default_factory=dict)
    # the silhouettes of a frame just drawn from ``frames`` (a row per body), called in the source's thread
    silhouettes: Callable[[Frame], Silhouettes | None] | None = None


@dataclass
class _Framed:
    """What the framing thread keeps of an open track: its ring, and its start until a window announces it."""

    ring: WindowRing
    start: tuple | None  # the ("start", ...) item, sent before the track's first window
    silhouettes: SilhouetteRing | None = None  # where the node encodes silhouettes


@dataclass
class _TrackState:
    """What the encoding thread knows of an announced track (the framing thread keeps its ring)."""

    sensor: str
    labels: dict
    windows: int = 0
    last: Decision | None = None


class Node:
    def __init__(
        self,
        sources: list[Source],
        encoder,
        gallery: Gallery,
        publisher: Publisher,
        config: NodeConfig | None = None,
        on_event: Callable[[str, dict], None] | None = None,
        on_frame: Callable[[Frame, list[str]], None] | None = None,
        record: Path | None = None,
        silhouette_encoder=None,
        silhouette_channel: SilhouetteChannel | None = None,
    ) -> None:
        """``silhouette_encoder`` with ``silhouette_channel``: encode the sources' silhouettes and fuse them with the
        skeleton channel; without, silhouettes are only recorded (``record``)."""
        self.sources = sources
        self.encoder = encoder
        self.gallery = gallery
        self.publisher = publisher
        self.config = config = config or NodeConfig()
        self.on_event = on_event  # called with every published (topic, payload), in the encoding thread
        self.on_frame = on_frame  # called with every frame and its bodies' track keys, in the framing thread
        self.record = record  # every frame as it arrived, in gaitwatch's crash-safe format
        self._recorder: RecordingWriter | None = None
        self._silhouette_recorder: SilhouetteWriter | None = None
        self.silhouette_encoder = silhouette_encoder if silhouette_channel is not None else None
        self.rate_hz = float(encoder.card.get("rate_hz", 30.0))
        self.stride = config.stride or encoder.f
        self.matcher = TrackMatcher(
            gallery,
            config.threshold,
            config.k,
            config.min_windows,
            config.enroll_after,
            source=config.node_id,
            silhouettes=silhouette_channel if self.silhouette_encoder is not None else None,
        )
        self.tracker = Tracker(config.track_timeout_s)
        self.counters = Counters()
        self.frames: queue.Queue = queue.Queue(config.frame_queue)
        self.work: queue.Queue = queue.Queue(config.window_queue)
        self._rings: dict[str, _Framed] = {}  # framing thread: per open track
        self._pose_of = PoseLookup(config.sensor_poses)  # framing thread
        self._decided: dict[str, _TrackState] = {}  # encoding thread: per open track
        self._stop = threading.Event()
        self.errors: list[Exception] = []  # a source's or the encoding thread's failure: run() raises the first
        self._encoding_failed = threading.Event()
        self._silhouette_room = threading.BoundedSemaphore(SILHOUETTES_QUEUED)
        self._started = time.monotonic()
        self._sources_left = len(sources)
        self._labels = {id(s): s.track_labels for s in sources}
        self._live = any(s.live for s in sources)

    # --- running ---------------------------------------------------------------------------------------

    def run(self) -> Counters:
        """Run until every source has ended (or ``stop``) and every event is published."""
        # Python hands the GIL between threads every 5 ms by default: a window ready to encode would
        # wait that long behind the framing thread. 0.5 ms keeps hand-over well under the latency budget.
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, SWITCH_INTERVAL_S))
        try:
            return self._run()
        finally:
            sys.setswitchinterval(switch)

    def _run(self) -> Counters:
        threads = [threading.Thread(target=self._read, args=(s,), daemon=True, name="source") for s in self.sources]
        encoding = threading.Thread(target=self._encode_loop, daemon=True, name="encoding")
        for thread in [*threads, encoding]:
            thread.start()
        try:
            self._frame_loop()
        finally:
            self._stop.set()
            encoding.join()
        if self.errors:
            raise self.errors[0]
        return self.counters

    def stop(self) -> None:
        self._stop.set()

    def _read(self, source: Source) -> None:
        try:
            self._read_frames(source)
        except Exception as err:  # a source that fails (unreadable file, camera gone) has ended: what it gave
            self.errors.append(err)  # is still processed, the others go on, and run() raises it at the end
        finally:
            self.frames.put((_DONE, 0.0, id(source), None))

    def _read_frames(self, source: Source) -> None:
        for frame in source.frames:
            if self._stop.is_set():
                break
            silhouettes = source.silhouettes(frame) if source.silhouettes is not None else None
            item = (frame, time.time(), id(source), silhouettes)
            if not source.live:
                self.frames.put(item)
                continue
            while True:
                try:
                    self.frames.put_nowait(item)
                    break
                except queue.Full:
                    try:
                        self.frames.get_nowait()  # the newest frame wins
                        self.counters.dropped_frames += 1
                    except queue.Empty:
                        pass

    # --- framing thread: canonical joints, tracks, rings ----------------------------------------------

    def _frame_loop(self) -> None:
        left = len(self.sources)
        try:
            while left and not self._stop.is_set():
                frame, arrival, source, silhouettes = self.frames.get()
                if frame is _DONE:
                    left -= 1
                    continue
                if self.record is not None:
                    self._record(frame, silhouettes)
                began = time.perf_counter()
                self._frame(frame, arrival, source, silhouettes)
                self.counters.framing_s += time.perf_counter() - began
        finally:  # whatever happened, tracks end, the recording is closed and the encoding thread finishes
            for key, last_seen in self.tracker.end_all():
                self._end(key, last_seen)
            for writer in (self._recorder, self._silhouette_recorder):
                if writer is not None:
                    writer.close()
            self._send(("done",))

    def _record(self, frame: Frame, silhouettes: Silhouettes | None) -> None:
        if self._recorder is None:
            self._recorder = RecordingWriter(
                self.record, frame.layout, sensor_id=frame.sensor_id, metadata={"recorded_by": self.config.node_id}
            )
        if frame.layout != self._recorder.layout:
            raise InputError(
                f"{self.record}: recording {self._recorder.layout.name} frames, got a {frame.layout.name} frame "
                f"from {frame.sensor_id}; record one kind of sensor per file"
            )
        self._recorder.write_frame(frame)
        if silhouettes is not None:
            self._record_silhouettes(frame, silhouettes)

    def _record_silhouettes(self, frame: Frame, silhouettes: Silhouettes) -> None:
        """The frame's silhouettes in the recording's ``.gwsil`` companion, keyed by the frame's seq and body row."""
        if self._silhouette_recorder is None:
            self._silhouette_recorder = SilhouetteWriter(
                companion(self.record),
                method=self.config.silhouette_method or "unknown",
                sensor_id=frame.sensor_id,
                metadata={"recorded_by": self.config.node_id},
            )
        bodies = np.flatnonzero(silhouettes.valid)
        self._silhouette_recorder.write(
            frame.seq, frame.t, bodies, silhouettes.boxes[bodies], silhouettes.crops[bodies]
        )

    def _frame(self, frame: Frame, arrival: float, source: int, silhouettes: Silhouettes | None = None) -> None:
        counters = self.counters
        counters.frames += 1
        counters.body_frames += frame.num_bodies
        update = self.tracker.update(frame)
        if self.on_frame is not None:
            self.on_frame(frame, update.keys)
        for key, last_seen in update.ended:
            self._end(key, last_seen)
        if frame.num_bodies == 0:
            return
        joints = self._canonical(frame)
        for key in update.started:
            sensor_track = int(frame.track_ids[update.keys.index(key)])
            # taken, not read: a looping replay names new tracks forever, and their labels must not pile up
            labels = self._labels.get(source, {}).pop(sensor_track, {})
            ring = WindowRing(self.encoder.f, self.rate_hz, self.stride, self.config.max_gap_s)
            self._rings[key] = _Framed(ring, ("start", key, frame.sensor_id, frame.t, labels), self._silhouette_ring())
        for body, key in enumerate(update.keys):
            track = self._rings[key]
            for window, _, _ in track.ring.push(frame.t, joints[body]):
                self._announce(track)
                self._send(("window", key, window, frame.t, arrival), droppable=True)
            if track.silhouettes is not None and silhouettes is not None and silhouettes.valid[body]:
                cut = track.silhouettes.push(frame.t, silhouettes.crops[body])
                if cut is not None:
                    self._announce(track)
                    self._send_silhouette(("silhouette", key, cut[0]))

    def _silhouette_ring(self) -> SilhouetteRing | None:
        """A track's silhouette ring where the node encodes silhouettes: windows of the encoder's length, half
        overlapping (a silhouette window is long: a second or more of walking)."""
        if self.silhouette_encoder is None:
            return None
        f = self.silhouette_encoder.f
        return SilhouetteRing(f, max(1, f // 2), self.config.max_gap_s)

    def _announce(self, track: _Framed) -> None:
        """Send the track's start before its first window of either channel."""
        if track.start is not None:
            self.counters.tracks += 1
            self._send(track.start)
            track.start = None

    def _canonical(self, frame: Frame) -> np.ndarray:
        """The frame's joints on the canonical skeleton, in the world frame where its sensor is calibrated."""
        joints = frame.joints
        if not (frame.layout is CANONICAL or frame.layout == CANONICAL):
            joints = mapping_for(frame.layout).joints(joints)
        pose = self._pose_of(frame.sensor_id)
        return joints if pose is None else pose.apply(joints)

    def _end(self, key: str, t: float) -> None:
        track = self._rings.pop(key, None)
        if track is not None and track.start is None:  # announced: it gave a window
            self._send(("end", key, t))

    def _send(self, item: tuple, droppable: bool = False) -> bool:
        """Queue ``item`` for the encoding thread; False where a live source's window found no room (dropped) or
        nobody will take it."""
        if droppable and self._live:
            try:
                self.work.put_nowait(item)
                return True
            except queue.Full:
                self.counters.dropped_windows += 1
                return False
        while not self._encoding_failed.is_set():  # a file's windows wait for room, unless nobody will take them
            try:
                self.work.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def _send_silhouette(self, item: tuple) -> None:
        """A silhouette window, within ``SILHOUETTES_QUEUED``: a live source's is dropped (and counted) past it, a
        file's waits; the encoding thread gives the room back once it has encoded it."""
        if self._live:
            if not self._silhouette_room.acquire(blocking=False):
                self.counters.dropped_windows += 1
                return
        else:
            while not self._silhouette_room.acquire(timeout=0.1):
                if self._encoding_failed.is_set():
                    return
        if not self._send(item, droppable=True):
            self._silhouette_room.release()

    # --- encoding thread: batches, encoder, matcher, events ---------------------------------------------

    def _encode_loop(self) -> None:
        """Batches until the framing thread is done; a failure (a gallery that cannot be written, the encoder)
        stops the node and is raised by run(), never left as a dead thread behind a node that exits well."""
        try:
            self._encode_batches()
        except Exception as err:
            self.errors.append(err)
            self._encoding_failed.set()
            self._stop.set()

    def _encode_batches(self) -> None:
        config = self.config
        next_status = time.monotonic() + config.status_period_s
        self._last_status = (time.monotonic(), Counters())
        batch: list[tuple] = []
        done = False
        while not done:
            try:
                if batch and config.max_wait_s <= 0:
                    item = self.work.get_nowait()  # batch what has queued up meanwhile, wait for nothing
                else:
                    timeout = config.max_wait_s if batch else max(0.0, next_status - time.monotonic())
                    item = self.work.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is not None and item[0] in ("window", "silhouette"):
                batch.append(item)
                if len(batch) < config.max_batch:
                    continue
                item = None
            if batch:
                began = time.perf_counter()
                self._decide(batch)
                self.counters.deciding_s += time.perf_counter() - began
                batch = []
            if item is not None:
                done = self._control(item)
            if time.monotonic() >= next_status or done:
                self._status(finished=done)
                next_status = time.monotonic() + config.status_period_s

    def _decide(self, batch: list[tuple]) -> None:
        """Encode a batch of windows; silhouettes first, so that the batch's decisions already use them."""
        silhouettes = [item for item in batch if item[0] == "silhouette"]
        if silhouettes:
            self._observe_silhouettes(silhouettes)
            batch = [item for item in batch if item[0] == "window"]
            if not batch:
                return
        embeddings = self.encoder.encode(np.stack([item[2] for item in batch]))
        self.counters.windows += len(batch)
        known = [(item, vector) for item, vector in zip(batch, embeddings, strict=True) if item[1] in self._decided]
        if not known:
            return
        decisions = self.matcher.observe_many([item[1] for item, _ in known], np.asarray([e for _, e in known]))
        threshold = None if math.isinf(self.config.threshold) else self.config.threshold
        for ((_, key, window, t_capture, arrival), _), decision in zip(known, decisions, strict=True):
            state = self._decided[key]
            state.windows += 1
            if decision is None:
                continue
            state.last = decision
            self.counters.decisions += 1
            self._publish(
                IDENTITY,
                {
                    "sensor": state.sensor,
                    "track": key,
                    "t_capture": t_capture,
                    "t_arrival": arrival,
                    **self._decision_fields(decision),
                    "known": decision.identity is not None,
                    "threshold": threshold,
                    "enrolled": decision.enrolled,
                    "window": window_field(window),
                    **({"channels": self._channels(decision)} if decision.channels is not None else {}),
                    "candidates": [
                        {"identity": m.identity, "name": self.gallery.name_of(m.identity), "distance": m.distance}
                        for m in decision.candidates
                    ],
                },
            )

    def _observe_silhouettes(self, items: list[tuple]) -> None:
        try:
            embeddings = self.silhouette_encoder.encode(np.stack([item[2] for item in items]))
        finally:
            for _ in items:
                self._silhouette_room.release()
        self.counters.silhouette_windows += len(items)
        known = [(item[1], vector) for item, vector in zip(items, embeddings, strict=True) if item[1] in self._decided]
        if known:
            self.matcher.observe_silhouettes([key for key, _ in known], np.asarray([v for _, v in known]))

    def _channels(self, decision: Decision) -> dict:
        """The identity event's ``channels``: what each channel alone says, and whether they agree."""
        views = decision.channels or {}

        def field(view: ChannelView) -> dict:
            name = self.gallery.name_of(view.identity) if view.identity is not None else None
            return {"identity": view.identity, "name": name, "distance": view.distance, "windows": view.windows}

        found = {channel: field(view) for channel, view in views.items()}
        named = [view.identity for view in views.values()]
        agree = None if len(named) < 2 or None in named else len(set(named)) == 1
        return {**found, "agree": agree, "weight": self.matcher.silhouettes.weight}

    def _decision_fields(self, decision: Decision | None) -> dict:
        if decision is None:
            return {"identity": None, "name": None, "distance": None, "windows": 0}
        return {
            "identity": decision.identity,
            "name": decision.name,
            "distance": decision.distance,
            "windows": decision.windows,
        }

    def _control(self, item: tuple) -> bool:
        kind = item[0]
        if kind == "start":
            _, key, sensor, t, labels = item
            self._decided[key] = _TrackState(sensor, labels)
            self._publish(TRACK_START, {"sensor": sensor, "track": key, "t_capture": t, "labels": labels})
        elif kind == "end":
            _, key, t = item
            state = self._decided.pop(key, None)
            self.matcher.end(key)
            if state is not None:
                fields = self._decision_fields(state.last)
                fields["windows"] = state.windows
                payload = {"sensor": state.sensor, "track": key, "t_capture": t}
                self._publish(TRACK_END, {**payload, "labels": state.labels, **fields})
        return kind == "done"

    def _status(self, finished: bool = False) -> None:
        now, c = time.monotonic(), self.counters
        then, before = self._last_status
        span = max(now - then, 1e-9)
        self._last_status = (now, Counters(**vars(c)))
        self._publish(
            STATUS,
            {
                "uptime_s": now - self._started,
                "rates": {
                    "frames": (c.frames - before.frames) / span,
                    "body_frames": (c.body_frames - before.body_frames) / span,
                    "windows": (c.windows - before.windows) / span,
                    "silhouette_windows": (c.silhouette_windows - before.silhouette_windows) / span,
                    "decisions": (c.decisions - before.decisions) / span,
                },
                "queues": {"frames": self.frames.qsize(), "work": self.work.qsize()},
                "dropped": {
                    "frames": c.dropped_frames,
                    "windows": c.dropped_windows,
                    "events": self.publisher.dropped,
                },
                "tracks": [
                    {"track": key, **self._decision_fields(state.last), "windows": state.windows}
                    for key, state in self._decided.items()
                ],
                "finished": finished,
            },
        )

    def _publish(self, topic: str, payload: dict) -> None:
        self.publisher.publish(topic, payload)
        if self.on_event is not None:
            self.on_event(topic, payload)
