"""Open-set matching of tracks against a gallery: known, unknown, and auto-enrolled returning strangers; each with
the track means searched exactly and through HNSW (a limit below the gallery's size)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stream.gallery.gallery import Gallery
from stream.matcher import TrackMatcher
from tests.helpers import card, fill, people


@pytest.fixture(params=[20_000, 2], ids=["exact", "hnsw"])
def gallery(tmp_path: Path, request) -> Gallery:
    vectors, labels = people(6, 20, spread=0.3)
    g = Gallery.create(tmp_path / "g.db", card(), exact_limit=request.param)
    fill(g, vectors[labels < 4], labels[labels < 4])  # persons 4 and 5 are strangers
    return g


def walk(person: int, n: int, seed: int) -> np.ndarray:
    vectors, labels = people(6, n, spread=0.3, seed=0)  # same centres as the gallery
    rng = np.random.default_rng(seed)
    return vectors[labels == person] + 0.3 * rng.normal(size=(n, vectors.shape[1])).astype(np.float32)


def test_known_people_are_named_after_min_windows(gallery: Gallery):
    matcher = TrackMatcher(gallery, threshold=1.5, min_windows=3)
    decisions = [matcher.observe("t1", e) for e in walk(2, 6, seed=1)]
    assert decisions[:2] == [None, None]
    assert all(d.name == "person 2" and d.windows == i + 3 for i, d in enumerate(decisions[2:]))
    assert decisions[-1].distance <= decisions[-1].candidates[1].distance


def test_strangers_are_unknown_then_enrolled_and_recognised_on_return(gallery: Gallery):
    matcher = TrackMatcher(gallery, threshold=1.5, min_windows=3, enroll_after=5)
    first = [matcher.observe("t7", e) for e in walk(5, 6, seed=2)]
    assert first[2].identity is None and first[2].name is None and first[2].distance > 1.5
    assert first[4].enrolled and first[4].name == "anonymous-1"
    assert first[5].name == "anonymous-1" and not first[5].enrolled
    matcher.end("t7")
    again = [matcher.observe("t9", e) for e in walk(5, 4, seed=3)]
    assert again[-1].name == "anonymous-1" and again[-1].distance <= 1.5  # recognised when it returns
    assert gallery.store.identity("anonymous-1").anonymous


def test_an_empty_gallery_says_unknown(tmp_path: Path):
    matcher = TrackMatcher(Gallery.create(tmp_path / "e.db", card()), threshold=1.0, min_windows=1)
    decision = matcher.observe("t", np.zeros(16, np.float32))
    assert decision.identity is None and decision.distance is None and decision.candidates == []


def test_a_batch_of_windows_decides_as_one_by_one(gallery: Gallery):
    tracks = ["a", "b", "a", "c", "a", "b", "c", "c", "a", "b"]
    windows = np.concatenate([walk(p, 4, seed=9) for p in (0, 1, 3)])[: len(tracks)]
    one_by_one = TrackMatcher(gallery, threshold=1.5, min_windows=2)
    batched = TrackMatcher(gallery, threshold=1.5, min_windows=2)
    expected = [one_by_one.observe(t, w) for t, w in zip(tracks, windows, strict=True)]
    got = batched.observe_many(tracks, windows)
    assert [d is None for d in got] == [d is None for d in expected]
    for g, e in zip(got, expected, strict=True):
        if e is not None:
            assert (g.identity, g.windows, [m.identity for m in g.candidates]) == (
                e.identity,
                e.windows,
                [m.identity for m in e.candidates],
            )
            np.testing.assert_allclose([m.distance for m in g.candidates], [m.distance for m in e.candidates])


def test_decisions_are_those_of_a_brute_force_search_over_the_stored_track_means(gallery: Gallery):
    from tests.helpers import exact_nearest_identities

    matcher = TrackMatcher(gallery, threshold=1.5, min_windows=1, enroll_after=4)
    tracks = [f"t{i % 6}" for i in range(36)]
    windows = np.concatenate([walk(p, 6, seed=p) for p in range(6)])[np.argsort(np.arange(36) % 6, kind="stable")]
    for start in range(0, 36, 6):  # batches of six tracks' windows, strangers enrolled along the way
        before = gallery.store.track_means()  # what the batch searches (its own enrollments count from the next)
        decisions = matcher.observe_many(tracks[start : start + 6], windows[start : start + 6])
        pooled = [matcher.tracks[t].total / len(matcher.tracks[t].embeddings) for t in tracks[start : start + 6]]
        want = exact_nearest_identities(before, np.asarray(pooled), k=5)
        assert any(d.enrolled for d in decisions) == (start == 18)
        for decision, best in zip(decisions, want, strict=True):
            assert [m.identity for m in decision.candidates] == [who for who, _ in best]
            np.testing.assert_allclose([m.distance for m in decision.candidates], [d for _, d in best], rtol=1e-5)


def test_anonymous_names_are_never_reused_after_a_removal_or_by_another_writer(tmp_path: Path):
    gallery = Gallery.create(tmp_path / "g.db", card())
    first = [gallery.add_anonymous() for _ in range(3)]
    gallery.remove(first[1])  # anonymous-2 is gone; its name must not come back as a duplicate of another
    other = Gallery.open(tmp_path / "g.db", card())  # a second node writing the same gallery
    later = [gallery.add_anonymous(), other.add_anonymous(), gallery.add_anonymous()]
    names = [i.name for i in gallery.identities() if i.anonymous]
    assert len(names) == len(set(names)) == 5
    assert [gallery.store.identity(i).name for i in later] == ["anonymous-4", "anonymous-5", "anonymous-6"]
    other.close()
    gallery.close()
