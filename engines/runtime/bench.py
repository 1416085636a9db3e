"""Encoder speed per backend: windows per second and p50 / p99 latency of one ``encode`` call per batch size.

Why the backends are interleaved: ratios between backends are only meaningful when measured side by
side at the same moment, and this machine is a shared VM whose speed drifts by tens of percent from
one second to the next. So each batch size is timed in rounds; in every round each backend makes a
short burst of calls, one after the other. The speed-up is the median over rounds of the per-round
ratio, which a drift slower than a round cancels out of.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass

import numpy as np

from engines.export.parity import parity_windows
from engines.runtime.base import Encoder
from sensors.progress import progress

BATCHES = (1, 16, 64, 256)
ROUND_SECONDS = 0.05  # one burst of calls per backend and round: long enough to time, short next to the drift
MIN_ROUNDS = 5
MIN_CALLS = 50  # per backend and batch size, whatever the time: p99 needs calls to rest on


@dataclass
class Timing:
    backend: str
    device: str
    batch: int
    calls: int
    p50_ms: float
    p99_ms: float
    us_per_window: float  # p50 latency / batch
    windows_per_s: float  # batch / mean latency
    best_round_us_per_window: float  # the fastest round's mean latency / batch: the machine undisturbed


def _device(encoder: Encoder) -> str:
    return getattr(encoder, "device", "cpu" if encoder.backend == "torch" else "cuda")


def time_side_by_side(encoders: list[Encoder], batch: int, seconds: float = 2.0) -> tuple[list[Timing], list[float]]:
    """Per-call latencies of every encoder on one batch, in interleaved rounds; and per round, each one's mean.

    Returns the timings (one per encoder) and, per round, the list of mean latencies in ``encoders`` order.
    """
    windows = parity_windows(batch, encoders[0].f, seed=batch)
    calls_per_round = []
    for encoder in encoders:  # warm up, and size each burst to about ROUND_SECONDS
        for _ in range(5):
            encoder.encode(windows)
        start = time.perf_counter()
        encoder.encode(windows)
        calls_per_round.append(max(1, int(ROUND_SECONDS / max(time.perf_counter() - start, 1e-7))))
    latencies: list[list[float]] = [[] for _ in encoders]
    rounds: list[list[float]] = []
    began = time.perf_counter()
    while (
        time.perf_counter() - began < seconds * len(encoders)
        or len(rounds) < MIN_ROUNDS
        or min(len(times) for times in latencies) < MIN_CALLS
    ):
        means = []
        for encoder, calls, times in zip(encoders, calls_per_round, latencies, strict=True):
            burst = []
            for _ in range(calls):
                start = time.perf_counter()
                encoder.encode(windows)
                burst.append(time.perf_counter() - start)
            times.extend(burst)
            means.append(float(np.mean(burst)))
        rounds.append(means)
    timings = []
    for i, (encoder, times) in enumerate(zip(encoders, latencies, strict=True)):
        lat = np.asarray(times)
        p50 = float(np.percentile(lat, 50))
        timings.append(
            Timing(
                backend=encoder.backend,
                device=_device(encoder),
                batch=batch,
                calls=len(lat),
                p50_ms=round(p50 * 1e3, 4),
                p99_ms=round(float(np.percentile(lat, 99)) * 1e3, 4),
                us_per_window=round(p50 * 1e6 / batch, 3),
                windows_per_s=round(batch / float(lat.mean()), 1),
                best_round_us_per_window=round(min(r[i] for r in rounds) * 1e6 / batch, 3),
            )
        )
    return timings, rounds


def run_benchmark(encoders: list[Encoder], batches: tuple[int, ...] = BATCHES, seconds: float = 2.0) -> dict:
    """Every encoder at every batch size, side by side; the first encoder is the reference (torch)."""
    timings, ratios = [], []
    for batch in progress(batches, "Timing encoders", total=len(batches)):
        cell, rounds = time_side_by_side(encoders, batch, seconds)
        timings.extend(asdict(t) for t in cell)
        ratios.extend(_ratios(encoders, batch, rounds))
    return {
        "model": {k: encoders[0].card.get(k) for k in ("method", "f", "embedding_dim")},
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_average_before": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "seconds_per_cell": seconds,
        "timings": timings,
        "ratios": ratios,
    }


def _ratios(encoders: list[Encoder], batch: int, rounds: list[list[float]]) -> list[dict]:
    """Speed-up of each backend over the reference: median and spread (10th-90th percentile) of per-round ratios."""
    per_round = np.asarray(rounds)
    rows = []
    for i, encoder in enumerate(encoders[1:], start=1):
        ratio = per_round[:, 0] / per_round[:, i]
        rows.append(
            {
                "backend": encoder.backend,
                "device": _device(encoder),
                "batch": batch,
                "rounds": len(ratio),
                "speedup_vs_torch": round(float(np.median(ratio)), 2),
                "speedup_p10": round(float(np.percentile(ratio, 10)), 2),
                "speedup_p90": round(float(np.percentile(ratio, 90)), 2),
            }
        )
    return rows


def markdown_table(report: dict, command: str) -> str:
    """The report as the committed markdown table."""
    speedup = {(r["backend"], r["device"], r["batch"]): r for r in report["ratios"]}
    model, machine = report["model"], report["machine"]
    lines = [
        f"# Encoder speed: {model['method']} (f = {model['f']}, D = {model['embedding_dim']})",
        "",
        f"Produced by `{command}` on {machine['cpus']} CPUs ({machine['processor']}, Python {machine['python']});",
        "one `encode` call per sample, input checks included (the numbers are what a caller of `encode` gets).",
        f"Backends are timed in interleaved rounds of about {ROUND_SECONDS * 1e3:.0f} ms each, "
        f"{report['seconds_per_cell']:g} s per backend and batch size;",
        "the speed-up is the median of the per-round ratios to torch (10th-90th percentile in brackets),",
        "so that the drift of this shared VM's speed cancels out. Absolute times drift with it: the last column",
        "gives the fastest round (a lower bound on what the code costs, as `timeit` reports), beside the p50.",
        "",
        "| backend | device | batch | p50 ms | p99 ms | µs / window (p50) | windows / s | speed-up vs torch "
        "| µs / window (best round) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in report["timings"]:
        r = speedup.get((t["backend"], t["device"], t["batch"]))
        ratio = "" if r is None else f"{r['speedup_vs_torch']:.1f}x ({r['speedup_p10']:.1f}-{r['speedup_p90']:.1f})"
        lines.append(
            f"| {t['backend']} | {t['device']} | {t['batch']} | {t['p50_ms']:.3f} | {t['p99_ms']:.3f} | "
            f"{t['us_per_window']:.2f} | {t['windows_per_s']:,.0f} | {ratio} | {t['best_round_us_per_window']:.2f} |"
        )
    return "\n".join(lines) + "\n"
