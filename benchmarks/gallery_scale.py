"""Gallery search at scale: HNSW (through gaitwatch's EmbeddingIndex) beside exact numpy search, one run.

Synthetic clustered embeddings of the shipped model's size (D = 256): ``--identities`` centres, each
with ``--per-identity`` embeddings around it; queries are fresh points around random centres.
Measured: index build time and resident memory, single-query p50 / p99 latency, batched queries per
second, and recall@1 of HNSW against exact search, for several ``ef`` values. Writes
``benchmarks/results/gallery_scale.json`` and ``benchmarks/gallery_scale.md``.

    python benchmarks/gallery_scale.py                # 1,000,000 embeddings
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from sensors.progress import progress
from stream.gallery.index import HNSW_EF_CONSTRUCTION, HNSW_M, EmbeddingIndex

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def make_data(identities: int, per: int, dim: int, queries: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(identities, dim)).astype(np.float32)
    vectors = np.empty((identities * per, dim), np.float32)
    for start in range(0, identities, 10_000):
        block = centres[start : start + 10_000]
        noise = rng.normal(scale=0.35, size=(len(block) * per, dim)).astype(np.float32)
        vectors[start * per : (start + len(block)) * per] = np.repeat(block, per, axis=0) + noise
    picks = rng.integers(identities, size=queries)
    return (
        vectors,
        np.repeat(np.arange(identities), per),
        centres[picks] + rng.normal(scale=0.35, size=(queries, dim)).astype(np.float32),
    )


def latencies(fn, queries: np.ndarray) -> tuple[float, float]:
    times = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - start)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def exact_top1(vectors: np.ndarray, norms: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return np.argmin(norms[None, :] - 2 * queries @ vectors.T, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=20_000)
    parser.add_argument("--per-identity", type=int, default=50)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--ef", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gallery_scale.json")
    args = parser.parse_args()
    vectors, owners, queries = make_data(args.identities, args.per_identity, args.dim, args.queries)
    n = len(vectors)
    ids = np.arange(1, n + 1, dtype=np.int64)
    report: dict = {
        "n": n,
        "dim": args.dim,
        "queries": args.queries,
        "hnsw": {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }

    norms = (vectors**2).sum(1)
    truth = np.concatenate([exact_top1(vectors, norms, queries[s : s + 100]) for s in range(0, len(queries), 100)])
    p50, p99 = latencies(lambda q: exact_top1(vectors, norms, q[None]), queries[:100])
    start = time.perf_counter()
    for s in range(0, len(queries), 100):
        exact_top1(vectors, norms, queries[s : s + 100])
    report["exact_numpy"] = {
        "p50_ms": p50,
        "p99_ms": p99,
        "batched_qps": len(queries) / (time.perf_counter() - start),
        "memory_mb": vectors.nbytes / 1e6,
    }
    print(json.dumps(report["exact_numpy"]), flush=True)

    before = rss_mb()
    index = EmbeddingIndex(args.dim, exact_limit=0)
    start = time.perf_counter()
    chunk = 50_000
    for s in progress(range(0, n, chunk), "Building HNSW", total=(n + chunk - 1) // chunk):
        index.add(ids[s : s + chunk], owners[s : s + chunk], vectors[s : s + chunk])
    report["hnsw"]["build_s"] = time.perf_counter() - start
    report["hnsw"]["memory_mb"] = rss_mb() - before
    report["hnsw"]["sweep"] = []
    for ef in args.ef:
        index.ef_search = ef
        found = np.array([index.search(q[None], 1)[0].ids[0] for q in queries]) - 1
        p50, p99 = latencies(lambda q: index.search(q[None], 1), queries)
        start = time.perf_counter()
        for s in range(0, len(queries), 100):
            index.search(queries[s : s + 100], 1)
        row = {
            "ef": ef,
            "recall_at_1": float(np.mean(found == truth)),
            "p50_ms": p50,
            "p99_ms": p99,
            "batched_qps": len(queries) / (time.perf_counter() - start),
        }
        report["hnsw"]["sweep"].append(row)
        print(json.dumps(row), flush=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    e = report["exact_numpy"]
    lines = [
        f"# Gallery search at {n:,} embeddings (D = {args.dim})",
        "",
        f"`python benchmarks/gallery_scale.py --identities {args.identities} --per-identity {args.per_identity}`"
        f" on {os.cpu_count()} CPUs; synthetic clustered embeddings, {args.queries} queries, top-1.",
        f"HNSW (hnswlib through `stream.gallery.index.EmbeddingIndex`, M = {HNSW_M}, ef_construction = "
        f"{HNSW_EF_CONSTRUCTION}): built in {report['hnsw']['build_s']:.0f} s, {report['hnsw']['memory_mb']:.0f} MB "
        "resident. Exact: numpy, squared distances by one matrix product.",
        "",
        "| search | ef | recall@1 vs exact | single query p50 ms | p99 ms | batched queries/s (batches of 100) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| exact numpy | | 1.000 | {e['p50_ms']:.2f} | {e['p99_ms']:.2f} | {e['batched_qps']:,.0f} |",
        *(
            f"| HNSW | {r['ef']} | {r['recall_at_1']:.3f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
            f"{r['batched_qps']:,.0f} |"
            for r in report["hnsw"]["sweep"]
        ),
    ]
    (ROOT / "benchmarks" / "gallery_scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
