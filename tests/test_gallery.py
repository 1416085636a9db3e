"""The gallery: durable SQLite store, derived indexes (track means, embeddings), identity search, model binding,
crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from sensors.errors import FormatError, InputError
from stream.gallery.gallery import Gallery
from stream.gallery.index_files import pointer_path
from stream.gallery.store import Origin
from tests.helpers import DIM, assert_tracks_equal_the_store, card, fill, origins, people


def test_enroll_search_rename_remove(tmp_path: Path):
    gallery = Gallery.create(tmp_path / "g.db", card())
    vectors, labels = people(5, 10)
    ids = fill(gallery, vectors, labels)
    queries, truth = people(5, 2, seed=0, spread=0.1)  # same centres (seed 0), fresh noise
    results = gallery.search(queries + 0.0, k=3)
    assert [r[0].identity for r in results] == [ids[int(t)] for t in truth]
    assert all(len(r) == 3 and r[0].distance <= r[1].distance <= r[2].distance for r in results)
    assert len(gallery.search(queries[:1], k=50)[0]) == 5  # fewer identities than k: all of them
    gallery.rename(ids[0], "Ana")
    assert gallery.store.identity("Ana").id == ids[0] and gallery.store.identity(ids[0]).embeddings == 10
    assert gallery.remove(ids[0]) == 10
    assert all(m.identity != ids[0] for r in gallery.search(queries, k=5) for m in r)
    with pytest.raises(InputError, match="no identity"):
        gallery.store.identity(ids[0])
    gallery.close()
    reopened = Gallery.open(tmp_path / "g.db", card())
    assert [i.name for i in reopened.identities()] == [f"person {k}" for k in range(1, 5)]


def test_gallery_refuses_another_model_and_bad_embeddings(tmp_path: Path):
    Gallery.create(tmp_path / "g.db", card()).close()
    with pytest.raises(InputError, match=r"filled by model-aaaa\.onnx .* re-embed"):
        Gallery.open(tmp_path / "g.db", card("b" * 64))
    gallery = Gallery.open(tmp_path / "g.db", card())
    who = gallery.add_identity("x")
    with pytest.raises(InputError, match=r"shape \[2, 8\], expected \[n, 16\]"):
        gallery.enroll(who, np.zeros((2, 8)), origins(2))
    bad = np.zeros((2, DIM), np.float32)
    bad[1, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        gallery.enroll(who, bad, origins(2))
    assert gallery.store.count() == 0  # nothing half-enrolled


def test_unreadable_files_are_one_clear_error(tmp_path: Path):
    with pytest.raises(InputError, match="no gallery here"):
        Gallery.open(tmp_path / "absent.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(FormatError, match=r"junk\.db"):
        Gallery.open(junk)


def test_hnsw_index_agrees_with_exact_search(tmp_path: Path):
    vectors, labels = people(60, 40, spread=0.3)
    exact = Gallery.create(tmp_path / "exact.db", card())
    fill(exact, vectors, labels)
    approx = Gallery.open(tmp_path / "exact.db", exact_limit=500)
    assert approx.index.hnsw is not None and exact.index.hnsw is None
    queries, _ = people(60, 3, spread=0.3, seed=0)
    got = [r[0].identity for r in approx.search(queries, k=1)]
    want = [r[0].identity for r in exact.search(queries, k=1)]
    assert np.mean(np.array(got) == np.array(want)) >= 0.99


def test_a_reduced_graph_with_exact_re_ranking_finds_what_exact_search_finds(tmp_path: Path):
    """Embeddings with their variance in few directions: the graph holds their principal components and its
    candidates are re-ranked on the full vectors, so the answers (ids and exact distances) are those of exact
    search; the projection is saved with the graph, and a lost one makes the index rebuild."""
    dim = 256
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(24, dim)) * np.linspace(1.0, 0.1, 24)[:, None]  # variance in few directions
    labels = np.repeat(np.arange(40), 30)
    centres = rng.normal(size=(40, 24)) @ mixing
    vectors = (centres[labels] + 0.3 * rng.normal(size=(len(labels), dim))).astype(np.float32)
    queries = (centres[rng.integers(40, size=100)] + 0.3 * rng.normal(size=(100, dim))).astype(np.float32)
    path = tmp_path / "wide.db"
    exact = Gallery.create(path, card(dim=dim))
    fill(exact, vectors, labels)
    want = exact.index.search(queries, 3)
    exact.close()
    approx = Gallery.open(path, exact_limit=300)
    assert approx.index.projection is not None and approx.index.projection.dim < 64
    got = approx.index.search(queries, 3)
    same = [np.array_equal(g.ids, w.ids) for g, w in zip(got, want, strict=True)]
    assert np.mean(same) >= 0.99
    for g, w in zip(got, want, strict=True):
        if np.array_equal(g.ids, w.ids):
            np.testing.assert_allclose(g.distances, w.distances, rtol=1e-4, atol=1e-4)
    approx.close()
    reopened = Gallery.open(path, exact_limit=300)
    assert reopened.index_source == "loaded"
    assert all(np.array_equal(a.ids, b.ids) for a, b in zip(reopened.index.search(queries, 3), got, strict=True))
    reopened.close()
    projection = path.with_name(json.loads(pointer_path(path, "hnsw").read_text())["files"]["projection"])
    projection.write_bytes(b"torn")
    rebuilt = Gallery.open(path, exact_limit=300)
    assert rebuilt.index_source == "built" and len(rebuilt.index) == len(vectors)
    rebuilt.close()


def test_saved_index_is_loaded_caught_up_or_rebuilt(tmp_path: Path):
    path = tmp_path / "g.db"
    vectors, labels = people(30, 40)
    gallery = Gallery.create(path, card())
    ids = fill(gallery, vectors, labels)
    gallery.close()
    g = Gallery.open(path, exact_limit=100)
    assert g.index_source == "built"
    g.close()  # saves the graph
    g = Gallery.open(path, exact_limit=100)
    assert g.index_source == "loaded" and len(g.index) == 1200
    g.enroll(ids[0], vectors[:5], origins(5))
    g.store.close()  # a crash: the index was not saved after the enroll
    g = Gallery.open(path, exact_limit=100)
    assert g.index_source == "caught up" and len(g.index) == 1205
    g.remove(ids[1])
    g.store.close()
    g = Gallery.open(path, exact_limit=100)  # the saved graph still holds the removed identity: marked deleted
    assert g.index_source == "caught up" and len(g.index) == 1165
    assert ids[1] not in {m.identity for r in g.search(vectors[40:80], k=3) for m in r}
    for who in list(ids.values())[2:20]:
        g.remove(who)
    g.close()  # the graph now holds more deleted labels than live ones
    g = Gallery.open(path, exact_limit=100)
    assert g.index_source == "built" and len(g.index) == 445
    g.close()
    graph = path.with_name(json.loads(pointer_path(path, "hnsw").read_text())["files"]["graph"])
    graph.write_bytes(graph.read_bytes()[:100])  # a torn graph file
    g = Gallery.open(path, exact_limit=100)
    assert g.index_source == "built" and len(g.index) == 445


def test_many_readers_and_one_writer(tmp_path: Path):
    vectors, labels = people(20, 50)
    gallery = Gallery.open(_filled(tmp_path, vectors, labels), exact_limit=300)
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                for matches in gallery.search(vectors[:8], k=3):
                    assert 1 <= len(matches) <= 3
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    extra = gallery.add_identity("late")
    for i in range(20):
        gallery.enroll(extra, vectors[i * 10 : (i + 1) * 10] + 5.0, origins(10))
    gallery.remove(extra)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def _filled(tmp_path: Path, vectors: np.ndarray, labels: np.ndarray) -> Path:
    gallery = Gallery.create(tmp_path / "g.db", card())
    fill(gallery, vectors, labels)
    gallery.close()
    return tmp_path / "g.db"


ENROLL_LOOP = """
import sys, numpy as np
from stream.gallery.gallery import Gallery
from stream.gallery.store import Origin
path, seed = sys.argv[1], int(sys.argv[2])
g = Gallery.open(path, exact_limit=int(sys.argv[3]))
g.index  # the index of every embedding too: both indexes are kept up to date and saved (and killed mid-save)
rng = np.random.default_rng(seed)
people = []
for i in range(100000):
    if i % 10 == 0:
        people.append(g.add_identity(f"run {seed}/{i}"))
    who = people[-1]
    ids = g.enroll(who, rng.normal(size=(3, 16)).astype(np.float32), [Origin("loop", str(seed))] * 3)
    print("E", who, *ids, flush=True)
    if i % 25 == 24:
        g.save_index()
    if i % 30 == 29:
        print("r", people[-2], flush=True)
        g.remove(people[-2])
        print("R", people[-2], flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("exact_limit", [20_000, 50])
def test_sigkill_during_enroll_remove_save_loses_nothing_that_returned(tmp_path: Path, exact_limit: int):
    path = tmp_path / "g.db"
    Gallery.create(path, card()).close()
    rng = np.random.default_rng(0)
    returned: dict[int, int] = {}  # embedding id -> identity, for every enroll that returned
    removed: set[int] = set()  # identities whose remove returned
    removing: set[int] = set()  # identities whose remove began (it may have been killed half-way)
    root = Path(__file__).resolve().parents[1]
    for run in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", ENROLL_LOOP, str(path), str(run), str(exact_limit)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        # killed after a random amount of work (not of time: a loaded machine does less in a second), while
        # it goes on working: the kill lands anywhere in an enroll, a remove or a save
        target, lines = int(rng.integers(40, 120)), []
        for line in proc.stdout:
            lines.append(line)
            if len(lines) >= target:
                break
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate()
        # The kill can land in the middle of a write to the pipe: an unterminated last line is torn, not a report.
        lines = [line.rstrip("\n") for line in lines if line.endswith("\n")] + rest.split("\n")[:-1]
        for kind, who, *ids in (line.split() for line in lines if line.strip()):
            if kind == "E":
                returned.update({int(x): int(who) for x in ids})
            else:
                (removed if kind == "R" else removing).add(int(who))
        gallery = Gallery.open(path, card(), exact_limit=exact_limit)  # always reopens
        stored, owners = gallery.store.ids_and_owners()
        kept = {eid for eid, who in returned.items() if who not in removing}
        assert kept <= set(stored.tolist())  # every returned enroll survived, unless its owner was removed
        assert not removed & set(owners.tolist())  # every returned remove stayed removed
        identities = {i.id for i in gallery.identities()}
        assert not removed & identities
        for who in removing - removed:  # killed during remove: all of it or none of it is gone
            theirs = {eid for eid, owner in returned.items() if owner == who}
            assert theirs <= set(stored.tolist()) if who in identities else not theirs & set(stored.tolist())
        assert np.array_equal(np.sort(gallery.index.ids), stored)  # the index agrees with the store
        assert_tracks_equal_the_store(gallery)
        gallery.store.close()
    assert len(removed) > 5
    assert len(returned) > 100


def test_track_means_kept_in_memory_equal_a_fresh_read_after_enroll_rename_remove(tmp_path: Path):
    gallery = Gallery.create(tmp_path / "g.db", card())
    vectors, labels = people(4, 6)
    ids = fill(gallery, vectors, labels)
    queries, _ = people(4, 3, seed=0, spread=0.3)
    gallery.search_tracks(queries[0])  # the means are read once, here, then updated in place
    more, _ = people(4, 5, seed=1)
    gallery.enroll(ids[1], more[:3], [Origin("other.gwrec", track="7")] * 3)  # a new track
    gallery.enroll(ids[2], more[3:5], origins(2))  # more windows of an enrolled track
    newcomer = gallery.add_identity("newcomer")
    gallery.enroll(newcomer, more[5:9], [Origin("live", track="3")] * 4)
    gallery.rename(ids[3], "Ana")
    gallery.remove(ids[0])
    fresh = Gallery.open(tmp_path / "g.db", card())
    for query in queries:
        kept, reread = gallery.search_tracks(query, k=10), fresh.search_tracks(query, k=10)
        assert [m.identity for m in kept] == [m.identity for m in reread]
        np.testing.assert_allclose([m.distance for m in kept], [m.distance for m in reread], rtol=1e-6)
    assert {m.identity for m in kept} == {ids[1], ids[2], ids[3], newcomer}
    assert gallery.name_of(ids[3]) == fresh.name_of(ids[3]) == "Ana"
    assert gallery.name_of(newcomer) == "newcomer"


def test_the_projection_keeps_few_components_only_where_the_variance_lies_in_few():
    from stream.gallery.projection import Projection

    rng = np.random.default_rng(0)
    isotropic = rng.normal(size=(2000, 128)).astype(np.float32)
    assert Projection.fit(isotropic, 0.95).basis is None  # nothing to gain: the graph keeps every dimension
    low_rank = (rng.normal(size=(2000, 10)) @ rng.normal(size=(10, 128))).astype(np.float32)
    projection = Projection.fit(low_rank + 0.01 * isotropic, 0.95)
    assert projection.dim == 16  # 10 directions hold the variance; rounded up to hnswlib's fast multiple
    restored = Projection.from_bytes(projection.to_bytes(), 128)
    np.testing.assert_array_equal(restored(low_rank[:5]), projection(low_rank[:5]))
    with pytest.raises(ValueError, match="expected"):
        Projection.from_bytes(projection.to_bytes(), 64)


def test_identity_references_never_pick_the_wrong_identity(tmp_path: Path):
    """``id:N`` is an id, ``name:TEXT`` a name; plain text that could name one identity and be the id of another
    is refused, as is a name several identities share."""
    gallery = Gallery.create(tmp_path / "g.db", card())
    ids = [gallery.add_identity(name) for name in ("02", "Ana", "Ana", "Bo", "1", "x")]
    store = gallery.store
    assert store.identity("02").id == ids[0]  # a CMU subject's name, never identity 2
    assert store.identity("Bo").id == ids[3] and store.identity("6").id == ids[5] and store.identity(4).id == ids[3]
    assert store.identity("id:1").id == ids[0] and store.identity("name:1").id == ids[4]
    with pytest.raises(InputError, match=r"'1' is the name of identity 5 and the id of identity 1 \('02'\); say name:"):
        store.identity("1")
    with pytest.raises(InputError, match=r"2 identities are named 'Ana' \(id:2, id:3\)"):
        store.identity("Ana")
    for missing in ("7", "id:7", "name:7", "nobody"):
        with pytest.raises(InputError, match=f"no identity '{missing}'"):
            store.identity(missing)
    with pytest.raises(InputError, match="not an identity id"):
        store.identity("id:02")


def test_gallery_and_index_files_are_private_under_the_usual_umask(tmp_path: Path):
    previous = os.umask(0o022)
    try:
        path = tmp_path / "g.db"
        vectors, labels = people(30, 40)
        gallery = Gallery.create(path, card())
        fill(gallery, vectors, labels)
        gallery.close()
        gallery = Gallery.open(path, exact_limit=20)  # the track means (30) and the embeddings (1200): HNSW
        gallery.search(vectors[:1])  # builds the graph of every embedding; close saves both indexes
        gallery.add_identity("late")  # a write: the -wal and -shm files exist while the gallery is open
        files = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
        gallery.close()
        final = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
        files.update(final)
    finally:
        os.umask(previous)
    assert {"g.db", "g.db-wal", "g.db-shm", "g.db.hnsw.json", "g.db.hnsw.lock", "g.db.tracks.json"} <= files.keys()
    assert len([name for name in final if name.startswith("g.db.hnsw.") and name.endswith(".npy")]) == 2
    assert len([name for name in final if name.startswith("g.db.tracks.") and name.endswith(".npy")]) == 5
    assert files == dict.fromkeys(files, 0o600)


@pytest.mark.parametrize("name", ["g.db", "site[1].db"])
def test_saving_an_index_deletes_only_its_own_old_files(tmp_path: Path, name: str):
    """An index save cleans up its previous files by their exact names, never a user's file sharing the prefix
    (and a gallery whose name holds glob characters is cleaned up too)."""
    path = tmp_path / name
    gallery = Gallery.create(path, card())
    vectors, labels = people(5, 4)
    fill(gallery, vectors, labels)
    gallery.search(vectors[:1])  # the embedding index exists, so both indexes are saved
    gallery.save_index()
    first = {p.name for p in tmp_path.iterdir()}
    notes = [tmp_path / f"{name}.tracks.notes", tmp_path / f"{name}.hnsw.backup", tmp_path / f"{name}.hnsw.old.npy"]
    for note in notes:
        note.write_text("the user's")
    gallery.enroll(gallery.add_identity("more"), vectors[:2] + 3.0, origins(2))
    gallery.save_index()
    gallery.close()
    now = {p.name for p in tmp_path.iterdir()}
    assert all(note.read_text() == "the user's" for note in notes)
    replaced = {name for name in first - now if ".tracks." in name or ".hnsw." in name}
    assert replaced, "the previous save's files should be gone"


def test_a_gallery_made_again_under_the_same_name_never_takes_the_old_ones_index(tmp_path: Path):
    """Index files are bound to their gallery, not only to its model and generation: a gallery deleted and made
    again reaches the same generation after as many writes, and must not be scored with the old track means."""
    from stream.gallery.store import GalleryStore

    path = tmp_path / "people.db"
    vectors, labels = people(2, 4)
    gallery = Gallery.create(path, card())
    gallery.enroll(gallery.add_identity("Ana"), vectors[labels == 0], origins(4))
    gallery.close()  # saves the track index at this gallery's generation
    for name in ("people.db", "people.db-wal", "people.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    Gallery.create(path, card()).close()  # made again, then filled as `gallery enroll` does: the store alone
    store = GalleryStore(path)
    store.add_embeddings(store.add_identity("Bo"), vectors[labels == 1], origins(4))
    store.close()
    gallery = Gallery.open(path, card())
    [best] = gallery.search_tracks(vectors[labels == 1].mean(0), k=1)
    assert gallery.name_of(best.identity) == "Bo" and best.distance < 1e-5
    assert gallery.tracks.source != "loaded"
    gallery.close()


def test_a_graph_built_in_the_background_takes_the_changes_made_while_it_was_built():
    """A node starts on exact search while its graph builds; rows added, moved or removed meanwhile are what the
    adopted graph answers with, and until then searches are exact."""
    from stream.gallery.index import EmbeddingIndex

    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(400, 16)).astype(np.float32)
    index = EmbeddingIndex(16, exact_limit=100)
    index.add(np.arange(1, 301), np.arange(1, 301), vectors[:300], graph=False)
    release, made = threading.Event(), index._new_graph

    def held_graph(*args):
        release.wait(30)  # the build ends when the test says: the changes below happen during it
        return made(*args)

    index._new_graph = held_graph
    index.build_in_background()
    builder = index.building
    assert index.hnsw is None and builder is not None
    index.add(np.arange(301, 401), np.arange(301, 401), vectors[300:400])  # enrolled meanwhile
    index.replace_identity(7, np.array([7]), vectors[[399]] + 10, np.array([2]))  # a track that moved
    index.remove_identity(9)
    exact = index.search(vectors, k=1)
    release.set()
    builder.join(30)
    assert index.hnsw is not None and index.hnsw.get_current_count() >= 400
    graph = index.search(vectors, k=1)
    assert [n.ids.tolist() for n in graph] == [n.ids.tolist() for n in exact]
    assert 9 not in {int(i) for n in graph for i in n.ids}
    [moved] = index.search(vectors[[399]] + 10, k=1)
    assert moved.ids[0] == 7


def test_naming_an_anonymous_identity_makes_it_a_named_one(tmp_path: Path):
    gallery = Gallery.create(tmp_path / "g.db", card())
    identity = gallery.add_anonymous()
    assert gallery.store.identity(identity).anonymous
    gallery.rename(identity, "Ana")
    assert not gallery.store.identity(identity).anonymous  # calibrate site now counts Ana among the named people
    gallery.close()
