"""Gallery search at scale: HNSW (through gaitwatch's EmbeddingIndex) beside exact numpy search, one run.

Three kinds of 1,000,000 embeddings of the shipped model's size (D = 256), each timed on its own index:

- ``synthetic``: isotropic Gaussian clusters of ``--per-identity``; queries are fresh points around random
  centres. Every one of the 256 dimensions carries as much variance as any other: the worst case for
  a graph index, and unlike what an encoder produces.
- ``shaped``: Gaussian clusters drawn with the between-person and within-person covariances of the
  shipped model's real KGBD embeddings (``shaped_data``): synthetic, but spread over dimensions as the
  model spreads its embeddings. Needs ``--kgbd``.
- ``kgbd``: real embeddings, the shipped model run on every KGBD window (stride 1) of every walk,
  sampled at three frame phases (0, 1/3 and 2/3 of a frame, by linear interpolation in time, as
  sensors with other clocks would see the same walk) to reach the count. One walk of each person is
  held out; queries are windows of those walks, so a query never has its own walk in the gallery.
  Needs ``--kgbd`` (the dataset zip); skipped with a message where it is absent.

Measured per data set: index build time and resident memory, single-query p50 / p99 latency, batched
queries per second, recall@1 against exact search (the same embedding found) and identity agreement
(the nearest embedding's identity is the exact one's: what the gallery answers with), for several
``ef``. Writes ``benchmarks/results/gallery_scale.json`` and ``benchmarks/gallery_scale.md``.

    python benchmarks/gallery_scale.py --kgbd ../shared/datasets/kgbd/KinectGait-master.zip
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
from stream.gallery.index import HNSW_EF_CONSTRUCTION, HNSW_M, KEPT_VARIANCE, RERANK, EmbeddingIndex

ROOT = Path(__file__).resolve().parents[1]
PHASES = (0.0, 1 / 3, 2 / 3)


def rss_mb() -> float:
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def synthetic_data(n: int, per: int, dim: int, queries: int, seed: int = 0):
    """(vectors, owners, queries, query_owners): isotropic clusters of ``per`` points, ``n`` in all."""
    rng = np.random.default_rng(seed)
    identities = n // per
    centres = rng.normal(size=(identities, dim)).astype(np.float32)
    vectors = np.empty((identities * per, dim), np.float32)
    for start in range(0, identities, 10_000):
        block = centres[start : start + 10_000]
        noise = rng.normal(scale=0.35, size=(len(block) * per, dim)).astype(np.float32)
        vectors[start * per : (start + len(block)) * per] = np.repeat(block, per, axis=0) + noise
    picks = rng.integers(identities, size=queries)
    noise = rng.normal(scale=0.35, size=(queries, dim)).astype(np.float32)
    return vectors, np.repeat(np.arange(identities), per), centres[picks] + noise, picks


def kgbd_data(dataset: Path, n: int, queries: int, seed: int = 0):
    """(vectors, owners, queries, query_owners): the shipped model's embeddings of KGBD windows, see the top."""
    from engines.protocol import cut_windows
    from engines.runtime.load import open_encoder
    from sensors.formats.kgbd import KgbdDataset

    rng = np.random.default_rng(seed)
    data, encoder = KgbdDataset(dataset), open_encoder()
    walks = data.walks
    people = sorted({walk.person for walk in walks})
    held_out = {person: [w for w in walks if w.person == person] for person in people}
    held_out = {person: own[rng.integers(len(own))] for person, own in held_out.items()}
    gallery, owners, probe, probe_owners = [], [], [], []
    for walk in progress(walks, "Encoding KGBD windows", total=len(walks)):
        joints, label = data.read(walk).joints, people.index(walk.person)
        phases = (0.0,) if held_out[walk.person] is walk else PHASES
        for phase in phases:
            shifted = joints[:-1] + phase * (joints[1:] - joints[:-1]) if phase else joints
            embeddings = encoder.encode(cut_windows(shifted, encoder.f, 1))
            (probe if len(phases) == 1 else gallery).append(embeddings)
            (probe_owners if len(phases) == 1 else owners).append(np.full(len(embeddings), label))
    vectors, owners = np.concatenate(gallery), np.concatenate(owners)
    keep = np.sort(rng.choice(len(vectors), size=min(n, len(vectors)), replace=False))
    probe, probe_owners = np.concatenate(probe), np.concatenate(probe_owners)
    picks = rng.choice(len(probe), size=queries, replace=False)
    return vectors[keep], owners[keep], probe[picks], probe_owners[picks]


