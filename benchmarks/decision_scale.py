"""The node's decisions at scale: a real gallery of N enrolled tracks, searched as the node's encoding thread does.

Per N (10,000, 100,000, 1,000,000 enrolled tracks, D = 256), a gallery file is filled, opened once and closed
(which builds the index of track means, exact up to 5,000 tracks, HNSW above, and saves it); then, in a fresh
process as a node would start:

- cold open: ``Gallery.open`` + ``TrackMatcher`` until the first decision can be taken, and the process's
  resident memory it added (the saved index files are in the page cache: the time is the node's, not the disk's);
- decision latency: ``TrackMatcher.observe_many`` on batches like the node's (64 live tracks, a window of each per
  call, pooled from their 3rd window on; and single windows, an idle node), p50 / p99 per call;
- recall@1 against exact: the decision's identity is the owner of the nearest track mean by brute force (float64
  re-ranking of a float32 scan), for 2,000 of the decisions; and how often all 5 candidates are exact's 5;
- enroll: ``Gallery.enroll`` of an anonymous track (30 windows: the SQLite commit and the index refresh), as
  ``--enroll-after`` does mid-run; after it, an open of the gallery by another process, which reconciles the saved
  index with the store ("caught up"), and its close (saving it).

Embeddings are 'shaped' (``gallery_scale.model_covariances``): identity centres drawn with the between-person
covariance of the shipped model's real KGBD embeddings, windows around them with the within-person covariance. An
enrolled track is the mean of ``--pooled`` windows (KGBD's mean walk length in windows), stored as 2 windows
whose mean it is (m +- d, d a window's deviation), so that a million tracks fit on disk (2.2 GB); live tracks are
windows of enrolled people (70%) or strangers (30%). The gallery is filled in bulk through SQLite (one
transaction, no fsync), not through ``enroll``: a million fsynced transactions would take hours and measure the disk.

    python benchmarks/decision_scale.py --kgbd ../shared/datasets/kgbd/KinectGait-master.zip --tracks 10000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from gallery_scale import model_covariances, rss_mb

from stream.gallery.gallery import Gallery
from stream.gallery.store import Origin
from stream.matcher import TrackMatcher

ROOT = Path(__file__).resolve().parents[1]
TRACKS_PER_IDENTITY = 4
LIVE_TRACKS = 64  # the node's --max-batch: one window of each in a batch
LIVE_WINDOWS = 30
TRUTH_SAMPLE = 2_000
CARD = {  # the shipped model's shape; the gallery is bound to a stand-in sha (no encoder runs here)
    "file": {"sha256": "decision-scale-benchmark", "name": "shaped.onnx"},
    "method": "simmc",
    "embedding_dim": 256,
    "metric": "euclidean",
    "f": 6,
}


def shape(kgbd: Path, cache: Path) -> dict[str, np.ndarray]:
    if not cache.exists():
        np.savez(cache, **model_covariances(kgbd))
    return dict(np.load(cache))


def fill(path: Path, tracks: int, covariances: dict, pooled: float, seed: int = 0) -> float:
    """A gallery of ``tracks`` enrolled tracks (``TRACKS_PER_IDENTITY`` a person), written in bulk; returns seconds."""
    began = time.perf_counter()
    Gallery.create(path, CARD).close()
    rng = np.random.default_rng(seed)
    dim, between, within = len(covariances["mean"]), covariances["between"], covariances["within"]
    identities = tracks // TRACKS_PER_IDENTITY
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO identities (id, name, attributes, created, anonymous) VALUES (?, ?, '{}', 0, 0)",
        ((i + 1, f"person {i}") for i in range(identities)),
    )
    for start in range(0, identities, 5_000):
        block = min(5_000, identities - start)
        centres = covariances["mean"] + rng.normal(size=(block, dim)) @ between
        means = np.repeat(centres, TRACKS_PER_IDENTITY, axis=0)
        means += rng.normal(size=means.shape) @ within / np.sqrt(pooled)
        deviation = rng.normal(size=means.shape) @ within
        windows = np.stack([means + deviation, means - deviation], axis=1).astype(np.float32)  # [T, 2, D]
        owners = np.repeat(np.arange(start, start + block) + 1, TRACKS_PER_IDENTITY)
        db.executemany(
            "INSERT INTO embeddings (identity, vector, source, track, created) VALUES (?, ?, 'bench', ?, 0)",
            (
                (int(owners[t]), windows[t, w].tobytes(), str(start * TRACKS_PER_IDENTITY + t))
                for t in range(len(windows))
                for w in range(2)
            ),
        )
        np.save(path.with_name(f"{path.name}.centres-{start}.npy"), centres.astype(np.float32))
    db.execute("UPDATE meta SET value = '1' WHERE key = 'generation'")
    db.execute("COMMIT")
    db.close()
    return time.perf_counter() - began


def build(path: Path, exact_limit: int | None) -> dict:
    """The first open (the index of track means read from every embedding and built) and its close (saved)."""
    began = time.perf_counter()
    gallery = Gallery.open(path, exact_limit=exact_limit)
    opened = time.perf_counter() - began
    index = gallery.tracks.index
    report = {
        "open_s": opened,
        "source": gallery.tracks.source,
        "index": "hnsw" if index.hnsw is not None else "exact",
        "graph_dim": index.projection.dim if index.projection is not None else None,
    }
    began = time.perf_counter()
    gallery.close()
    report["save_s"] = time.perf_counter() - began
    return report


def centres_of(path: Path) -> np.ndarray:
    parts = sorted(path.parent.glob(f"{path.name}.centres-*.npy"), key=lambda p: int(p.name.split("-")[-1][:-4]))
    return np.concatenate([np.load(p) for p in parts])


def live_windows(centres: np.ndarray, covariances: dict, rng) -> np.ndarray:
    """[LIVE_TRACKS, LIVE_WINDOWS, D] windows: of enrolled people (70%) and of strangers."""
    dim = centres.shape[1]
    known = rng.random(LIVE_TRACKS) < 0.7
    who = np.where(known[:, None], centres[rng.integers(len(centres), size=LIVE_TRACKS)], 0.0)
    strangers = covariances["mean"] + rng.normal(size=(LIVE_TRACKS, dim)) @ covariances["between"]
    who = np.where(known[:, None], who, strangers)
    noise = rng.normal(size=(LIVE_TRACKS * LIVE_WINDOWS, dim)) @ covariances["within"]
    return (who[:, None, :] + noise.reshape(LIVE_TRACKS, LIVE_WINDOWS, dim)).astype(np.float32)


def measure(path: Path, covariances: dict, rounds: int, exact_limit: int | None, seed: int = 1) -> dict:
    """In a fresh process: cold open, decision latency, recall against exact, enrollment."""
    rng = np.random.default_rng(seed)
    centres = centres_of(path)
    before = rss_mb()
    began = time.perf_counter()
    gallery = Gallery.open(path, CARD, exact_limit=exact_limit)
    matcher = TrackMatcher(gallery, threshold=float("inf"))
    report: dict = {"open": {"s": time.perf_counter() - began, "source": gallery.tracks.source}}
    report["open"]["rss_mb"] = rss_mb() - before
    batch_ms, pooled, answers = [], [], []
    for round_ in range(rounds):
        windows = live_windows(centres, covariances, rng)
        names = [f"{round_}/{t}" for t in range(LIVE_TRACKS)]
        totals = np.zeros((LIVE_TRACKS, windows.shape[2]), np.float64)
        for w in range(LIVE_WINDOWS):
            start = time.perf_counter()
            decisions = matcher.observe_many(names, windows[:, w])
            elapsed = (time.perf_counter() - start) * 1e3
            totals += windows[:, w]
            if w >= 2:  # from the 3rd window (--min-windows) on, a batch decides
                batch_ms.append(elapsed)
                pooled.append((totals / (w + 1)).astype(np.float32))
                answers += [[m.identity for m in d.candidates] for d in decisions]
        for name in names:
            matcher.end(name)
    single_ms = []
    windows = live_windows(centres, covariances, rng)
    for w in range(LIVE_WINDOWS):
        for t in range(LIVE_TRACKS // 4):
            start = time.perf_counter()
            matcher.observe_many([f"single/{t}"], windows[t, w][None])
            if w >= 2:
                single_ms.append((time.perf_counter() - start) * 1e3)
    report["batch"] = _percentiles(batch_ms) | {"size": LIVE_TRACKS, "calls": len(batch_ms)}
    report["single"] = _percentiles(single_ms) | {"calls": len(single_ms)}
    pick = rng.choice(len(answers), size=min(TRUTH_SAMPLE, len(answers)), replace=False)
    truth = exact_answers(gallery, np.concatenate(pooled)[pick])
    got = [answers[i] for i in pick]
    report["recall_at_1"] = float(np.mean([g[0] == t[0] for g, t in zip(got, truth, strict=True)]))
    report["top5_equal"] = float(np.mean([g == t for g, t in zip(got, truth, strict=True) if len(t) == 5]))
    report["enroll"] = enroll_times(gallery, covariances, rng)
    gallery.store.close()  # no save: as a node killed mid-run, or one still running while another opens
    return report


def exact_answers(gallery: Gallery, queries: np.ndarray, candidates: int = 64) -> list[list[int]]:
    """Brute force: each query's 5 nearest identities by their nearest track mean (float32 scan, float64 re-rank)."""
    index = gallery.tracks.index
    vectors, owners = index.vectors, index.owners
    norms = np.einsum("nd,nd->n", vectors, vectors)
    out = []
    for start in range(0, len(queries), 64):
        block = queries[start : start + 64]
        scores = norms[None, :] - 2 * block @ vectors.T
        near = np.argpartition(scores, candidates, axis=1)[:, :candidates]
        for query, rows in zip(block, near, strict=True):
            distances = ((vectors[rows].astype(np.float64) - query) ** 2).sum(1)
            ranked = owners[rows[np.argsort(distances, kind="stable")]]
            out.append(list(dict.fromkeys(ranked.tolist()))[:5])
    return out


