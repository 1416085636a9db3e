"""The silhouette channel of a SQLite gallery: bound to its own model, its track means searched exactly, kept by
merge, remove, re-embedding and migration, reaching a node through the poller, read from galleries made before
it, and filled from a recording's .gwsil by ``gaitwatch gallery enroll --silhouette-model``."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from engines import track_distance
from sensors.errors import InputError
from stream.gallery.channel import SILHOUETTE, ChannelIndex
from stream.gallery.gallery import Gallery, Match
from stream.gallery.location import open_store
from stream.gallery.migrate import migrate
from stream.gallery.store import GalleryStore, Origin, TrackMeans, model_binding
from tests.helpers import assert_one_line_error, card, exact_nearest_identities, gaitwatch

SIL = {"file": {"sha256": "5" * 64, "name": "selfgait.onnx"}, "method": "selfgait", "embedding_dim": 4}
SIL |= {"metric": "euclidean", "f": 30}
OTHER_SIL = {**SIL, "file": {"sha256": "6" * 64, "name": "other.onnx"}}


def spans(source: str, track: str | None, n: int) -> list[Origin]:
    return [Origin(source, track, float(i), float(i) + 1.0) for i in range(n)]


def rows(*vectors) -> np.ndarray:
    return np.asarray(vectors, np.float32)


def skeleton(gallery: Gallery, name: str, seed: int) -> int:
    """An identity with a few skeleton embeddings (of the gallery's own model, D = 16)."""
    identity = gallery.add_identity(name)
    vectors = np.random.default_rng(seed).normal(size=(3, 16)).astype(np.float32)
    windows = [np.full((6, 20, 3), i, np.float32) for i in range(3)]
    gallery.enroll(identity, vectors, [Origin("door", "1", 0.0, 0.2, w) for w in windows])
    return identity


@pytest.fixture
def gallery(tmp_path: Path):
    made = Gallery.create(tmp_path / "people.db", card())
    yield made
    made.close()


def wait_until(condition, deadline_s: float = 30.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if result := condition():
            return result
        time.sleep(0.02)
    return None


def test_the_first_enroll_binds_the_channel_and_another_model_is_refused(gallery: Gallery):
    ana = skeleton(gallery, "Ana", 1)
    assert gallery.channel_model(SILHOUETTE) is None and gallery.store.channel_model(SILHOUETTE) is None
    generation = gallery.store.generation()
    ids = gallery.enroll_channel(SILHOUETTE, ana, rows([1, 0, 0, 0], [0, 1, 0, 0]), spans("cam", "4", 2), SIL)
    assert len(ids) == 2 and gallery.store.generation() == generation + 1  # binding and rows: one write
    assert gallery.channel_model(SILHOUETTE) == gallery.store.channel_model(SILHOUETTE) == model_binding(SIL)
    assert gallery.store.channels() == {SILHOUETTE: model_binding(SIL)}
    gallery.store.check_model(card())  # the skeleton binding is the gallery's own, as it was

    with pytest.raises(InputError) as refused:
        gallery.enroll_channel(SILHOUETTE, ana, rows([0, 0, 1, 0]), spans("cam", "5", 1), OTHER_SIL)
    message = str(refused.value)
    assert "\n" not in message and "silhouette channel" in message and "selfgait.onnx" in message
    assert "other.onnx" in message
    for bad, needle in [
        (rows([1, 0, 0]), "expected [n, 4]"),
        (rows([np.nan, 0, 0, 0]), "NaN"),
    ]:
        with pytest.raises(InputError, match=needle.replace("[", r"\[")):
            gallery.enroll_channel(SILHOUETTE, ana, bad, spans("cam", "5", 1), SIL)
    with pytest.raises(InputError, match="no identity 99"):
        gallery.enroll_channel(SILHOUETTE, 99, rows([0, 0, 1, 0]), spans("cam", "5", 1), SIL)
    with pytest.raises(InputError, match="not a channel name"):
        gallery.enroll_channel("Silhouette; DROP", ana, rows([0, 0, 1, 0]), spans("cam", "5", 1), SIL)
    assert gallery.store.channel_counts(SILHOUETTE) == {ana: 2}  # nothing refused was written
    assert gallery.store.generation() == generation + 1
    with pytest.raises(InputError, match=r"silhouette channel was filled by selfgait\.onnx"):
        gallery.check_channel_model(SILHOUETTE, OTHER_SIL)


def test_track_means_and_nearest_identities_on_known_vectors(gallery: Gallery):
    ana, bo = skeleton(gallery, "Ana", 1), skeleton(gallery, "Bo", 2)
    assert gallery.search_channel_many(SILHOUETTE, rows([1, 0, 0, 0], [0, 1, 0, 0]), 3) == [[], []]  # unbound
    assert gallery.channel_identities(SILHOUETTE) == set() and gallery.channel_scale(SILHOUETTE) is None
    gallery.enroll_channel(SILHOUETTE, ana, rows([1, 0, 0, 0], [3, 0, 0, 0]), spans("cam", "7", 2), SIL)
    gallery.enroll_channel(SILHOUETTE, ana, rows([0, 0, 0, 4]), spans("cam", "8", 1), SIL)
    last = gallery.enroll_channel(SILHOUETTE, bo, rows([0, 2, 0, 0]), spans("cam", "7", 1), SIL)  # same track name

    means = gallery.store.channel_track_means(SILHOUETTE)
    assert means.owners.tolist() == [ana, ana, bo] and means.counts.tolist() == [2, 1, 1]
    assert means.labels[-1] == last[0] and list(means.labels) == sorted(means.labels)
    np.testing.assert_allclose(means.means, [[2, 0, 0, 0], [0, 0, 0, 4], [0, 2, 0, 0]])
    assert gallery.store.channel_track_means(SILHOUETTE, bo).owners.tolist() == [bo]
    labels, owners, counts = gallery.store.channel_track_summary(SILHOUETTE)
    assert (
        labels.tolist() == means.labels.tolist() and owners.tolist() == [ana, ana, bo] and counts.tolist() == [2, 1, 1]
    )
    assert gallery.store.channel_counts(SILHOUETTE) == {ana: 3, bo: 1}
    assert gallery.store.count() == 6  # the skeleton's embeddings alone

    found = gallery.search_channel_many(SILHOUETTE, rows([2, 0, 0, 0], [0, 0, 0, 3]), 3)
    assert found[0] == [Match(ana, 0.0, -1), Match(bo, pytest.approx(np.sqrt(8)), -1)]
    assert found[1] == [Match(ana, pytest.approx(1.0), -1), Match(bo, pytest.approx(np.sqrt(13)), -1)]
    assert gallery.search_channel_many(SILHOUETTE, rows([0, 2.5, 0, 0]), 1) == [[Match(bo, pytest.approx(0.5), -1)]]
    assert gallery.channel_identities(SILHOUETTE) == {ana, bo}
    with pytest.raises(InputError, match=r"expected \[B, 4\]"):
        gallery.search_channel_many(SILHOUETTE, rows([1, 0, 0]), 1)


def test_nearest_equals_brute_force_search_over_the_means_and_follows_replacements():
    rng = np.random.default_rng(3)
    owners = rng.integers(0, 40, 300)
    truth = TrackMeans(
        np.arange(300) * 2, owners, np.ones(300, np.int64), rng.normal(size=(300, 24)).astype(np.float32)
    )
    index = ChannelIndex(SILHOUETTE, truth)
    queries = rng.normal(size=(16, 24)).astype(np.float32)
    for got, expected in zip(index.nearest(queries, 5), exact_nearest_identities(truth, queries, 5), strict=True):
        assert [who for who, _ in got] == [who for who, _ in expected]
        np.testing.assert_allclose([d for _, d in got], [d for _, d in expected], rtol=1e-6)
    who = int(owners[0])
    index.replace_identity(who, TrackMeans(np.array([999]), np.array([who]), np.array([3]), queries[:1]))
    assert index.nearest(queries[:1], 1) == [[(who, pytest.approx(0.0, abs=1e-5))]]
    assert len(index) == 300 - int((owners == who).sum()) + 1
    index.remove_identity(who)
    assert who not in index.identities() and all(w != who for w, _ in index.nearest(queries[:1], 40)[0])


def test_the_impostor_scale_is_the_median_distance_between_different_people(monkeypatch):
    def index(owners: list[int], xs: list[float]) -> ChannelIndex:
        means = np.zeros((len(xs), 2), np.float32)
        means[:, 0] = xs
        n = len(xs)
        return ChannelIndex(SILHOUETTE, TrackMeans(np.arange(n), np.array(owners), np.ones(n, np.int64), means))

    # pairs of different people: 3, 7, 2, 6, 4 -> median 4; the pair (0, 1) is one person, left out
    assert index([1, 1, 2, 3], [0, 1, 3, 7]).impostor_scale() == pytest.approx(4.0)
    assert index([1, 1], [0, 5]).impostor_scale() is None
    assert index([], []).impostor_scale() is None
    rng = np.random.default_rng(4)
    owners, means = rng.integers(0, 6, 50), rng.normal(size=(50, 8))
    distances = np.sqrt(((means[:, None] - means[None]) ** 2).sum(-1))
    upper = np.triu(np.ones((50, 50), bool), 1) & (owners[:, None] != owners[None])
    monkeypatch.setattr(track_distance, "MAX_PAIRS", 300)  # fewer than the 1,225 pairs: a sample of them
    scaled = ChannelIndex(
        SILHOUETTE, TrackMeans(np.arange(50), owners, np.ones(50, np.int64), means.astype(np.float32))
    )
    assert scaled.impostor_scale() == pytest.approx(np.median(distances[upper]), rel=0.1)


def test_merge_moves_the_channel_remove_drops_it_rename_leaves_it(gallery: Gallery):
    ana, twin, bo = skeleton(gallery, "Ana", 1), skeleton(gallery, "anonymous-1", 2), skeleton(gallery, "Bo", 3)
    gallery.enroll_channel(SILHOUETTE, ana, rows([1, 0, 0, 0]), spans("cam", "1", 1), SIL)
    gallery.enroll_channel(SILHOUETTE, twin, rows([0, 1, 0, 0], [0, 3, 0, 0]), spans("cam", "2", 2), SIL)
    gallery.enroll_channel(SILHOUETTE, bo, rows([0, 0, 1, 0]), spans("cam", "3", 1), SIL)
    gallery.rename(bo, "Bo Lima")
    assert gallery.store.channel_counts(SILHOUETTE) == {ana: 1, twin: 2, bo: 1}
    gallery.merge(twin, ana)
    assert gallery.store.channel_counts(SILHOUETTE) == {ana: 3, bo: 1}
    assert gallery.search_channel_many(SILHOUETTE, rows([0, 2, 0, 0]), 1) == [[Match(ana, 0.0, -1)]]
    gallery.remove(bo)
    assert gallery.store.channel_counts(SILHOUETTE) == {ana: 3} and gallery.channel_identities(SILHOUETTE) == {ana}
    with sqlite3.connect(gallery.store.path) as db:  # the rows are gone, not hidden (foreign keys on: cascade)
        assert db.execute("SELECT COUNT(*) FROM channel_embeddings WHERE identity = ?", (bo,)).fetchone()[0] == 0
    gallery.close()
    reopened = Gallery.open(gallery.store.path)
    try:
        assert reopened.channel_identities(SILHOUETTE) == {ana}
        np.testing.assert_allclose(reopened.search_channel_many(SILHOUETTE, rows([0, 2, 0, 0]), 1)[0][0].distance, 0)
    finally:
        reopened.close()


def test_re_embedding_the_skeleton_leaves_the_channel_as_it_was(tmp_path: Path):
    path = tmp_path / "people.db"
    gallery = Gallery.create(path, card())
    ana = skeleton(gallery, "Ana", 1)
    gallery.enroll_channel(SILHOUETTE, ana, rows([1, 2, 3, 4], [5, 6, 7, 8]), spans("cam", "1", 2), SIL)
    gallery.close()
    store = GalleryStore(path)
    new_model = card("e" * 64, dim=8)
    assert store.rebind(new_model, lambda windows: np.ones((len(windows), 8), np.float32)) == 3
    assert store.meta["model_sha256"] == "e" * 64 and store.dim == 8
    assert store.channel_model(SILHOUETTE) == model_binding(SIL)
    vectors, origins = store.channel_rows(SILHOUETTE, ana)
    np.testing.assert_array_equal(vectors, rows([1, 2, 3, 4], [5, 6, 7, 8]))
    assert [(o.source, o.track, o.t_start) for o in origins] == [("cam", "1", 0.0), ("cam", "1", 1.0)]
    store.close()
    reopened = Gallery.open(path, new_model)
    try:
        assert reopened.search_channel_many(SILHOUETTE, rows([3, 4, 5, 6]), 1) == [[Match(ana, 0.0, -1)]]
    finally:
        reopened.close()


def test_migration_copies_the_channel_binding_and_rows(tmp_path: Path):
    gallery = Gallery.create(tmp_path / "site.db", card())
    skeleton(gallery, "Ana", 1)
    bo = skeleton(gallery, "Bo", 2)
    gallery.enroll_channel(SILHOUETTE, bo, rows([1, 2, 3, 4]), spans("cam", "9", 1), SIL)
    gallery.close()
    assert migrate(tmp_path / "site.db", tmp_path / "copy.db", show_progress=False) == (2, 6)
    copy = GalleryStore(tmp_path / "copy.db")
    assert copy.channels() == {SILHOUETTE: model_binding(SIL)}
    copied = {i.name: i.id for i in copy.identities()}
    assert copy.channel_counts(SILHOUETTE) == {copied["Bo"]: 1}
    vectors, origins = copy.channel_rows(SILHOUETTE, copied["Bo"])
    np.testing.assert_array_equal(vectors, rows([1, 2, 3, 4]))
    assert origins == [Origin("cam", "9", 0.0, 1.0)]
    assert copy.channel_rows(SILHOUETTE, copied["Ana"])[0].shape == (0, 4)
    copy.close()


def test_another_process_s_channel_enrollment_reaches_a_node_through_the_poller(tmp_path: Path):
    from stream.gallery.poll import Poller

    path = tmp_path / "people.db"
    node = Gallery.create(path, card())
    ana, bo = skeleton(node, "Ana", 1), skeleton(node, "Bo", 2)
    poller = Poller(node, period_s=0.05).start()
    other = open_store(path, writable=True)  # a shell's `gaitwatch gallery enroll --silhouette-model`
    try:
        other.add_channel_embeddings(SILHOUETTE, ana, rows([1, 0, 0, 0]), spans("cam", "1", 1), SIL)
        assert wait_until(lambda: node.channel_identities(SILHOUETTE) == {ana}), "the node never saw the enroll"
        assert node.channel_model(SILHOUETTE) == model_binding(SIL)
        other.add_channel_embeddings(SILHOUETTE, bo, rows([0, 1, 0, 0]), spans("cam", "2", 1), SIL)
        assert wait_until(lambda: node.channel_identities(SILHOUETTE) == {ana, bo})
        other.add_channel_embeddings(SILHOUETTE, bo, rows([0, 3, 0, 0]), spans("cam", "2", 1), SIL)  # same track
        assert wait_until(lambda: node.search_channel_many(SILHOUETTE, rows([0, 2, 0, 0]), 1)[0][0].distance < 1e-6)
        other.merge(bo, ana)
        assert wait_until(lambda: node.channel_identities(SILHOUETTE) == {ana})
        assert node.search_channel_many(SILHOUETTE, rows([0, 2, 0, 0]), 1) == [[Match(ana, 0.0, -1)]]
        catch_ups = poller.catch_ups
        node.enroll_channel(SILHOUETTE, ana, rows([0, 0, 5, 0]), spans("cam", "3", 1), SIL)  # its own write
        time.sleep(0.3)
        assert (
            poller.catch_ups == catch_ups and len(node.search_channel_many(SILHOUETTE, rows([0, 0, 5, 0]), 2)[0]) == 1
        )
    finally:
        poller.stop()
        other.close()
        node.close()


def test_a_gallery_made_before_the_table_reads_as_empty_and_gets_it_on_its_first_enroll(tmp_path: Path):
    path = tmp_path / "old.db"
    gallery = Gallery.create(path, card())
    ana = skeleton(gallery, "Ana", 1)
    gallery.close()
    with sqlite3.connect(path) as db:  # as a gallery made before the channel: no table, no binding
        db.execute("DROP TABLE channel_embeddings")
    read_only = Gallery.open(path, writable=False)
    try:
        assert read_only.store.channels() == {} and read_only.store.channel_counts(SILHOUETTE) == {}
        assert read_only.store.channel_track_means(SILHOUETTE).labels.tolist() == []
        assert read_only.search_channel_many(SILHOUETTE, rows([1, 0, 0, 0]), 2) == [[]]
        with pytest.raises(InputError, match="read-only"):
            read_only.enroll_channel(SILHOUETTE, ana, rows([1, 0, 0, 0]), spans("cam", "1", 1), SIL)
    finally:
        read_only.close()
    listed = json.loads(gaitwatch("gallery", "list", path, "--json").stdout)
    assert listed[0]["embeddings"] == 3 and "silhouette_embeddings" not in listed[0]
    writer = Gallery.open(path)
    try:
        writer.enroll_channel(SILHOUETTE, ana, rows([1, 0, 0, 0]), spans("cam", "1", 1), SIL)
        assert writer.store.channel_counts(SILHOUETTE) == {ana: 1}
    finally:
        writer.close()


# --- the command line: enroll from a recording and its .gwsil --------------------------------------------------


@pytest.fixture(scope="module")
def silhouette_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two tiny seeded selfgait runs (two models of one kind, different weights)."""
    pytest.importorskip("torch", reason="torch not installed (the train extra)")
    from engines.train.selfgait_run import train_selfgait
    from sensors.formats.opengait_pkl import write_pkl
    from tests.test_selfgait import walk

    tiny = {"frames": 3, "batch_size": 3, "dim": 8, "hidden": 32, "projection": 16, "steps_per_epoch": 1, "epochs": 1}
    data = tmp_path_factory.mktemp("walkers")
    for subject, build in (("001", 0), ("002", 2), ("003", 4)):
        write_pkl(data / subject / "nm-01" / "090" / "090.pkl", walk(build, 8))
    runs = []
    for seed in (1, 2):
        out = tmp_path_factory.mktemp(f"run{seed}")
        train_selfgait(data, out, seed=seed, config_overrides=tiny, show_progress=False)
        runs.append(out)
    return runs[0], runs[1]


def walkers(folder: Path, frames: int = 40, silhouettes: bool = True) -> Path:
    """Two walks of the demo recording (subjects 05 and 06) as one .gwrec, and a .gwsil beside it where asked:
    each person's silhouettes a bar of their own place and width, moving a little frame by frame."""
    from sensors.demo import demo_recording_path
    from sensors.formats.gwrec import read_gwrec, write_recording
    from sensors.formats.gwsil import SilhouetteWriter, companion
    from sensors.recording import Recording

    demo = read_gwrec(demo_recording_path())
    walks = []
    for track, subject in ((2, "05"), (3, "06")):
        _, joints, confidence = demo.track(track)
        walks.append(
            Recording.single_body(
                demo.layout, joints[:frames], 30.0, confidence=confidence[:frames], metadata={"subject": subject}
            )
        )
    recording = Recording.concatenate(walks)
    path = folder / "walk.gwrec"
    write_recording(path, recording)
    if silhouettes:
        with SilhouetteWriter(companion(path), method="mediapipe", sensor_id=recording.sensor_id) as writer:
            for frame in range(recording.num_frames):
                person = int(recording.track_ids[recording.body_offsets[frame]])
                mask = np.zeros((1, 64, 44), np.uint8)
                left = 6 + 20 * person + frame % 3
                mask[0, 4:60, left : left + 6 + 6 * person] = 255
                box = np.array([[0, 0, 40, 120]])
                writer.write(int(recording.seq[frame]), float(recording.t[frame]), np.arange(1), box, mask)
    return path


def test_enroll_with_a_gwsil_fills_the_silhouette_channel_of_each_track_s_identity(tmp_path: Path, silhouette_runs):
    from engines.runtime.load import open_silhouette_encoder
    from sensors.formats.gwrec import read_gwrec
    from sensors.formats.gwsil import companion, read_gwsil
    from sensors.silhouette_windows import track_silhouettes

    run, other_run = silhouette_runs
    path = tmp_path / "people.db"
    gaitwatch("gallery", "create", path)
    recording = walkers(tmp_path)
    out = gaitwatch("gallery", "enroll", path, recording, "--label", "subject", "--silhouette-model", run).stdout
    assert "of 2 tracks" in out and "76 silhouette windows of 2 tracks" in out  # (40 - 3) // 1 + 1 = 38 a track

    store = GalleryStore(path)
    encoder = open_silhouette_encoder(run)
    assert store.channel_model(SILHOUETTE) == model_binding(encoder.card)
    people = {i.name: i.id for i in store.identities()}
    assert set(people) == {"05", "06"} and store.channel_counts(SILHOUETTE) == {people["05"]: 38, people["06"]: 38}
    cuts = {c.track: c for c in track_silhouettes(read_gwsil(companion(recording)), read_gwrec(recording), 3, 1)}
    for track, name in enumerate(("05", "06")):
        vectors, origins = store.channel_rows(SILHOUETTE, people[name])
        _, skeleton_origins = store.enrolled_rows(people[name])
        assert {(o.source, o.track) for o in origins} == {(o.source, o.track) for o in skeleton_origins}
        np.testing.assert_allclose(vectors, encoder.encode(cuts[track].windows), rtol=1e-4, atol=1e-5)
        assert [o.t_start for o in origins] == pytest.approx(cuts[track].t_start.tolist())
    generation = store.generation()
    store.close()

    listed = json.loads(gaitwatch("gallery", "list", path, "--json").stdout)
    assert [(p["name"], p["silhouette_embeddings"]) for p in listed] == [("05", 38), ("06", 38)]
    assert "silhouette" in gaitwatch("gallery", "list", path).stdout.splitlines()[0]
    shown = json.loads(gaitwatch("gallery", "show", path, "06").stdout)
    assert shown["channels"]["silhouette"]["embeddings"] == 38
    assert shown["channels"]["silhouette"]["model"]["model_sha256"] == encoder.card["file"]["sha256"]
    stats = json.loads(gaitwatch("gallery", "stats", path, "--json").stdout)
    assert stats["channels"]["silhouette"] | {"model": None} == {
        "identities": 2,
        "embeddings": 76,
        "tracks": 2,
        "model": None,
    }
    assert stats["channels"]["silhouette"]["model"]["dim"] == encoder.embedding_dim

    refused = gaitwatch("gallery", "enroll", path, recording, "--silhouette-model", other_run, ok=False)
    assert_one_line_error(refused, "silhouette channel was filled by model.pt", str(path))
    assert GalleryStore(path).generation() == generation  # nothing written
    assert_one_line_error(
        gaitwatch("gallery", "export", path, tmp_path / "people.npz", ok=False),
        "76 silhouette embeddings",
        "gaitwatch gallery migrate",
    )
    assert not (tmp_path / "people.npz").exists()
    copied = gaitwatch("gallery", "migrate", path, tmp_path / "copy.db").stdout
    assert "76 silhouette embeddings" in copied


def test_enroll_without_a_gwsil_warns_in_one_line_and_enrolls_the_skeletons(tmp_path: Path, silhouette_runs):
    run, _ = silhouette_runs
    path = tmp_path / "people.db"
    gaitwatch("gallery", "create", path)
    recording = walkers(tmp_path, silhouettes=False)
    ran = gaitwatch("gallery", "enroll", path, recording, "--label", "subject", "--silhouette-model", run)
    warnings = [line for line in ran.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "no walk.gwsil beside it" in warnings[0] and str(recording) in warnings[0]
    assert "0 silhouette windows of 0 tracks" in ran.stdout
    store = GalleryStore(path)
    assert len(store.identities()) == 2 and store.count() > 0 and store.channel_counts(SILHOUETTE) == {}
    assert store.channel_model(SILHOUETTE) is None  # nothing enrolled, nothing bound
    store.close()
    skeleton_model = gaitwatch("gallery", "enroll", path, recording, "--silhouette-model", path, ok=False)
    assert_one_line_error(skeleton_model, str(path))
