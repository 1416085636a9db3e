"""The index of enrolled track means, what the node decides on: opened with the gallery, searched like exact search,
kept equal to the store; the index of every embedding made only when something searches it."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from stream.gallery.gallery import Gallery
from stream.gallery.store import GalleryStore, Origin
from tests.helpers import assert_tracks_equal_the_store, card, exact_nearest_identities, fill, people


def _tracks(n: int, per_identity: int, windows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """[identities, per_identity, windows, 16] window embeddings, and fresh pooled queries of those identities."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n, 1, 1, 16))
    vectors = (centres + 0.4 * rng.normal(size=(n, per_identity, windows, 16))).astype(np.float32)
    queries = centres[rng.integers(n, size=200), 0, 0] + 0.4 * rng.normal(size=(200, 16)) / np.sqrt(5)
    return vectors, queries.astype(np.float32)


def _enroll_tracks(gallery: Gallery, vectors: np.ndarray) -> list[int]:
    """One identity per first axis, one track per second (``walk-j``), its windows along the third."""
    ids = []
    for i, tracks in enumerate(vectors):
        ids.append(gallery.add_identity(f"person {i}"))
        origins = [Origin("test", f"walk-{j}") for j in range(tracks.shape[0]) for _ in range(tracks.shape[1])]
        gallery.enroll(ids[-1], tracks.reshape(-1, tracks.shape[-1]), origins)
    return ids


def test_open_reads_no_embedding_where_the_saved_track_index_is_current(tmp_path: Path, monkeypatch):
    """Before: every open read every embedding and built (or loaded) the graph of them, and every close saved it."""
    path = tmp_path / "g.db"
    vectors, labels = people(30, 40)
    gallery = Gallery.create(path, card())
    fill(gallery, vectors, labels)
    gallery.close()

    def refuse(*args, **kwargs):
        raise AssertionError("read every embedding")

    monkeypatch.setattr(GalleryStore, "embeddings", refuse)
    monkeypatch.setattr(GalleryStore, "track_means", refuse)
    monkeypatch.setattr(GalleryStore, "track_summary", refuse)
    gallery = Gallery.open(path, card(), exact_limit=100)
    assert gallery.tracks.source == "loaded" and len(gallery.tracks) == 30
    assert gallery.search_tracks(vectors[0], k=1)[0].identity == gallery.store.identity("person 0").id
    gallery.close()
    assert not [p.name for p in tmp_path.iterdir() if ".hnsw." in p.name]  # no embedding index made, none saved


