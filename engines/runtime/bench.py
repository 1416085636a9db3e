"""Encoder speed per backend: windows per second and p50 / p99 latency of one ``encode`` call per batch size.

Why all backends in one run: ratios between backends are only meaningful when measured side by side
on the same machine at the same moment; absolute numbers move with whatever else the CPU is doing.
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


def time_encoder(encoder: Encoder, batch: int, seconds: float = 2.0, min_calls: int = 50) -> Timing:
    """Latency of ``encode`` on one fixed batch: warm up, then call until ``seconds`` and ``min_calls`` are met."""
    windows = parity_windows(batch, encoder.f, seed=batch)
    for _ in range(10):
        encoder.encode(windows)
    latencies: list[float] = []
    began = time.perf_counter()
    while len(latencies) < min_calls or time.perf_counter() - began < seconds:
        start = time.perf_counter()
        encoder.encode(windows)
        latencies.append(time.perf_counter() - start)
    lat = np.asarray(latencies)
    p50 = float(np.percentile(lat, 50))
    return Timing(
        backend=encoder.backend,
        device=getattr(encoder, "device", "cpu" if encoder.backend == "torch" else "cuda"),
        batch=batch,
        calls=len(lat),
        p50_ms=round(p50 * 1e3, 4),
        p99_ms=round(float(np.percentile(lat, 99)) * 1e3, 4),
        us_per_window=round(p50 * 1e6 / batch, 3),
        windows_per_s=round(batch / float(lat.mean()), 1),
    )


def run_benchmark(encoders: list[Encoder], batches: tuple[int, ...] = BATCHES, seconds: float = 2.0) -> dict:
    """Every encoder at every batch size, interleaved per batch size; returns a JSON-ready report."""
    timings = []
    jobs = [(batch, encoder) for batch in batches for encoder in encoders]
    for batch, encoder in progress(jobs, "Timing encoders", total=len(jobs)):
        timings.append(asdict(time_encoder(encoder, batch, seconds)))
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
        "ratios": _ratios(timings),
    }


def _ratios(timings: list[dict]) -> list[dict]:
    """Speed-up of each backend over torch eager at each batch size (p50 latency ratio)."""
    torch_p50 = {t["batch"]: t["p50_ms"] for t in timings if t["backend"] == "torch"}
    return [
        {
            "backend": t["backend"],
            "device": t["device"],
            "batch": t["batch"],
            "speedup_vs_torch": round(torch_p50[t["batch"]] / t["p50_ms"], 2),
        }
        for t in timings
        if t["backend"] != "torch" and t["batch"] in torch_p50
    ]


def markdown_table(report: dict, command: str) -> str:
    """The report as the committed markdown table."""
    speedup = {(r["backend"], r["device"], r["batch"]): r["speedup_vs_torch"] for r in report["ratios"]}
    model, machine = report["model"], report["machine"]
    lines = [
        f"# Encoder speed: {model['method']} (f = {model['f']}, D = {model['embedding_dim']})",
        "",
        f"Produced by `{command}` on {machine['cpus']} CPUs ({machine['processor']}, Python {machine['python']});",
        "one `encode` call per sample, p50 / p99 over at least 50 calls and "
        f"{report['seconds_per_cell']:g} s per cell,",
        "all backends in one run (input checks included: the numbers are what a caller of `encode` gets).",
        "",
        "| backend | device | batch | p50 ms | p99 ms | µs / window (p50) | windows / s | speed-up vs torch (p50) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in report["timings"]:
        ratio = speedup.get((t["backend"], t["device"], t["batch"]))
        lines.append(
            f"| {t['backend']} | {t['device']} | {t['batch']} | {t['p50_ms']:.3f} | {t['p99_ms']:.3f} | "
            f"{t['us_per_window']:.2f} | {t['windows_per_s']:,.0f} | {'' if ratio is None else f'{ratio:.1f}x'} |"
        )
    return "\n".join(lines) + "\n"
