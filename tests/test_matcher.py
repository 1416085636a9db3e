"""Open-set matching of tracks against a gallery: known, unknown, and auto-enrolled returning strangers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hnswlib", reason="hnswlib not installed")

from stream.gallery.gallery import Gallery
from stream.matcher import TrackMatcher
from tests.test_gallery import card, fill, people


@pytest.fixture
def gallery(tmp_path: Path) -> Gallery:
    vectors, labels = people(6, 20, spread=0.3)
    g = Gallery.create(tmp_path / "g.db", card())
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