def test_track_index_above_the_exact_limit_answers_as_exact_search_on_the_shipped_models_embeddings(tmp_path: Path):
    """Real embeddings: the shipped model on the bundled CMU walks (every window, stride 1). Enrolled tracks are
    spans of 3 to 20 windows of a walk (an identity per walk), queries are other spans pooled as the node pools
    them; above the exact limit the graph's answers are the brute-force answers for at least 99% of them."""
    from engines.runtime.load import open_encoder
    from sensors.demo import demo_recording_path
    from sensors.formats import read_file
    from stream.node.demo import single_tracks
    from stream.windows import track_windows

    encoder = open_encoder()
    walks = []
    for walk in single_tracks(read_file(demo_recording_path())):
        for part in track_windows(walk, encoder.f, float(encoder.card["rate_hz"]), stride=1):
            if len(part.windows) >= 40:
                walks.append(encoder.encode(part.windows))
    assert len(walks) >= 20
    rng = np.random.default_rng(0)

    def span(walk: np.ndarray) -> np.ndarray:
        length = int(rng.integers(3, 21))
        start = int(rng.integers(len(walk) - length + 1))
        return walk[start : start + length]

    gallery = Gallery.create(tmp_path / "g.db", encoder.card, exact_limit=300)
    for w, walk in enumerate(walks):
        identity = gallery.add_identity(f"walk {w}")
        spans = [span(walk) for _ in range(30)]
        origins = [Origin("cmu", f"{w}/{s}") for s, windows in enumerate(spans) for _ in windows]
        gallery.enroll(identity, np.concatenate(spans), origins)
    assert len(gallery.tracks) > 300 and gallery.tracks.index.hnsw is not None
    queries = np.stack([span(walks[int(rng.integers(len(walks)))]).mean(0) for _ in range(400)])
    got = gallery.search_tracks_many(queries, k=5)
    want = exact_nearest_identities(gallery.store.track_means(), queries, k=5)
    same = [g[0].identity == w[0][0] for g, w in zip(got, want, strict=True)]
    assert np.mean(same) >= 0.99
    for g, w, agree in zip(got, want, same, strict=True):
        if agree:
            assert g[0].distance == pytest.approx(w[0][1], rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("exact_limit", [20_000, 10])
def test_answers_equal_brute_force_search_over_the_stored_means(tmp_path: Path, exact_limit: int):
    vectors, queries = _tracks(40, 3, 4)
    gallery = Gallery.create(tmp_path / "g.db", card(), exact_limit=exact_limit)
    _enroll_tracks(gallery, vectors)
    assert (gallery.tracks.index.hnsw is None) == (exact_limit > 120)
    got = gallery.search_tracks_many(queries, k=5)
    want = exact_nearest_identities(gallery.store.track_means(), queries, k=5)
    for g, w in zip(got, want, strict=True):
        assert [m.identity for m in g] == [who for who, _ in w]
        np.testing.assert_allclose([m.distance for m in g], [d for _, d in w], rtol=1e-5, atol=1e-6)


def test_a_graph_of_mostly_deleted_tracks_asked_for_more_than_are_left_answers_without_raising(tmp_path: Path):
    """hnswlib's knn_query raises when it finds fewer than k live labels (the rest deleted): then exact search
    answers, so the node never fails a decision for it."""
    path = tmp_path / "g.db"
    vectors, queries = _tracks(60, 1, 2)
    gallery = Gallery.create(path, card(), exact_limit=5)
    ids = _enroll_tracks(gallery, vectors)
    gallery.close()
    gallery = Gallery.open(path, exact_limit=5)
    for who in ids[:52]:
        gallery.remove(who)
    assert gallery.tracks.index.hnsw.get_current_count() == 60 and len(gallery.tracks) == 8
    got = gallery.search_tracks_many(queries, k=20)
    want = exact_nearest_identities(gallery.store.track_means(), queries, k=20)
    assert [[m.identity for m in g] for g in got] == [[who for who, _ in w] for w in want]
    assert all(len(g) == 8 for g in got)


def test_the_saved_track_index_is_taken_as_it_is_or_caught_up_or_rebuilt(tmp_path: Path, monkeypatch):
    path = tmp_path / "g.db"
    vectors, _ = _tracks(30, 2, 3)
    gallery = Gallery.create(path, card(), exact_limit=20)
    ids = _enroll_tracks(gallery, vectors)
    gallery.close()
    gallery = Gallery.open(path, exact_limit=20)
    assert gallery.tracks.source == "loaded" and gallery.tracks.index.hnsw is not None
    more = people(1, 4, seed=7)[0]
    gallery.enroll(ids[3], more[:2], [Origin("test", "walk-0")] * 2)  # a track grows: its label and mean change
    gallery.enroll(ids[4], more[2:], [Origin("test", "walk-9")] * 2)  # a new track
    gallery.remove(ids[5])
    gallery.store.close()  # a crash: nothing saved since the open
    gallery = Gallery.open(path, exact_limit=20)
    assert gallery.tracks.source == "caught up"
    assert_tracks_equal_the_store(gallery)
    store = GalleryStore(path)
    store.rename(ids[6], "renamed elsewhere")  # another process writes: the generation moves on
    store.close()
    gallery.enroll(ids[7], more[:1], [Origin("test", "walk-1")])
    gallery.close()  # saved without a generation: it cannot know the store holds nothing else
    gallery = Gallery.open(path, exact_limit=20)
    assert gallery.tracks.source == "caught up"
    assert_tracks_equal_the_store(gallery)
    rows = gallery.tracks.index
    held = [rows.ids.copy(), rows.owners.copy(), rows.counts.copy(), rows.vectors.copy()]
    gallery.close()  # saved with the generation its rows equal
    monkeypatch.setattr(GalleryStore, "track_means", lambda *a, **k: pytest.fail("read every embedding"))
    gallery = Gallery.open(path, exact_limit=20)
    rows = gallery.tracks.index
    assert gallery.tracks.source == "loaded"
    loaded = [rows.ids, rows.owners, rows.counts, rows.vectors]
    assert all(np.array_equal(a, b) for a, b in zip(loaded, held, strict=True))
    gallery.close()
    monkeypatch.undo()
    pointer = path.with_name(path.name + ".tracks.json")
    pointer.write_text(pointer.read_text()[:-5])  # a torn pointer: rebuilt from every embedding
    gallery = Gallery.open(path, exact_limit=20)
    assert gallery.tracks.source == "built"
    assert_tracks_equal_the_store(gallery)


def test_searching_track_means_while_one_thread_enrolls_and_removes(tmp_path: Path):
    vectors, queries = _tracks(30, 2, 3)
    gallery = Gallery.create(tmp_path / "g.db", card(), exact_limit=20)
    _enroll_tracks(gallery, vectors)
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                for matches in gallery.search_tracks_many(queries[:16], k=3):
                    assert len(matches) == 3 and matches[0].distance <= matches[1].distance <= matches[2].distance
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    more = people(1, 60, seed=3)[0] + 4.0
    for i in range(20):
        who = gallery.add_identity(f"late {i}")
        gallery.enroll(who, more[i * 3 : i * 3 + 3], [Origin("late", str(i))] * 3)
        if i % 2:
            gallery.remove(who)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert_tracks_equal_the_store(gallery)
