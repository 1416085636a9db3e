"""Two processes writing one gallery at once (a live node enrolling anonymous tracks while a user runs
``gallery enroll``): index saves never break each other, and on open both indexes (track means, embeddings)
hold exactly the store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from stream.gallery.gallery import Gallery
from stream.gallery.store import Origin
from tests.helpers import assert_tracks_equal_the_store, card, fill, people

ROOT = Path(__file__).resolve().parents[1]
EXACT_LIMIT = 40

WRITER = """
import sys, numpy as np
from stream.gallery.gallery import Gallery
from stream.gallery.store import Origin
path, seed, rounds, enroll = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "enroll"
gallery = Gallery.open(path, exact_limit=int(sys.argv[5]))
gallery.index  # both indexes kept up to date and saved: the track means (always) and every embedding
rng = np.random.default_rng(seed)
who = gallery.add_identity(f"writer {seed}")
for i in range(rounds):
    if enroll:  # a new track every third round, more windows of the last one otherwise
        origins = [Origin("writer", f"{seed}/{i // 3}")] * 3
        gallery.enroll(who, rng.normal(size=(3, 16)).astype(np.float32), origins)
    gallery.save_index()
gallery.close()
"""


def _small_gallery(tmp_path: Path) -> Path:
    """A gallery past EXACT_LIMIT in embeddings (50) and in tracks (46), with both HNSW indexes saved."""
    path = tmp_path / "g.db"
    gallery = Gallery.create(path, card())
    vectors, labels = people(45, 1)
    fill(gallery, vectors, labels)
    more, _ = people(1, 5, seed=1)
    gallery.enroll(gallery.store.identity("person 0").id, more, [Origin("more", "1")] * 5)
    gallery.close()
    gallery = Gallery.open(path, exact_limit=EXACT_LIMIT)
    assert gallery.index.hnsw is not None and gallery.tracks.index.hnsw is not None
    gallery.close()
    return path


def _writers(path: Path, rounds: int, enroll: bool) -> None:
    """Two writer processes at once; both must finish cleanly."""
    mode = "enroll" if enroll else "save"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(seed), str(rounds), mode, str(EXACT_LIMIT)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    errors = [proc.communicate(timeout=300)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], errors


def test_two_processes_enrolling_at_once_leave_an_index_equal_to_the_store(tmp_path: Path):
    path = _small_gallery(tmp_path)
    _writers(path, rounds=60, enroll=True)
    gallery = Gallery.open(path, card(), exact_limit=EXACT_LIMIT)
    assert gallery.index.hnsw is not None and gallery.index_source in ("loaded", "caught up")
    assert gallery.tracks.source in ("loaded", "caught up")
    stored, _ = gallery.store.ids_and_owners()
    assert len(stored) == 50 + 2 * 60 * 3
    assert np.array_equal(gallery.index.ids, stored)
    vectors = np.concatenate([v for _, _, v in gallery.store.embeddings()])
    found = [n.ids[0] for n in gallery.index.search(vectors, 1)]
    assert np.array_equal(found, stored)  # every stored embedding is in the graph: it finds itself
    assert_tracks_equal_the_store(gallery)
    means = gallery.store.track_means()
    found = [n.ids[0] for n in gallery.tracks.index.search(means.means, 1)]
    assert np.array_equal(found, means.labels)  # every track mean is in its graph


def test_concurrent_index_saves_never_delete_each_others_files(tmp_path: Path):
    """The saves of two processes at one generation once shared a partial file, and each save's clean-up deleted
    the other's partial mid-write (FileNotFoundError)."""
    path = _small_gallery(tmp_path)
    _writers(path, rounds=150, enroll=False)
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".partial"))
    assert not leftovers
    gallery = Gallery.open(path, exact_limit=EXACT_LIMIT)
    assert gallery.index_source == "loaded" and len(gallery.index) == 50
    assert len(gallery.tracks) == 46
    assert_tracks_equal_the_store(gallery)


def test_an_index_saved_by_a_stale_writer_is_reconciled_with_the_store_on_open(tmp_path: Path):
    """A writer whose view predates another's enrolls and removals saves its graph last: on open the other's rows
    are added to the graph and the removed ones dropped, whatever the counters say."""
    path = _small_gallery(tmp_path)
    stale = Gallery.open(path, exact_limit=EXACT_LIMIT)
    other = Gallery.open(path, exact_limit=EXACT_LIMIT)
    stale.index, other.index  # noqa: B018 (both indexes made, so both are saved)
    late = other.add_identity("late")
    more, _ = people(1, 12, seed=3)
    other.enroll(late, more, [Origin("other", "1")] * 12)
    other.remove(other.store.identity("person 0").id)
    grown = people(1, 2, seed=5)[0]
    other.enroll(other.store.identity("person 1").id, grown, [Origin("test.gwrec", "1")] * 2)  # a track grows
    other.close()
    mine = stale.add_identity("mine")
    stale.enroll(mine, more + 3.0, [Origin("stale", "1")] * 12)
    stale.close()  # saved last: its graph lacks "late" and still holds "person 0"
    gallery = Gallery.open(path, exact_limit=EXACT_LIMIT)
    stored, owners = gallery.store.ids_and_owners()
    assert gallery.index_source == "caught up" and np.array_equal(gallery.index.ids, stored)
    assert gallery.tracks.source == "caught up"
    assert_tracks_equal_the_store(gallery)
    assert len(owners) == 50 - 6 + 2 + 12 + 12
    vectors = np.concatenate([v for _, _, v in gallery.store.embeddings()])
    squared = ((vectors[:, None, :] - vectors[None, :, :]) ** 2).sum(-1)
    nearest = np.sort(np.sqrt(squared), axis=1)[:, :5]  # exact search over exactly the stored embeddings
    found = gallery.index.search(vectors, 5)
    assert np.array_equal([n.ids[0] for n in found], stored)
    np.testing.assert_allclose([n.distances for n in found], nearest, atol=1e-4)
