"""The shared gallery on PostgreSQL at site scale: node start, decision latency, and how soon an enrollment on one
node is matched on the others.

- **Start at 100,000 identities** (one enrolled track each, the mean of 2 stored windows, D = 128, the shipped
  model's): in a fresh process, ``Gallery.open(URL, background=True)`` as a node opens it and the replica
  follower caught up, until the first decision can be taken; and until the HNSW graph is ready (on a first
  start on a machine, no saved index, it is built in a thread while decisions search exactly; later starts
  load the graph saved in the node's replica folder, reconciled with the database by label and count). Beside
  it the same gallery as a SQLite file, opened the same way.
- **Decision latency**: ``Gallery.search_tracks_many`` on batches of 64 pooled queries (the node's --max-batch),
  p50 / p99, against the PostgreSQL-opened replica and the SQLite-opened gallery of the same tracks.
- **Enrollment visible elsewhere**: one process enrolls anonymous tracks (30 windows each, as ``--enroll-after``
  does) at 5 a second; three other processes, each a node with its replica follower, time when each one becomes
  the nearest match of its own mean; latency = seen - enroll returned (one machine, one clock).

The 100,000 identities are written in bulk (COPY, one transaction), not through ``enroll``: 100,000 fsynced
transactions would measure the disk. Vectors: unit-length identity centres with windows around them.
A throw-away PostgreSQL server is started as the tests start one (``tests/postgres.py``).

    python benchmarks/site_gallery.py --identities 100000 --out benchmarks/results/site_gallery.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stream.gallery.gallery import Gallery  # noqa: E402
from stream.gallery.store import Origin  # noqa: E402

DIM = 128
BATCH = 64
CARD = {
    "file": {"sha256": "site-gallery-benchmark", "name": "shaped.onnx"},
    "method": "trackcon",
    "embedding_dim": DIM,
    "metric": "euclidean",
    "f": 6,
}


def centres(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(n, DIM)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def fill_postgres(url: str, n: int) -> float:
    """n identities, one track of 2 windows each (m +- d), in one COPY transaction; seconds taken."""
    import psycopg

    Gallery.create(url, CARD).close()
    means = centres(n)
    deviation = np.random.default_rng(1).normal(scale=0.05, size=means.shape).astype(np.float32)
    start = time.perf_counter()
    now = time.time()
    with psycopg.connect(url) as db, db.transaction():
        with db.cursor().copy("COPY identities (id, name, attributes, created, anonymous) FROM STDIN") as copy:
            for i in range(n):
                copy.write_row((i + 1, f"person-{i + 1}", "{}", now, False))
        with db.cursor().copy(
            "COPY embeddings (id, identity, vector, source, track, created) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "int8", "bytea", "text", "text", "float8"])
            for i in range(n):
                for k, sign in enumerate((1, -1)):
                    vector = (means[i] + sign * deviation[i]).tobytes()
                    copy.write_row((2 * i + k + 1, i + 1, vector, "bulk", "1", now))
        with db.cursor().copy(
            "COPY tracks (identity, source, track, label, count, total) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "text", "text", "int8", "int8", "bytea"])
            for i in range(n):
                copy.write_row((i + 1, "bulk", "1", 2 * i + 2, 2, (2 * means[i].astype(np.float64)).tobytes()))
        db.execute("SELECT setval('identities_id_seq', %s), setval('embeddings_id_seq', %s)", (n, 2 * n))
        db.execute("UPDATE meta SET value = '1' WHERE key = 'generation'")
    return time.perf_counter() - start


def fill_sqlite(path: Path, n: int) -> None:
    Gallery.create(path, CARD).close()
    means = centres(n)
    deviation = np.random.default_rng(1).normal(scale=0.05, size=means.shape).astype(np.float32)
    db = sqlite3.connect(path)
    now = time.time()
    with db:
        db.executemany(
            "INSERT INTO identities (id, name, attributes, created, anonymous) VALUES (?, ?, '{}', ?, 0)",
            ((i + 1, f"person-{i + 1}", now) for i in range(n)),
        )
        db.executemany(
            "INSERT INTO embeddings (identity, vector, source, track, created) VALUES (?, ?, 'bulk', '1', ?)",
            ((i + 1, (means[i] + s * deviation[i]).tobytes(), now) for i in range(n) for s in (1, -1)),
        )
        db.execute("UPDATE meta SET value = '1' WHERE key = 'generation'")
    db.close()


def worker_start(location: str) -> dict:
    """In a fresh process: open as a node does (with the follower for PostgreSQL), then time decisions."""
    from stream.gallery.postgres import is_url

    start = time.perf_counter()
    gallery = Gallery.open(location, CARD, background=True)  # as a node opens it
    follower = None
    if is_url(location):
        from stream.gallery.follow import Follower

        follower = Follower(gallery).start()
        assert follower.wait_connected(120)
    opened = time.perf_counter() - start
    builder = gallery.tracks.index.building
    rng = np.random.default_rng(7)
    means = centres(len(gallery.tracks))

    def decide(batches: int) -> tuple[list[float], int]:
        latencies, right = [], 0
        for _ in range(batches):
            who = rng.integers(len(means), size=BATCH)
            queries = means[who] + rng.normal(scale=0.05, size=(BATCH, DIM)).astype(np.float32)
            t0 = time.perf_counter()
            found = gallery.search_tracks_many(queries, k=5)
            latencies.append((time.perf_counter() - t0) * 1000)
            right += sum(row[0].identity == w + 1 for row, w in zip(found, who, strict=True))
        return latencies, right

    meanwhile: list[float] = []
    graph_ready = opened
    if builder is not None:  # decisions while the graph builds are exact (and share the CPUs with the build)
        meanwhile = decide(20)[0]
        builder.join()
        graph_ready = time.perf_counter() - start
    latencies, right = decide(200)
    if follower is not None:
        follower.stop()
    source = gallery.tracks.source
    gallery.close()
    return {
        "start_s": round(opened, 2),
        "graph_ready_s": round(graph_ready, 2),
        "index": source,
        "tracks": len(means),
        "while_building_p50_ms": round(float(np.percentile(meanwhile, 50)), 1) if meanwhile else None,
        "while_building_p99_ms": round(float(np.percentile(meanwhile, 99)), 1) if meanwhile else None,
        "batch64_p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "batch64_p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "top1": round(right / (200 * BATCH), 4),
    }


def enrollment_vectors(count: int) -> np.ndarray:
    return centres(count, seed=99)  # new people drawn like the others (an outlier is what HNSW finds worst)


def worker_watch(url: str, count: int, out: Path) -> None:
    """A node's replica: the time each enrolled track became its own nearest match."""
    from stream.gallery.follow import Follower

    gallery = Gallery.open(url, CARD)
    follower = Follower(gallery).start()
    assert follower.wait_connected(120)
    out.with_suffix(".ready").write_text("ready")
    vectors, seen = enrollment_vectors(count), []
    for number, vector in enumerate(vectors):
        give_up = time.monotonic() + 60
        while True:
            found = gallery.search_tracks(vector, k=1)
            if found and found[0].distance < 1e-3:
                seen.append(time.time())
                break
            if time.monotonic() > give_up:  # never seen: counted as such, not waited for forever
                print(
                    f"watcher: enrollment {number} not seen in 60 s ({found}, {follower.applied} applied, "
                    f"{follower.catch_ups} catch-ups, generation {follower.generation})",
                    file=sys.stderr,
                )
                seen.append(float("nan"))
                break
            time.sleep(0.001)
    follower.stop()
    out.write_text(json.dumps(seen))