def model_covariances(dataset: Path) -> dict[str, np.ndarray]:
    """The shipped model's embeddings of every KGBD walk (non-overlapping windows): their mean, square roots of the
    covariance of the per-person means (``between`` people) and of the embeddings around their person's mean
    (``within`` a person), and the windows per walk."""
    from engines.protocol import cut_windows
    from engines.runtime.load import open_encoder
    from sensors.formats.kgbd import KgbdDataset

    data, encoder = KgbdDataset(dataset), open_encoder()
    people = sorted({walk.person for walk in data.walks})
    parts, labels = [], []
    for walk in progress(data.walks, "Encoding KGBD windows", total=len(data.walks)):
        embeddings = encoder.encode(cut_windows(data.read(walk).joints, encoder.f, encoder.f))
        parts.append(embeddings)
        labels.append(np.full(len(embeddings), people.index(walk.person)))
    real, label = np.concatenate(parts).astype(np.float64), np.concatenate(labels)
    means = np.stack([real[label == p].mean(0) for p in range(len(people))])
    return {
        "mean": real.mean(0),
        "between": _square_root(np.cov(means.T)),
        "within": _square_root(np.cov((real - means[label]).T)),
        "windows_per_walk": np.asarray([np.mean([len(p) for p in parts])]),
    }


def shaped_data(dataset: Path, n: int, per: int, queries: int, seed: int = 0):
    """(vectors, owners, queries, query_owners): clusters drawn with the covariances of the model's real embeddings:
    ``n / per`` centres and their members (``model_covariances``)."""
    shape = model_covariances(dataset)
    between, within = shape["between"], shape["within"]
    rng = np.random.default_rng(seed)
    identities, dim = n // per, len(shape["mean"])
    centres = shape["mean"] + rng.normal(size=(identities, dim)) @ between
    vectors = np.empty((identities * per, dim), np.float32)
    for start in range(0, identities, 2_000):
        block = centres[start : start + 2_000]
        noise = rng.normal(size=(len(block) * per, dim)) @ within
        vectors[start * per : (start + len(block)) * per] = np.repeat(block, per, axis=0) + noise
    picks = rng.integers(identities, size=queries)
    fresh = centres[picks] + rng.normal(size=(queries, dim)) @ within
    return vectors, np.repeat(np.arange(identities), per), fresh.astype(np.float32), picks


def _square_root(covariance: np.ndarray) -> np.ndarray:
    """A matrix S with S.T @ S = covariance, so that normal(size=(n, d)) @ S has that covariance."""
    values, vectors = np.linalg.eigh(covariance)
    return (vectors * np.sqrt(np.maximum(values, 0.0))).T


