"""Merging two identities (one person enrolled twice) in both stores, through the command line, into a node's
replica (PostgreSQL) and into a node's view of a SQLite file changed by another process (the poller)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from sensors.errors import InputError
from stream.gallery.gallery import Gallery
from stream.gallery.location import open_store
from stream.gallery.store import Origin
from tests.helpers import DIM, assert_tracks_equal_the_store, card, gaitwatch


def vectors(seed: int, n: int = 4) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=(n, DIM)) + 3 * seed).astype(np.float32)


def enroll(gallery: Gallery, name: str, seed: int, track: str) -> int:
    identity = gallery.add_identity(name)
    rows = vectors(seed)
    gallery.enroll(identity, rows, [Origin("door", track, float(i), float(i) + 0.2) for i in range(len(rows))])
    return identity


def wait_until(condition, deadline_s: float = 30.0):
    """``condition()`` once it holds; None if it never did within a bound meant for a loaded machine."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if result := condition():
            return result
        time.sleep(0.02)
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path: Path):
    if request.param == "sqlite":
        return tmp_path / "people.db"
    return request.getfixturevalue("pg_url")


def test_a_merge_moves_every_embedding_and_leaves_one_identity(location):
    gallery = Gallery.create(location, card())
    try:
        ana = enroll(gallery, "Ana", 1, "t1")
        twin = enroll(gallery, "anonymous-1", 2, "t1")  # the same (source, track) as Ana's: their sums add up
        other = enroll(gallery, "Bo", 3, "t9")
        extra = gallery.add_identity("Ana again")
        gallery.enroll(extra, vectors(4), [Origin("hall", "t2")] * 4)
        generation = gallery.store.generation()
        assert gallery.merge(twin, ana) == 4
        assert gallery.merge(extra, ana) == 4
        assert gallery.store.generation() > generation
        names = {i.name: i.embeddings for i in gallery.identities()}
        assert names == {"Ana": 12, "Bo": 4}
        assert_tracks_equal_the_store(gallery)
        assert len(gallery.tracks.index.ids[gallery.tracks.index.owners == ana]) == 2  # door/t1 fused, hall/t2
        [match] = gallery.search_tracks(vectors(2).mean(0), k=1)
        assert match.identity == ana
        assert gallery.search(vectors(4)[:1], k=1)[0][0].identity == ana
        with pytest.raises(InputError, match="into itself"):
            gallery.merge(ana, ana)
        with pytest.raises(InputError, match="no identity"):
            gallery.merge(twin, ana)  # gone
        assert gallery.name_of(other) == "Bo"
    finally:
        gallery.close()
    reopened = Gallery.open(location)
    try:
        assert_tracks_equal_the_store(reopened)
    finally:
        reopened.close()


def test_gallery_merge_command(tmp_path: Path):
    path = tmp_path / "people.db"
    gallery = Gallery.create(path, card())
    enroll(gallery, "Ana", 1, "t1")
    enroll(gallery, "anonymous-3", 2, "t5")
    gallery.close()
    out = gaitwatch("gallery", "merge", path, "anonymous-3", "name:Ana").stdout
    assert "merged identity 2 (anonymous-3) into 1 (Ana): 4 embeddings moved" in out
    rows = json.loads(gaitwatch("gallery", "list", path, "--json").stdout)
    assert [(r["name"], r["embeddings"]) for r in rows] == [("Ana", 8)]
    failed = gaitwatch("gallery", "merge", path, "Ana", "Ana", ok=False)
    assert failed.returncode == 2 and "into itself" in failed.stderr and "Traceback" not in failed.stderr


def test_a_replica_takes_a_merge_made_on_another_node(pg_url: str):
    from stream.gallery.follow import Follower

    writer = Gallery.create(pg_url, card())
    ana, twin = enroll(writer, "Ana", 1, "t1"), enroll(writer, "anonymous-1", 2, "t2")
    reader = Gallery.open(pg_url, card())
    follower = Follower(reader).start()
    try:
        assert follower.wait_connected(30)
        applied = follower.applied
        writer.merge(twin, ana)
        assert wait_until(lambda: follower.applied >= applied + 2), "never reached the replica"  # one per identity
        assert twin not in set(reader.tracks.index.owners.tolist())
        assert reader.search_tracks(vectors(2).mean(0), k=1)[0].identity == ana
        assert follower.catch_ups == 1  # the one at connecting: the merge needed none
    finally:
        follower.stop()
        writer.close()
        reader.close()


def test_a_node_on_a_sqlite_file_takes_another_process_s_rename_and_merge(tmp_path: Path):
    from stream.gallery.poll import Poller

    path = tmp_path / "people.db"
    node = Gallery.create(path, card())
    ana, twin = enroll(node, "Ana", 1, "t1"), enroll(node, "anonymous-1", 2, "t2")
    poller = Poller(node, period_s=0.05).start()
    other = open_store(path, writable=True)  # a shell's `gaitwatch gallery rename`, or the dashboard
    try:
        other.rename(ana, "Ana Lima")
        assert wait_until(lambda: node.name_of(ana) == "Ana Lima"), "the node never saw the rename"
        other.merge(twin, ana)
        assert wait_until(lambda: node.search_tracks(vectors(2).mean(0), k=1)[0].identity == ana)
        assert_tracks_equal_the_store(node)
        own = node.add_identity("Cy")  # the node's own write: taken as it is, no catch-up
        catch_ups = poller.catch_ups
        time.sleep(0.3)  # several polls: none may catch up on the node's own write
        assert poller.catch_ups == catch_ups and node.name_of(own) == "Cy"
    finally:
        poller.stop()
        other.close()
        node.close()