def enrollment_visibility(url: str, count: int, folder: Path) -> dict:
    watchers = []
    for number in range(3):
        out = folder / f"watch{number}.json"
        command = [sys.executable, __file__, "_watch", url, str(count), str(out)]
        watchers.append((subprocess.Popen(command), out))
    while not all(out.with_suffix(".ready").exists() for _, out in watchers):
        time.sleep(0.1)
    gallery = Gallery.open(url, CARD)
    committed = []
    rng = np.random.default_rng(3)
    for vector in enrollment_vectors(count):
        windows = vector + rng.normal(scale=0.01, size=(30, DIM)).astype(np.float32)
        windows += vector - windows.mean(axis=0)  # their mean is exactly the vector watched for
        identity = gallery.add_anonymous()
        gallery.enroll(identity, windows, [Origin("bench", f"t{identity}")] * 30)
        committed.append(time.time())
        time.sleep(0.2)
    gallery.close()
    delays = []
    for proc, out in watchers:
        proc.wait()
        delays += [(s - c) * 1000 for s, c in zip(json.loads(out.read_text()), committed, strict=True)]
    missed = int(np.isnan(delays).sum())
    delays = [d for d in delays if d == d]
    return {
        "not_seen": missed,
        "enrollments": count,
        "watching_nodes": 3,
        "visible_p50_ms": round(float(np.percentile(delays, 50)), 1),
        "visible_p99_ms": round(float(np.percentile(delays, 99)), 1),
        "visible_max_ms": round(float(np.max(delays)), 1),
    }


