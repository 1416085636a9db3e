"""The silhouette channel of a PostgreSQL gallery: the SQLite store's contract (binding, refusal, means, merge,
remove, re-embedding), migration both ways, a replica taking other nodes' channel enrollments from their
notifications, and a database made before the table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sensors.errors import InputError
from stream.gallery.channel import SILHOUETTE
from stream.gallery.follow import Follower
from stream.gallery.gallery import Gallery, Match
from stream.gallery.migrate import migrate
from stream.gallery.postgres import CHANNEL, PostgresStore
from stream.gallery.store import GalleryStore, Origin, model_binding
from tests.helpers import card
from tests.test_gallery_channel import OTHER_SIL, SIL, rows, skeleton, spans, wait_until


@pytest.fixture
def gallery(pg_url: str):
    made = Gallery.create(pg_url, card())
    yield made
    made.close()


def test_a_channel_on_postgresql_is_bound_searched_and_refuses_another_model(gallery: Gallery):
    ana, bo = skeleton(gallery, "Ana", 1), skeleton(gallery, "Bo", 2)
    assert gallery.store.channel_model(SILHOUETTE) is None and gallery.store.channels() == {}
    generation = gallery.store.generation()
    gallery.enroll_channel(SILHOUETTE, ana, rows([1, 0, 0, 0], [3, 0, 0, 0]), spans("cam", "7", 2), SIL)
    gallery.enroll_channel(SILHOUETTE, ana, rows([0, 0, 0, 4]), spans("cam", "8", 1), SIL)
    gallery.enroll_channel(SILHOUETTE, bo, rows([0, 2, 0, 0]), spans("cam", "7", 1), SIL)
    assert gallery.store.generation() == generation + 3
    assert gallery.store.channel_model(SILHOUETTE) == gallery.channel_model(SILHOUETTE) == model_binding(SIL)
    with pytest.raises(InputError, match=r"silhouette channel was filled by selfgait\.onnx") as refused:
        gallery.enroll_channel(SILHOUETTE, ana, rows([0, 0, 1, 0]), spans("cam", "9", 1), OTHER_SIL)
    assert "\n" not in str(refused.value) and gallery.store.where in str(refused.value)
    with pytest.raises(InputError, match=r"expected \[n, 4\]"):
        gallery.enroll_channel(SILHOUETTE, ana, rows([0, 0, 1]), spans("cam", "9", 1), SIL)
    assert gallery.store.generation() == generation + 3  # nothing refused was written

    means = gallery.store.channel_track_means(SILHOUETTE)
    assert means.owners.tolist() == [ana, ana, bo] and means.counts.tolist() == [2, 1, 1]
    np.testing.assert_allclose(means.means, [[2, 0, 0, 0], [0, 0, 0, 4], [0, 2, 0, 0]])
    labels, _, counts = gallery.store.channel_track_summary(SILHOUETTE)
    assert labels.tolist() == means.labels.tolist() and counts.tolist() == [2, 1, 1]
    assert gallery.store.channel_counts(SILHOUETTE) == {ana: 3, bo: 1} and gallery.store.count() == 6
    found = gallery.search_channel_many(SILHOUETTE, rows([0, 0, 0, 3]), 2)
    assert found == [[Match(ana, pytest.approx(1.0), -1), Match(bo, pytest.approx(np.sqrt(13)), -1)]]


def test_merge_remove_and_re_embedding_on_postgresql(gallery: Gallery, pg_url: str):
    ana, twin, bo = skeleton(gallery, "Ana", 1), skeleton(gallery, "anonymous-1", 2), skeleton(gallery, "Bo", 3)
    gallery.enroll_channel(SILHOUETTE, ana, rows([1, 0, 0, 0]), spans("cam", "1", 1), SIL)
    gallery.enroll_channel(SILHOUETTE, twin, rows([0, 1, 0, 0], [0, 3, 0, 0]), spans("cam", "2", 2), SIL)
    gallery.enroll_channel(SILHOUETTE, bo, rows([0, 0, 1, 0]), spans("cam", "3", 1), SIL)
    gallery.rename(bo, "Bo Lima")
    gallery.merge(twin, ana)
    assert gallery.store.channel_counts(SILHOUETTE) == {ana: 3, bo: 1}
    assert gallery.search_channel_many(SILHOUETTE, rows([0, 2, 0, 0]), 1) == [[Match(ana, 0.0, -1)]]
    gallery.remove(bo)
    assert gallery.store.channel_counts(SILHOUETTE) == {ana: 3} and gallery.channel_identities(SILHOUETTE) == {ana}

    new_model = card("e" * 64, dim=8)
    assert gallery.store.rebind(new_model, lambda windows: np.ones((len(windows), 8), np.float32)) == 6
    store = PostgresStore(pg_url, writable=False)
    try:
        assert store.meta["model_sha256"] == "e" * 64 and store.channel_model(SILHOUETTE) == model_binding(SIL)
        vectors, origins = store.channel_rows(SILHOUETTE, ana)
        np.testing.assert_array_equal(vectors, rows([1, 0, 0, 0], [0, 1, 0, 0], [0, 3, 0, 0]))
        assert [o.track for o in origins] == ["1", "2", "2"]
    finally:
        store.close()


def test_migration_carries_the_channel_from_sqlite_to_postgresql_and_back(pg_url: str, tmp_path):
    original = Gallery.create(tmp_path / "site.db", card())
    ana, bo = skeleton(original, "Ana", 1), skeleton(original, "Bo", 2)
    original.enroll_channel(SILHOUETTE, ana, rows([1, 2, 3, 4], [5, 6, 7, 8]), spans("cam", "1", 2), SIL)
    original.enroll_channel(SILHOUETTE, bo, rows([0, 0, 0, 1]), spans("hall", None, 1), SIL)
    original.close()
    assert migrate(tmp_path / "site.db", pg_url, show_progress=False) == (2, 6)
    assert migrate(pg_url, tmp_path / "back.db", show_progress=False) == (2, 6)
    before, middle, after = (
        GalleryStore(tmp_path / "site.db"),
        PostgresStore(pg_url),
        GalleryStore(tmp_path / "back.db"),
    )
    try:
        for copy in (middle, after):
            assert copy.channels() == {SILHOUETTE: model_binding(SIL)}
            for identity in (ana, bo):  # ids are given anew in the source's order: the same here
                vectors, origins = before.channel_rows(SILHOUETTE, identity)
                copied, copied_origins = copy.channel_rows(SILHOUETTE, identity)
                np.testing.assert_array_equal(vectors, copied)
                assert origins == copied_origins
        assert middle.channel_counts(SILHOUETTE) == {ana: 2, bo: 1}
    finally:
        for store in (before, middle, after):
            store.close()


def test_a_replica_takes_other_nodes_channel_enrollments_from_their_notifications(pg_url: str):
    import psycopg

    writer = Gallery.create(pg_url, card())
    ana, bo = skeleton(writer, "Ana", 1), skeleton(writer, "Bo", 2)
    reader = Gallery.open(pg_url, card())  # opened before the channel is bound
    follower = Follower(reader).start()
    try:
        assert follower.wait_connected(30)
        with psycopg.connect(pg_url, autocommit=True) as listener:
            listener.execute(f"LISTEN {CHANNEL}")
            writer.enroll_channel(SILHOUETTE, ana, rows([1, 0, 0, 0]), spans("cam", "1", 1), SIL)
            [note] = list(listener.notifies(timeout=10, stop_after=1))
        assert json.loads(note.payload) | {"generation": 0} == {"generation": 0, "identity": ana, "change": "channel"}
        assert wait_until(lambda: reader.channel_identities(SILHOUETTE) == {ana}), "never reached the replica"
        assert reader.channel_model(SILHOUETTE) == model_binding(SIL)
        writer.enroll_channel(SILHOUETTE, bo, rows([0, 1, 0, 0]), spans("cam", "2", 1), SIL)
        writer.enroll_channel(SILHOUETTE, bo, rows([0, 3, 0, 0]), spans("cam", "2", 1), SIL)  # the same track
        assert wait_until(lambda: reader.search_channel_many(SILHOUETTE, rows([0, 2, 0, 0]), 1)[0][0].distance < 1e-6)
        writer.merge(bo, ana)  # two notifications: bo gone, then ana grown
        assert wait_until(lambda: follower.generation == writer.store.written)  # set once a change is applied
        assert reader.channel_identities(SILHOUETTE) == {ana}
        assert reader.search_channel_many(SILHOUETTE, rows([0, 2, 0, 0]), 1) == [[Match(ana, 0.0, -1)]]
        writer.remove(ana)
        assert wait_until(lambda: reader.channel_identities(SILHOUETTE) == set())
        assert follower.catch_ups == 1  # the one at connecting: every change was applied as notified
    finally:
        follower.stop()
        writer.close()
        reader.close()


def test_a_database_made_before_the_table_reads_as_empty_and_gets_it_on_its_first_enroll(pg_url: str):
    import psycopg

    gallery = Gallery.create(pg_url, card())
    ana = skeleton(gallery, "Ana", 1)
    gallery.close()
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("DROP TABLE channel_embeddings")
    read_only = Gallery.open(pg_url, writable=False)
    try:
        assert read_only.store.channels() == {} and read_only.store.channel_counts(SILHOUETTE) == {}
        assert read_only.search_channel_many(SILHOUETTE, rows([1, 0, 0, 0]), 2) == [[]]
        with pytest.raises(InputError, match="read-only"):
            read_only.enroll_channel(SILHOUETTE, ana, rows([1, 0, 0, 0]), spans("cam", "1", 1), SIL)
    finally:
        read_only.close()
    writer = Gallery.open(pg_url)
    try:
        writer.merge(writer.add_identity("twin"), ana)  # no table yet: nothing to move, no error
        writer.enroll_channel(SILHOUETTE, ana, rows([1, 0, 0, 0]), [Origin("cam", "1")], SIL)
        assert writer.store.channel_counts(SILHOUETTE) == {ana: 1}
        assert writer.search_channel_many(SILHOUETTE, rows([1, 0, 0, 0]), 2) == [[Match(ana, 0.0, -1)]]
    finally:
        writer.close()