def enroll_times(gallery: Gallery, covariances: dict, rng, count: int = 20) -> dict:
    times = []
    for i in range(count):
        centre = covariances["mean"] + rng.normal(size=len(covariances["mean"])) @ covariances["between"]
        windows = centre + rng.normal(size=(30, len(centre))) @ covariances["within"]
        start = time.perf_counter()
        identity = gallery.add_identity(f"anonymous-bench-{i}", anonymous=True)
        gallery.enroll(identity, windows.astype(np.float32), [Origin("bench-live", str(i))] * 30)
        times.append((time.perf_counter() - start) * 1e3)
    return _percentiles(times) | {"max_ms": float(np.max(times)), "windows": 30}


def reopen(path: Path, exact_limit: int | None) -> dict:
    """Another process opens the gallery after the enrollments above (its saved index one generation behind)."""
    began = time.perf_counter()
    gallery = Gallery.open(path, CARD, exact_limit=exact_limit)
    report = {"s": time.perf_counter() - began, "source": gallery.tracks.source}
    began = time.perf_counter()
    gallery.close()
    report["close_s"] = time.perf_counter() - began
    return report


def _percentiles(ms: list[float]) -> dict:
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def child(step: str, path: Path, args: argparse.Namespace, cache: Path) -> dict:
    """Run one step in a fresh process (as a node starts), returning its report."""
    command = [sys.executable, __file__, "--child", step, str(path), "--cache", str(cache)]
    command += ["--rounds", str(args.rounds)]
    if args.exact_limit is not None:
        command += ["--exact-limit", str(args.exact_limit)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: dict) -> str:
    lines = [
        "# The node's decisions at scale (D = 256)",
        "",
        f"`{results['command']}` on {results['machine']['cpus']} CPUs (Python {results['machine']['python']}), "
        "other work sharing them. What the node does per batch: `TrackMatcher.observe_many` on a gallery of N "
        "enrolled tracks, searching their means (`Gallery.search_tracks_many`: exact up to 5,000 tracks, "
        "HNSW over the PCA-reduced means with exact re-ranking above). Embeddings 'shaped' like the shipped "
        f"model's (see the script): {TRACKS_PER_IDENTITY} tracks a person, each the mean of "
        f"{results['pooled']:.0f} windows; live tracks 70% enrolled people, 30% strangers. Open: a fresh process "
        "until the first decision can be taken, saved index in the page cache; memory: resident memory the open "
        "added. Recall: the decision's identity is exact search's, over 2,000 decisions.",
        "",
        "| enrolled tracks | index | first open and close (build, save) s | cold open s | memory MB "
        "| batch of 64 p50 / p99 ms | single window p50 / p99 ms | recall@1 vs exact | top-5 = exact's "
        "| enroll p50 / max ms | open after another process enrolled s |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n in sorted(results["runs"], key=int):
        r = results["runs"][n]
        if "measure" not in r:
            lines.append(f"| {int(n):,} | not measured: {r.get('note', 'did not finish')} |" + " |" * 9)
            continue
        b, m, o = r["build"], r["measure"], r["reopen"]
        index = b["index"] + (f" ({b['graph_dim']}-D graph)" if b["graph_dim"] else "")
        lines.append(
            f"| {int(n):,} | {index} | {b['open_s'] + b['save_s']:.1f} | {m['open']['s']:.2f} | "
            f"{m['open']['rss_mb']:,.0f} | {m['batch']['p50_ms']:.2f} / {m['batch']['p99_ms']:.2f} | "
            f"{m['single']['p50_ms']:.3f} / {m['single']['p99_ms']:.3f} | {m['recall_at_1']:.3f} | "
            f"{m['top5_equal']:.3f} | {m['enroll']['p50_ms']:.0f} / {m['enroll']['max_ms']:.0f} | "
            f"{o['s']:.1f} ({o['source']}) |"
        )
    lines += [
        "",
        "First open and close: the index read from every embedding, built and saved (once per gallery: a built "
        "graph is saved at once). Cold open: the saved index taken as it is (nobody wrote since it was saved), "
        "reading no embedding; most of it is reading the means (1 KB a track), the graph and the identities. "
        "Enroll: a new anonymous identity with a track of 30 windows, as `--enroll-after` makes one: the fsynced "
        "SQLite commit, its tracks read back and added to the index; 20 of them, the max including building the "
        "graph where they take the gallery past the exact limit (5,000). Open after another process enrolled: "
        "that process did not save (killed, or still running), so the saved index is behind the store and is "
        "reconciled with it (one query over every embedding row's id, identity and track, no vectors; the new "
        "tracks read), then saved on close.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--kgbd", type=Path, help="KGBD zip: the model's real covariances")
    parser.add_argument("--rounds", type=int, default=8, help="groups of 64 live tracks of 30 windows each")
    parser.add_argument("--exact-limit", type=int, help="exact search up to this many tracks (default: the gallery's)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gaitwatch-decision-scale"), help="galleries here")
    parser.add_argument("--cache", type=Path, help="covariances file (default: in --work)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "decision_scale.json")
    parser.add_argument("--table", type=Path, default=ROOT / "benchmarks" / "decision_scale.md")
    parser.add_argument("--table-only", action="store_true", help="rewrite the table from --out's JSON only")
    parser.add_argument("--child", nargs=2, metavar=("STEP", "GALLERY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    cache = args.cache or args.work / "covariances.npz"
    if args.child:
        step, path = args.child[0], Path(args.child[1])
        if step == "measure":
            report = measure(path, dict(np.load(cache)), args.rounds, args.exact_limit)
        else:
            report = reopen(path, args.exact_limit)
        print(json.dumps(report))
        return
    results = json.loads(args.out.read_text()) if args.out.exists() else {"runs": {}}
    if not args.table_only:
        if args.kgbd is None or not args.kgbd.exists():
            sys.exit(f"KGBD not found ({args.kgbd}); pass --kgbd KinectGait-master.zip")
        args.work.mkdir(parents=True, exist_ok=True)
        covariances = shape(args.kgbd, cache)
        pooled = float(covariances["windows_per_walk"][0])
        results |= {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "pooled": pooled,
            "command": "python benchmarks/decision_scale.py --kgbd KinectGait-master.zip --tracks "
            + " ".join(str(n) for n in sorted({*map(int, results["runs"]), *args.tracks})),
        }
        for n in args.tracks:
            path = args.work / f"tracks-{n}.db"
            for old in args.work.glob(f"tracks-{n}.db*"):
                old.unlink()
            run: dict = {"fill_s": fill(path, n, covariances, pooled)}
            print(f"{n:,} tracks: filled in {run['fill_s']:.0f} s", flush=True)
            run["build"] = build(path, args.exact_limit)
            print(f"  first open {run['build']}", flush=True)
            run["measure"] = child("measure", path, args, cache)
            print(f"  measured {run['measure']}", flush=True)
            run["reopen"] = child("reopen", path, args, cache)
            print(f"  reopened {run['reopen']}", flush=True)
            results["runs"][str(n)] = run
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1) + "\n")
    args.table.write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