def latencies(fn, queries: np.ndarray) -> tuple[float, float]:
    times = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - start)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def exact_top1(vectors: np.ndarray, norms: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return np.argmin(norms[None, :] - 2 * queries @ vectors.T, axis=1)


def measure(vectors, owners, queries, efs: list[int], m: int, ef_construction: int, kept_variance: float) -> dict:
    """Exact numpy search and HNSW at each ef on one data set."""
    n, dim = vectors.shape
    ids = np.arange(1, n + 1, dtype=np.int64)
    norms = (vectors**2).sum(1)
    truth = np.concatenate([exact_top1(vectors, norms, queries[s : s + 100]) for s in range(0, len(queries), 100)])
    p50, p99 = latencies(lambda q: exact_top1(vectors, norms, q[None]), queries[:100])
    start = time.perf_counter()
    for s in range(0, len(queries), 100):
        exact_top1(vectors, norms, queries[s : s + 100])
    report: dict = {
        "n": n,
        "dim": dim,
        "exact_numpy": {
            "p50_ms": p50,
            "p99_ms": p99,
            "batched_qps": len(queries) / (time.perf_counter() - start),
            "memory_mb": vectors.nbytes / 1e6,
        },
        "hnsw": {"M": m, "ef_construction": ef_construction, "kept_variance": kept_variance, "rerank": RERANK},
    }
    print(json.dumps(report["exact_numpy"]), flush=True)
    before = rss_mb()
    index = EmbeddingIndex(dim, exact_limit=0, m=m, ef_construction=ef_construction, kept_variance=kept_variance)
    start = time.perf_counter()
    chunk = 50_000
    for s in progress(range(0, n, chunk), "Building HNSW", total=(n + chunk - 1) // chunk):
        index.add(ids[s : s + chunk], owners[s : s + chunk], vectors[s : s + chunk])
    report["hnsw"]["build_s"] = time.perf_counter() - start
    report["hnsw"]["graph_dim"] = index.projection.dim
    report["hnsw"]["memory_mb"] = rss_mb() - before
    report["hnsw"]["sweep"] = []
    for ef in efs:
        index.ef_search = ef
        found = np.array([index.search(q[None], 1)[0].ids[0] for q in queries]) - 1
        p50, p99 = latencies(lambda q: index.search(q[None], 1), queries)
        start = time.perf_counter()
        for s in range(0, len(queries), 100):
            index.search(queries[s : s + 100], 1)
        row = {
            "ef": ef,
            "recall_at_1": float(np.mean(found == truth)),
            "identity_agreement": float(np.mean(owners[found] == owners[truth])),
            "p50_ms": p50,
            "p99_ms": p99,
            "batched_qps": len(queries) / (time.perf_counter() - start),
        }
        report["hnsw"]["sweep"].append(row)
        print(json.dumps(row), flush=True)
    return report


def table(name: str, report: dict, description: str) -> list[str]:
    e, h = report["exact_numpy"], report["hnsw"]
    return [
        f"## {name}: {report['n']:,} embeddings",
        "",
        description,
        f"HNSW (M = {h['M']}, ef_construction = {h['ef_construction']}) over {_graph(h, report)}: built in "
        f"{h['build_s']:.0f} s, {h['memory_mb']:.0f} MB resident"
        f"{' (graph and full vectors)' if 'graph_dim' in h else ''}. "
        "Exact: numpy, squared distances by one matrix product.",
        "",
        "| search | ef | recall@1 vs exact | same identity as exact | single query p50 ms | p99 ms "
        "| batched queries/s (batches of 100) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| exact numpy | | 1.000 | 1.000 | {e['p50_ms']:.2f} | {e['p99_ms']:.2f} | {e['batched_qps']:,.0f} |",
        *(
            f"| HNSW | {r['ef']} | {r['recall_at_1']:.3f} | {r['identity_agreement']:.3f} | {r['p50_ms']:.3f} | "
            f"{r['p99_ms']:.3f} | {r['batched_qps']:,.0f} |"
            for r in h["sweep"]
        ),
        "",
    ]


def _graph(h: dict, report: dict) -> str:
    dim = h.get("graph_dim")
    if dim is None:
        return (
            "the full vectors (measured before the graph was reduced, and before a per-query conversion of every "
            "id was removed from the search: it cost 0.2 ms per query at 200,000 embeddings, growing with n)"
        )
    if dim >= report.get("dim", 256):
        return f"the full vectors (their {h.get('kept_variance', KEPT_VARIANCE):.0%} of variance needs every dimension)"
    return (
        f"the first {dim} principal components ({h['kept_variance']:.0%} of the variance), "
        f"its {h['rerank']} best candidates re-ranked on the full vectors"
    )


DESCRIPTIONS = {
    "synthetic": "Isotropic Gaussian clusters ({per} per identity; queries: fresh points around random centres): "
    "every dimension as informative as any other, the worst case for a graph index.",
    "shaped": "Gaussian clusters ({per} per identity) drawn with the covariances of the shipped model's real "
    "embeddings (between people: of the per-person means; within a person: around that mean; estimated "
    "from every KGBD walk cut in non-overlapping windows): independent draws, so no near-copies, and the "
    "variance spread over dimensions as the model spreads it. Queries: fresh points around random centres.",
    "kgbd": "The shipped model's embeddings of every KGBD window (stride 1) at frame phases 0, 1/3, 2/3; "
    "queries are windows of one held-out walk per person. 90% of their variance lies in 30 of the 256 "
    "dimensions, as is typical of learned embeddings. But KGBD has only 164 people: reaching a million "
    "takes every window at stride 1 at three phases, so each embedding has several near-copies (its "
    "neighbours in time and in phase). HNSW's neighbour lists fill with near-copies and the graph "
    "navigates badly (recall rises only slowly with ef), which a gallery enrolled at stride f (the default, "
    "non-overlapping windows) does not have; at 200,000 of these embeddings (fewer near-copies) HNSW "
    "reached recall 0.99 at ef 128 in 0.44 ms. Read this table as a warning against enrolling "
    "overlapping windows, not as the search quality of a real million-person-window gallery.",
}


def _command(args: argparse.Namespace, name: str) -> str:
    command = f"python benchmarks/gallery_scale.py --data {name}" + ("" if name == "synthetic" else " --kgbd KGBD.zip")
    defaults = {"n": 1_000_000, "m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "kept_variance": KEPT_VARIANCE}
    changed = {k: getattr(args, k) for k, v in defaults.items() if getattr(args, k) != v}
    return command + "".join(f" --{k.replace('_', '-')} {v}" for k, v in changed.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--per-identity", type=int, default=50, help="synthetic cluster size")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--ef", type=int, nargs="+", default=[32, 64, 128, 192, 256])
    parser.add_argument("--m", type=int, default=HNSW_M)
    parser.add_argument("--ef-construction", type=int, default=HNSW_EF_CONSTRUCTION)
    parser.add_argument(
        "--kept-variance", type=float, default=KEPT_VARIANCE, help="graph over the components keeping this variance"
    )
    parser.add_argument(
        "--data", nargs="+", choices=list(DESCRIPTIONS), default=list(DESCRIPTIONS), help="data sets to measure"
    )
    parser.add_argument("--update", action="store_true", help="keep --out's other data sets, measure only --data")
    parser.add_argument("--kgbd", type=Path, help="KGBD zip, for the real embeddings")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gallery_scale.json")
    parser.add_argument("--table", type=Path, default=ROOT / "benchmarks" / "gallery_scale.md")
    parser.add_argument("--table-only", action="store_true", help="rewrite the table from --out's JSON only")
    args = parser.parse_args()
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "queries": args.queries}
    if args.table_only or args.update:
        results = json.loads(args.out.read_text())
    for name in [] if args.table_only else args.data:
        if name != "synthetic" and (args.kgbd is None or not args.kgbd.exists()):
            print(f"skipping {name}: KGBD not found ({args.kgbd}); pass --kgbd KinectGait-master.zip")
            continue
        if name == "synthetic":
            data = synthetic_data(args.n, args.per_identity, args.dim, args.queries)
        elif name == "shaped":
            data = shaped_data(args.kgbd, args.n, args.per_identity, args.queries)
        else:
            data = kgbd_data(args.kgbd, args.n, args.queries)
        vectors, owners, queries, _ = data
        results[name] = measure(vectors, owners, queries, args.ef, args.m, args.ef_construction, args.kept_variance)
        results[name]["command"] = _command(args, name)
        del data, vectors
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    names = [name for name in DESCRIPTIONS if name in results]
    met = [
        name
        for name in names
        if any(r["recall_at_1"] >= 0.99 and r["p50_ms"] < 1.0 for r in results[name]["hnsw"]["sweep"])
    ]
    verdict = ", ".join(f"{name}: {'met' if name in met else 'not met'}" for name in names)
    lines = [
        "# Gallery search at scale (D = 256)",
        "",
        f"`python benchmarks/gallery_scale.py --kgbd KinectGait-master.zip` on {os.cpu_count()} CPUs (each data set's "
        f"own command below); {results['queries']} queries, top-1, one index per data set, HNSW through "
        "`stream.gallery.index.EmbeddingIndex`. Build times were measured while other work shared the 2 CPUs.",
        "",
        "This is the index of every embedding (`Gallery.search`), measured on its own. The live node decides on "
        "the index of enrolled track means instead, measured on its path in "
        "[decision_scale.md](decision_scale.md).",
        "",
        f"Target (issue 5), p50 under 1 ms with recall@1 at least 0.99 at 1,000,000 embeddings: {verdict}.",
        "",
    ]
    for name in names:
        lines.append(f"`{results[name].get('command', _command(args, name))}`")
        lines.append("")
        lines += table(name, results[name], DESCRIPTIONS[name].format(per=args.per_identity))
    args.table.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
