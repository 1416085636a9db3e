"""``gaitwatch bench pipeline``: the whole node's throughput and frame-to-event latency, as JSON and a table.

Load: ``--sensors`` sensors each seeing ``--bodies`` people at once, made from the bundled demo walks
(every body a different walk, looped to ``--seconds``), through the shipped model against the demo
gallery, with a real ZeroMQ publisher and subscriber on loopback.

- Throughput: every sensor replayed as fast as it can be read; body-frames per second through the
  node from the first frame read to the last event published.
- Latency: every sensor replayed at its recorded pace (30 Hz); per identity event, the time from the
  arrival at the node of the frame that completed its window to the event leaving the publisher,
  as measured on the node's clock; p50 / p99 / max. Drops and lost events are reported beside them.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from sensors.recording import Recording
from sensors.replay import Replay
from stream.events import IDENTITY, Publisher
from stream.node.demo import build_demo_gallery, demo_split
from stream.node.node import Node, NodeConfig, Source
from stream.subscriber import Subscriber


def crowd(walks: list[Recording], sensor: int, bodies: int, seconds: float, rate_hz: float = 30.0) -> Recording:
    """One sensor's recording: ``bodies`` walks at once (different ones per sensor), each looped to ``seconds``."""
    frames = int(seconds * rate_hz)
    chosen = [walks[(sensor * bodies + b) % len(walks)] for b in range(bodies)]
    joints = np.stack([np.resize(w.joints, (frames, *w.joints.shape[1:])) for w in chosen], axis=1)  # [T, B, J, 3]
    return Recording(
        layout=walks[0].layout,
        t=np.arange(frames) / rate_hz,
        seq=np.arange(frames, dtype=np.int64),
        body_offsets=np.arange(frames + 1, dtype=np.int64) * bodies,
        track_ids=np.tile(np.arange(bodies, dtype=np.int64), frames),
        joints=joints.reshape(frames * bodies, *joints.shape[2:]).astype(np.float32),
        confidence=np.ones((frames * bodies, joints.shape[2]), np.float32),
        sensor_id=f"sensor{sensor}",
        rate_hz=rate_hz,
        metadata={"tracks": {str(b): chosen[b].metadata for b in range(bodies)}},
    )


def run_once(encoder, gallery, sensors: int, bodies: int, seconds: float, speed: float | None) -> dict:
    """One node run with a subscriber on loopback; what it did and how fast."""
    _, walks = demo_split()
    recordings = [crowd(walks, s, bodies, seconds) for s in range(sensors)]
    publisher = Publisher("tcp://127.0.0.1:0", "bench")
    subscriber = Subscriber(publisher.endpoint, timeout_s=3.0)
    time.sleep(0.3)
    received: list = []
    reader = threading.Thread(target=lambda: received.extend(subscriber))
    reader.start()
    sources = [Source(Replay.of([r], speed=speed, sensor_id=r.sensor_id)) for r in recordings]
    node = Node(sources, encoder, gallery, publisher, NodeConfig())
    start = time.perf_counter()
    counters = node.run()
    elapsed = time.perf_counter() - start
    reader.join()
    publisher.close()
    subscriber.close()
    latencies = np.array([e.t_emit - e.payload["t_arrival"] for e in received if e.topic == IDENTITY]) * 1e3
    return {
        "sensors": sensors,
        "bodies_per_sensor": bodies,
        "speed": "max" if speed is None else speed,
        "seconds_of_recording": seconds,
        "wall_s": elapsed,
        "body_frames": counters.body_frames,
        "body_frames_per_s": counters.body_frames / elapsed,
        "windows": counters.windows,
        "decisions": counters.decisions,
        "events_sent": publisher.sent,
        "events_received": len(received),
        "events_lost": subscriber.gaps,
        "dropped": {
            "frames": counters.dropped_frames,
            "windows": counters.dropped_windows,
            "events": publisher.dropped,
        },
        "latency_ms": {
            "p50": float(np.percentile(latencies, 50)),
            "p99": float(np.percentile(latencies, 99)),
            "max": float(latencies.max()),
        }
        if len(latencies)
        else None,
    }


def run_benchmark(sensors: int, bodies: int, seconds: float, max_speed_seconds: float) -> dict:
    from engines.runtime.load import open_encoder

    encoder = open_encoder()
    enroll, _ = demo_split()
    with tempfile.TemporaryDirectory() as folder:
        gallery = build_demo_gallery(Path(folder) / "demo.db", encoder, enroll)
        throughput = run_once(encoder, gallery, sensors, bodies, max_speed_seconds, None)
        latency = run_once(encoder, gallery, sensors, bodies, seconds, 1.0)
        gallery.close()
    return {
        "model": encoder.card["file"]["name"],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "throughput": throughput,
        "latency": latency,
    }


def markdown(report: dict, command: str) -> str:
    t, lat = report["throughput"], report["latency"]
    rows = [
        f"| throughput, as fast as possible | {t['sensors']} x {t['bodies_per_sensor']} | "
        f"{t['body_frames']:,} | {t['body_frames_per_s']:,.0f} | {_ms(t)} | {_losses(t)} |",
        f"| latency, recorded pace (30 Hz) | {lat['sensors']} x {lat['bodies_per_sensor']} | "
        f"{lat['body_frames']:,} | {lat['body_frames_per_s']:,.0f} | {_ms(lat)} | {_losses(lat)} |",
    ]
    return "\n".join(
        [
            "# Live node: throughput and frame-to-event latency",
            "",
            f"`{command}` on {report['machine']['cpus']} CPUs (Python {report['machine']['python']}), one process; "
            f"model `{report['model']}`, the demo gallery, a ZeroMQ subscriber on loopback. Latency: from a frame's "
            "arrival at the node to the identity event its window produced leaving the publisher.",
            "",
            "| run | sensors x bodies | body-frames | body-frames / s | event latency p50 / p99 / max ms "
            "| dropped frames / windows / events, lost at subscriber |",
            "| --- | --- | ---: | ---: | ---: | --- |",
            *rows,
            "",
        ]
    )


def _ms(run: dict) -> str:
    lat = run["latency_ms"]
    return "" if lat is None else f"{lat['p50']:.2f} / {lat['p99']:.2f} / {lat['max']:.1f}"


def _losses(run: dict) -> str:
    d = run["dropped"]
    return f"{d['frames']} / {d['windows']} / {d['events']}, {run['events_lost']}"


def write(report: dict, out: Path | None, table: Path | None, command: str) -> str:
    text = markdown(report, command)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
    if out or table:
        path = table or out.with_suffix(".md")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return text
