"""What the body shape costs a decision: the track index searched with the Euclidean and the fused distance.

Per N enrolled tracks (one identity each, random 128-value embeddings and 19 bone lengths around a body, stored
through ``Gallery.enroll``), one gallery per metric holding the same vectors (``euclidean``, and
``euclidean+body-shape``: ``engines/track_distance.py``); then ``Gallery.search_tracks_many`` on batches of 64
pooled queries as the node's decisions ask, p50 and p99 per batch over ``--rounds`` batches, both metrics in the
same run, alternating. Up to 5,000 tracks the fused distance scores every track mean (the batch at once); above
that it re-scores the 32 identities the index finds nearest, one query at a time. Writes
benchmarks/results/body_shape_speed.json and benchmarks/body_shape_speed.md.

    python benchmarks/body_shape_speed.py --tracks 1000 5000 20000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from engines.track_distance import BODY_SHAPE, EUCLIDEAN, SHAPE_VALUES
from sensors.progress import progress
from stream.gallery.gallery import Gallery
from stream.gallery.store import Origin

ROOT = Path(__file__).resolve().parents[1]
EMBEDDING = 128
BATCH = 64


def card(metric: str) -> dict:
    sha = "b" * 64 if metric == BODY_SHAPE else "a" * 64
    dim = EMBEDDING + SHAPE_VALUES
    return {"file": {"sha256": sha, "name": f"{metric}.onnx"}, "method": "trackcon", "embedding_dim": dim,
            "metric": metric, "f": 6}  # fmt: skip


def tracks(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(n, EMBEDDING)) / np.sqrt(EMBEDDING)
    bones = rng.uniform(0.1, 0.5, size=SHAPE_VALUES) * rng.normal(1.0, 0.05, size=(n, SHAPE_VALUES))
    return np.hstack([embeddings, bones]).astype(np.float32)


def filled(path: Path, metric: str, vectors: np.ndarray) -> Gallery:
    gallery = Gallery.create(path, card(metric))
    for row, vector in enumerate(progress(vectors, f"Enrolling ({metric})", total=len(vectors))):
        gallery.enroll(gallery.add_identity(f"p{row}"), vector[None], [Origin("bench", str(row))])
    return gallery


def measure(n: int, rounds: int, work: Path) -> dict:
    vectors = tracks(n)
    galleries = {metric: filled(work / f"{metric}-{n}.db", metric, vectors) for metric in (EUCLIDEAN, BODY_SHAPE)}
    rng = np.random.default_rng(1)
    times: dict[str, list[float]] = {metric: [] for metric in galleries}
    for _ in range(rounds):
        queries = vectors[rng.integers(0, n, BATCH)] + 0.01 * rng.normal(size=(BATCH, vectors.shape[1]))
        for metric, gallery in galleries.items():
            began = time.perf_counter()
            gallery.search_tracks_many(queries.astype(np.float32), k=5)
            times[metric].append(1000 * (time.perf_counter() - began))
    for gallery in galleries.values():
        gallery.close()
    out = {"tracks": n}
    for metric, ms in times.items():
        ms = times[metric][1:]  # the first batch fits the statistics and builds caches
        out[metric] = {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}
    out["ratio_p50"] = out[BODY_SHAPE]["p50_ms"] / out[EUCLIDEAN]["p50_ms"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, nargs="+", default=[1_000, 5_000, 20_000])
    parser.add_argument("--rounds", type=int, default=50, help="batches of 64 queries per gallery")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        results = [measure(n, args.rounds, Path(scratch)) for n in args.tracks]
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    record = {"machine": machine, "batch": BATCH, "rounds": args.rounds, "results": results}
    (ROOT / "benchmarks" / "results" / "body_shape_speed.json").write_text(json.dumps(record, indent=1) + "\n")
    lines = [
        "# What the body shape costs a decision (track index search, 64 pooled queries per batch)",
        "",
        f"`python benchmarks/body_shape_speed.py --tracks {' '.join(map(str, args.tracks))}` on {machine['cpus']} "
        "CPUs. Method in the script's docstring; ms per batch.",
        "",
        "| enrolled tracks | Euclidean p50 | Euclidean p99 | body shape p50 | body shape p99 "
        "| body shape / Euclidean (p50) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        e, b = r[EUCLIDEAN], r[BODY_SHAPE]
        lines.append(
            f"| {r['tracks']:,} | {e['p50_ms']:.1f} | {e['p99_ms']:.1f} | {b['p50_ms']:.1f} | {b['p99_ms']:.1f} | "
            f"{r['ratio_p50']:.1f} |"
        )
    (ROOT / "benchmarks" / "body_shape_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