def run_fresh(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=100_000)
    parser.add_argument("--enrollments", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/site_gallery.json")
    args = parser.parse_args()
    from tests.postgres import PASSWORD, start_server

    server = start_server()
    work = Path(tempfile.mkdtemp(prefix="gaitwatch-site-bench-"))
    os.environ.update(PGPASSWORD=PASSWORD, GAITWATCH_REPLICA_DIR=str(work / "replicas"))
    try:
        url = server.url
        report: dict = {"identities": args.identities, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}
        report["fill_postgres_s"] = round(fill_postgres(url, args.identities), 1)
        fill_sqlite(work / "site.db", args.identities)
        report["postgres_first_start"] = run_fresh("_start", url)
        report["postgres_start"] = run_fresh("_start", url)
        run_fresh("_start", str(work / "site.db"))  # builds and saves the SQLite gallery's index
        report["sqlite_start"] = run_fresh("_start", str(work / "site.db"))
        report["enrollment"] = enrollment_visibility(url, args.enrollments, work)
    finally:
        server.remove()
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    table = ROOT / "benchmarks" / "site_gallery.md"
    table.write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    rows = [
        ("PostgreSQL, first start on a machine", report["postgres_first_start"]),
        ("PostgreSQL, later starts", report["postgres_start"]),
        ("SQLite file, same tracks", report["sqlite_start"]),
    ]
    lines = [
        f"# Shared gallery at site scale: {report['identities']:,} identities",
        "",
        f"`python benchmarks/site_gallery.py --identities {report['identities']} --enrollments "
        f"{report['enrollment']['enrollments']}` (method in its docstring); "
        f"{report['machine']}, PostgreSQL 15 on loopback.",
        "",
        "| gallery | start: first decision possible | graph ready | index | decision, batch of 64: p50 | p99 | top-1 |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for name, row in rows:
        lines.append(
            f"| {name} | {row['start_s']} s | {row['graph_ready_s']} s | {row['index']} | {row['batch64_p50_ms']} ms | "
            f"{row['batch64_p99_ms']} ms | {row['top1']} |"
        )
    e = report["enrollment"]
    first = report["postgres_first_start"]
    lines += [
        "",
        f"While the first start's graph builds, decisions search exactly: batch of 64 p50 "
        f"{first['while_building_p50_ms']} ms, p99 {first['while_building_p99_ms']} ms (sharing the CPUs with the "
        "build).",
        "",
        f"Enrollment on one node matched on {e['watching_nodes']} others ({e['enrollments']} enrollments of 30 "
        f"windows, 5 a second): p50 {e['visible_p50_ms']} ms, p99 {e['visible_p99_ms']} ms, "
        f"max {e['visible_max_ms']} ms after the enroll returned; never found as its own nearest match within "
        f"60 s: {e['not_seen']} of {e['enrollments'] * e['watching_nodes']} (approximate search's misses).",
        "",
        f"Bulk fill of the PostgreSQL gallery (COPY): {report['fill_postgres_s']} s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_start":
        print(json.dumps(worker_start(sys.argv[2])))
    elif len(sys.argv) > 1 and sys.argv[1] == "_watch":
        worker_watch(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
