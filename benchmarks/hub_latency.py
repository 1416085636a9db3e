"""What the site hub adds to an event's way from node to subscriber, with CURVE on every socket.

Load: 16 sensors x 6 bodies x 30 Hz spread over 3 node processes; a node publishes one identity decision per
track per window (f = 6 frames), so 480 identity events a second in all (160 per node), each the size of a real
one (5 candidates). Each node process publishes at that pace with its own key pair, and one subscriber reads:

- **direct**: every node binds its own CURVE PUB socket; the subscriber connects to the three;
- **hub**: every node connects to ``gaitwatch hub`` (its own process, CURVE on both sides, allow-lists);
  the subscriber connects to the hub only.

Latency = receive time - ``t_emit`` (stamped by the publisher as it sends; one machine, one clock). The hub's
cost is the difference of the two runs' percentiles, measured back to back in one invocation. The node's own
frame-to-decision latency (``gaitwatch bench pipeline``) is the same either way: only this hop changes.

    python benchmarks/hub_latency.py --seconds 20 --out benchmarks/results/hub_latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stream.curve import Curve  # noqa: E402
from stream.events import IDENTITY, Publisher  # noqa: E402
from stream.keys import create_key_pair  # noqa: E402
from stream.subscriber import Subscriber  # noqa: E402

SENSORS, BODIES, RATE_HZ, WINDOW = 16, 6, 30, 6
NODES = 3
EVENTS_PER_S = SENSORS * BODIES * RATE_HZ // WINDOW
PAYLOAD = {
    "sensor": "door",
    "track": "door/1",
    "t_capture": 0.0,
    "t_arrival": 0.0,
    "identity": 12,
    "name": "a person's name",
    "known": True,
    "distance": 0.0412,
    "threshold": 0.08,
    "windows": 12,
    "candidates": [{"identity": i, "name": f"person {i}", "distance": 0.04 + i / 100} for i in range(5)],
}


def free_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


def node_process(endpoint: str, to_hub: bool, keys: Path, name: str, seconds: float, rate: float) -> None:
    """One node: identity events at ``rate`` a second for ``seconds``, after a second to let peers connect."""
    if to_hub:
        curve = Curve.of(keys / name / f"{name}.key_secret", server_key=keys / "hub" / "hub.key")
    else:
        curve = Curve.of(keys / name / f"{name}.key_secret", allow=keys / "subscribers")
    publisher = Publisher(endpoint, name, curve=curve, to_hub=to_hub)
    time.sleep(2.0)
    start = time.perf_counter()
    sent = 0
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            publisher.publish(IDENTITY, PAYLOAD)
            sent += 1
        time.sleep(0.001)
    time.sleep(0.5)
    publisher.close()


def make_keys(folder: Path) -> None:
    names = ["hub", "watch"] + [f"node{i}" for i in range(NODES)]
    for name in names:
        create_key_pair(folder / name, name)
    for allow, members in (("nodes", [f"node{i}" for i in range(NODES)]), ("subscribers", ["watch"])):
        (folder / allow).mkdir()
        for member in members:
            (folder / allow / f"{member}.key").write_bytes((folder / member / f"{member}.key").read_bytes())


def run(mode: str, keys: Path, seconds: float) -> dict:
    hub = None
    if mode == "hub":
        inputs, outputs = free_endpoint(), free_endpoint()
        hub = subprocess.Popen(
            [str(Path(sys.executable).with_name("gaitwatch")), "hub", "--in", inputs, "--out", outputs,
             "--keys", str(keys / "hub" / "hub.key_secret"), "--allow-nodes", str(keys / "nodes"),
             "--allow-subscribers", str(keys / "subscribers")],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        hub.stdout.readline()
        node_endpoints = [inputs] * NODES
        read = [outputs]
        server = "hub"
    else:
        node_endpoints = [free_endpoint() for _ in range(NODES)]
        read = node_endpoints
        server = None
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "_node",
                endpoint,
                str(mode == "hub"),
                str(keys),
                f"node{i}",
                str(seconds),
                str(EVENTS_PER_S / NODES),
            ]
        )
        for i, endpoint in enumerate(node_endpoints)
    ]
    time.sleep(0.5)
    subscribers = []
    for i, endpoint in enumerate(read):
        peer = server or f"node{i}"
        curve = Curve.of(keys / "watch" / "watch.key_secret", server_key=keys / peer / f"{peer}.key")
        subscribers.append(Subscriber(endpoint, curve=curve))
    import zmq

    poller = zmq.Poller()
    for sub in subscribers:
        poller.register(sub.socket, zmq.POLLIN)
    latencies: list[float] = []
    end = time.monotonic() + seconds + 4.0
    while time.monotonic() < end:
        for sock, _ in poller.poll(100):
            frames = sock.recv_multipart()
            received = time.time()
            latencies.append((received - json.loads(frames[1])["t_emit"]) * 1000)
    for proc in nodes:
        proc.wait(timeout=30)
    for sub in subscribers:
        sub.close()
    if hub is not None:
        hub.send_signal(signal.SIGTERM)
        hub.wait(timeout=30)
    values = np.asarray(latencies)
    return {
        "events": len(values),
        "expected": int(EVENTS_PER_S * seconds),
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p99_ms": round(float(np.percentile(values, 99)), 3),
        "max_ms": round(float(values.max()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/hub_latency.json")
    args = parser.parse_args()
    keys = Path(tempfile.mkdtemp(prefix="gaitwatch-hub-bench-"))
    make_keys(keys / "k")
    report = {
        "load": f"{SENSORS} sensors x {BODIES} bodies x {RATE_HZ} Hz over {NODES} nodes: {EVENTS_PER_S} events/s",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "seconds": args.seconds,
        "direct": run("direct", keys / "k", args.seconds),
        "hub": run("hub", keys / "k", args.seconds),
    }
    report["hub_adds_p50_ms"] = round(report["hub"]["p50_ms"] - report["direct"]["p50_ms"], 3)
    report["hub_adds_p99_ms"] = round(report["hub"]["p99_ms"] - report["direct"]["p99_ms"], 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    table = markdown(report, args.seconds)
    (ROOT / "benchmarks" / "hub_latency.md").write_text(table)
    print(table)


def markdown(report: dict, seconds: float) -> str:
    lines = [
        "# The site hub's cost on the event path (CURVE on every socket)",
        "",
        f"`python benchmarks/hub_latency.py --seconds {seconds:g}` (method in its docstring); {report['load']}; "
        f"{report['machine']}, node processes, hub and subscriber on this one machine.",
        "",
        "| path | events received / sent | p50 | p99 | max |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for mode in ("direct", "hub"):
        row = report[mode]
        lines.append(
            f"| {mode} | {row['events']} / {row['expected']} | {row['p50_ms']} ms | {row['p99_ms']} ms | "
            f"{row['max_ms']} ms |"
        )
    lines += [
        "",
        f"The hub adds {report['hub_adds_p50_ms']} ms at p50 and {report['hub_adds_p99_ms']} ms at p99.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_node":
        endpoint, to_hub, keys, name, seconds, rate = sys.argv[2:8]
        node_process(endpoint, to_hub == "True", Path(keys), name, float(seconds), float(rate))
    else:
        main()
