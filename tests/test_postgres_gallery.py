"""The shared gallery on a real PostgreSQL server: the gallery contract, migration, replicas kept current by
LISTEN/NOTIFY, concurrent enrollment, and nodes that go on matching while the database is down."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sensors.errors import InputError
from stream.gallery.follow import Follower
from stream.gallery.gallery import Gallery
from stream.gallery.migrate import migrate
from stream.gallery.store import GalleryStore, Origin
from tests.helpers import assert_one_line_error, gaitwatch
from tests.postgres import Server

CARD = {
    "file": {"sha256": "c" * 64, "name": "test-model.onnx"},
    "method": "trackcon",
    "embedding_dim": 8,
    "metric": "euclidean",
    "f": 6,
}


def vectors(seed: int, n: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, CARD["embedding_dim"])).astype(np.float32)


def windows(n: int) -> list[np.ndarray]:
    return [np.full((6, 20, 3), i, np.float32) for i in range(n)]


def enroll_person(gallery: Gallery, name: str, seed: int, track: str = "t1") -> int:
    identity = gallery.add_identity(name, {"seed": seed})
    rows = vectors(seed)
    origins = [Origin("door", track, float(i), float(i) + 0.2, w) for i, w in enumerate(windows(len(rows)))]
    gallery.enroll(identity, rows, origins)
    return identity


def test_the_gallery_commands_work_on_a_postgresql_url(pg_url: str, tmp_path: Path):
    from engines.runtime.load import open_encoder
    from sensors.demo import demo_recording_path

    gaitwatch("gallery", "create", pg_url)
    enrolled = gaitwatch("gallery", "enroll", pg_url, demo_recording_path(), "--label", "subject")
    assert "enrolled" in enrolled.stdout
    listed = gaitwatch("gallery", "list", pg_url).stdout
    assert listed.count("\n") >= 8
    gaitwatch("gallery", "rename", pg_url, "id:1", "first person")
    assert "first person" in gaitwatch("gallery", "show", pg_url, "id:1").stdout
    gaitwatch("gallery", "remove", pg_url, "id:2")
    assert "id:2" not in gaitwatch("gallery", "list", pg_url).stdout.replace("id:20", "")
    stats = gaitwatch("gallery", "stats", pg_url).stdout
    assert "identities: 7" in stats
    exported = tmp_path / "site.npz"
    gaitwatch("gallery", "export", pg_url, exported)
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600
    copy = tmp_path / "copy.db"
    gaitwatch("gallery", "create", copy)
    assert "imported 7 identities" in gaitwatch("gallery", "import", copy, exported).stdout
    encoder = open_encoder(None)
    store = GalleryStore(copy)
    assert store.count() == Gallery.open(pg_url, encoder.card).store.count()


def test_a_postgresql_gallery_refuses_another_models_embeddings_and_a_second_create(pg_url: str):
    Gallery.create(pg_url, CARD).close()
    card = {**CARD, "file": {"sha256": "d" * 64, "name": "other.onnx"}}
    with pytest.raises(InputError, match=r"filled by test-model\.onnx"):
        Gallery.open(pg_url, card)
    with pytest.raises(InputError, match="already holds a gallery"):
        Gallery.create(pg_url, CARD)


def test_a_password_on_the_command_line_is_refused_and_a_missing_one_is_one_clear_error(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
):
    with_password = pg_url.replace("gaitwatch@", "gaitwatch:secret@")
    ran = gaitwatch("gallery", "list", with_password, ok=False)
    assert_one_line_error(ran, "PGPASSWORD")
    assert "secret" not in ran.stderr
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    assert_one_line_error(gaitwatch("gallery", "list", pg_url, ok=False), "cannot reach")


def test_migration_copies_everything_from_sqlite_to_postgresql_and_back(pg_url: str, tmp_path: Path):
    original = Gallery.create(tmp_path / "site.db", CARD)
    people = {name: enroll_person(original, name, seed) for seed, name in enumerate(["ada", "bo", "cy"])}
    original.add_anonymous()
    original.close()
    assert migrate(tmp_path / "site.db", pg_url, show_progress=False) == (4, 18)
    assert migrate(pg_url, tmp_path / "back.db", show_progress=False) == (4, 18)
    before, after = GalleryStore(tmp_path / "site.db"), GalleryStore(tmp_path / "back.db")
    assert [(i.name, i.attributes, i.anonymous) for i in before.identities()] == [
        (i.name, i.attributes, i.anonymous) for i in after.identities()
    ]
    assert before.meta["model_sha256"] == after.meta["model_sha256"]
    for identity in people.values():
        rows, origins = before.enrolled_rows(identity)
        copied, copied_origins = after.enrolled_rows(identity)
        np.testing.assert_array_equal(rows, copied)
        assert [(o.source, o.track, o.t_start) for o in origins] == [
            (o.source, o.track, o.t_start) for o in copied_origins
        ]
        np.testing.assert_array_equal(
            np.stack([o.window for o in origins]), np.stack([o.window for o in copied_origins])
        )
    assert set(before.origins().values()) == set(after.origins().values())  # an import knows who is here already
    assert stat.S_IMODE((tmp_path / "back.db").stat().st_mode) == 0o600
    with pytest.raises(InputError, match="already"):
        migrate(tmp_path / "site.db", pg_url, show_progress=False)


def test_an_enrollment_on_one_node_is_matched_on_another_through_its_replica(pg_url: str):
    writer = Gallery.create(pg_url, CARD)
    reader = Gallery.open(pg_url, CARD)
    follower = Follower(reader).start()
    try:
        assert follower.wait_connected(30)
        assert reader.search_tracks(vectors(7).mean(0)) == []
        identity = enroll_person(writer, "dee", 7)
        assert wait_until(lambda: reader.search_tracks(vectors(7).mean(0)), 10), "never reached the replica"
        [match] = reader.search_tracks(vectors(7).mean(0), k=1)
        assert match.identity == identity and reader.name_of(identity) == "dee"
        writer.rename(identity, "dee dee")
        assert wait_until(lambda: reader.name_of(identity) == "dee dee", 10)
        writer.remove(identity)
        assert wait_until(lambda: reader.search_tracks(vectors(7).mean(0)) == [], 10)
        assert follower.applied >= 3
    finally:
        follower.stop()
        writer.close()
        reader.close()
    replicas = Path(os.environ["GAITWATCH_REPLICA_DIR"])  # this machine's saved index files: biometric too
    saved = [p for p in replicas.iterdir() if p.is_file()]
    assert saved and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in saved)
    assert stat.S_IMODE(replicas.stat().st_mode) == 0o700


def test_enrollment_from_two_nodes_at_once_loses_nothing(pg_url: str):
    Gallery.create(pg_url, CARD).close()
    nodes = [Gallery.open(pg_url, CARD) for _ in range(2)]
    made: list[list[int]] = [[], []]

    def enroll_many(node: int) -> None:
        for i in range(20):
            identity = nodes[node].add_anonymous({"node": node})
            nodes[node].enroll(identity, vectors(100 * node + i, 3), [Origin(f"node{node}", str(i))] * 3)
            made[node].append(identity)

    threads = [threading.Thread(target=enroll_many, args=(node,)) for node in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store = Gallery.open(pg_url, CARD).store
    identities = store.identities()
    assert len(identities) == 40 and sorted(i.id for i in identities) == sorted(made[0] + made[1])
    assert sorted(i.name for i in identities) == sorted(f"anonymous-{n}" for n in range(1, 41))  # none twice
    assert all(i.embeddings == 3 for i in identities) and store.count() == 120
    assert store.generation() == 80
    for node in nodes:
        node.close()


def test_a_replica_matches_while_the_database_is_down_and_catches_up_when_it_returns(postgres: Server, pg_url: str):
    writer = Gallery.create(pg_url, CARD)
    first = enroll_person(writer, "eve", 11)
    writer.close()
    reader = Gallery.open(pg_url, CARD)
    follower = Follower(reader).start()
    try:
        assert follower.wait_connected(30)
        postgres.stop()
        try:
            assert wait_until(lambda: not follower.connected.is_set(), 30)
            [match] = reader.search_tracks(vectors(11).mean(0), k=1)  # no database needed to decide
            assert match.identity == first and reader.name_of(first) == "eve"
            with pytest.raises(InputError, match="cannot reach"):
                reader.add_anonymous()
        finally:
            postgres.start()
        assert follower.wait_connected(60), "the replica never came back"
        writer = Gallery.open(pg_url, CARD)
        second = enroll_person(writer, "fay", 12)
        writer.close()
        assert wait_until(lambda: any(m.identity == second for m in reader.search_tracks(vectors(12).mean(0))), 10)
        assert reader.add_anonymous() > second  # enrollments work again from the same process
    finally:
        follower.stop()
        reader.close()


def wait_until(condition, deadline_s: float):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if result := condition():
            return result
        time.sleep(0.01)
    return None


def test_a_postgresql_gallery_is_reembedded_with_another_model(pg_url: str):
    from engines.runtime.load import SHIPPED_SIMMC, open_encoder
    from sensors.demo import demo_recording_path

    gaitwatch("gallery", "create", pg_url)
    gaitwatch("gallery", "enroll", pg_url, demo_recording_path(), "--label", "subject", "--keep-windows")
    before = Gallery.open(pg_url)
    tracks, count = len(before.tracks), before.store.count()
    before.close()
    assert "re-embedded" in gaitwatch("gallery", "reembed", pg_url, "--model", SHIPPED_SIMMC).stdout
    simmc = open_encoder(SHIPPED_SIMMC)
    after = Gallery.open(pg_url, simmc.card)
    assert after.store.count() == count and len(after.tracks) == tracks
    assert after.store.dim == simmc.embedding_dim
    vectors, origins = after.store.enrolled_rows(1)
    windows = np.stack([o.window for o in origins])
    np.testing.assert_allclose(vectors, simmc.encode(windows), atol=1e-5)  # the stored vectors are the new model's
    after.close()


def test_calibrate_site_on_a_postgresql_gallery_gives_the_threshold_of_its_sqlite_copy(pg_url: str, tmp_path: Path):
    import json

    from sensors.demo import demo_recording_path

    local = tmp_path / "site.db"
    gaitwatch("gallery", "create", local)
    gaitwatch("gallery", "enroll", local, demo_recording_path(), "--label", "subject")
    gaitwatch("gallery", "migrate", local, pg_url)
    thresholds = []
    for gallery, out in ((local, tmp_path / "file"), (pg_url, tmp_path / "url")):
        gaitwatch("calibrate", "site", demo_recording_path(), "--gallery", gallery, "--out", out, "--far", "0.01")
        thresholds.append(json.loads((out / "threshold.json").read_text())["matcher"]["thresholds"])
    assert [t["target_far"] for t in thresholds[1]] == [t["target_far"] for t in thresholds[0]]
    for from_url, from_file in zip(thresholds[1], thresholds[0], strict=True):
        assert from_url["threshold"] == pytest.approx(from_file["threshold"], rel=1e-5, abs=1e-9)


def test_naming_an_anonymous_identity_on_postgresql_makes_it_a_named_one(pg_url: str):
    gallery = Gallery.create(pg_url, CARD)
    try:
        identity = gallery.add_anonymous()
        assert gallery.store.identity(identity).anonymous
        gallery.rename(identity, "Ana")
        assert not gallery.store.identity(identity).anonymous
    finally:
        gallery.close()
