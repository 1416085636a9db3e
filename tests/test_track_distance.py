"""Track means compared with the body shape fused in (engines/track_distance.py), and where the product uses it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from engines.track_distance import BODY_SHAPE, EUCLIDEAN, SHAPE_VALUES, SHAPE_WEIGHT, TrackDistance, check_metric
from sensors.errors import FormatError
from stream.gallery.gallery import Gallery
from stream.gallery.store import Origin
from tests.helpers import assert_one_line_error, card, gaitwatch

EMBEDDING = 4


def _vectors(embeddings: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    return np.hstack([embeddings, shapes]).astype(np.float64)


def _people(seed: int = 0, n: int = 6, tracks: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Track means of ``n`` people: an embedding and 19 bone lengths each (metres), ``tracks`` tracks apiece."""
    rng = np.random.default_rng(seed)
    owners = np.repeat(np.arange(n), tracks)
    embeddings = rng.normal(size=(n, EMBEDDING))[owners] + 0.05 * rng.normal(size=(len(owners), EMBEDDING))
    shapes = rng.uniform(0.1, 0.5, size=(n, SHAPE_VALUES))[owners] + 0.002 * rng.normal(size=(len(owners), 19))
    return _vectors(embeddings, shapes), owners


def _median_between(values: np.ndarray, owners: np.ndarray) -> float:
    a, b = np.triu_indices(len(values), 1)
    different = owners[a] != owners[b]
    return float(np.median(np.linalg.norm(values[a] - values[b], axis=1)[different]))


def test_the_plain_metric_is_the_euclidean_distance():
    means, owners = _people()
    distance = TrackDistance.fit(EUCLIDEAN, means, owners)
    expected = np.linalg.norm(means[:3, None] - means[None], axis=2)
    np.testing.assert_allclose(distance(means[:3], means), expected, atol=1e-6)
    np.testing.assert_allclose(distance.rows(means[:3], means[3:6]), np.diag(expected[:, 3:6]), atol=1e-9)


def test_body_shape_adds_the_z_scored_shape_distance_in_embedding_units():
    means, owners = _people()
    distance = TrackDistance.fit(BODY_SHAPE, means, owners)
    embeddings, shapes = means[:, :EMBEDDING], means[:, EMBEDDING:]
    z = (shapes - shapes.mean(axis=0)) / shapes.std(axis=0)  # the enrolled tracks' own statistics
    factor = SHAPE_WEIGHT * _median_between(embeddings, owners) / _median_between(z, owners)
    queries = means[[0, 5]] + 0.01
    z_queries = (queries[:, EMBEDDING:] - shapes.mean(axis=0)) / shapes.std(axis=0)
    expected = np.linalg.norm(queries[:, None, :EMBEDDING] - embeddings[None], axis=2) + factor * np.linalg.norm(
        z_queries[:, None] - z[None], axis=2
    )
    np.testing.assert_allclose(distance(queries, means), expected, rtol=1e-9)
    assert distance.factor == pytest.approx(factor)


def test_shape_decides_between_people_who_walk_alike():
    """Two people with the same embedding but different bodies: only the fused distance tells them apart."""
    means, owners = _people()
    means[owners == 1, :EMBEDDING] = means[owners == 0, :EMBEDDING]  # person 1 walks as person 0 does
    query = means[owners == 1][0] + 0.001
    plain = TrackDistance.fit(EUCLIDEAN, means[:, :EMBEDDING], owners)(query[None, :EMBEDDING], means[:, :EMBEDDING])
    fused = TrackDistance.fit(BODY_SHAPE, means, owners)(query[None], means)
    assert plain[0, owners == 0].min() == pytest.approx(plain[0, owners == 1].min(), abs=0.01)  # a tie without shape
    assert fused[0, owners == 1].min() < 0.5 * fused[0, owners == 0].min()


def test_a_bone_that_does_not_vary_on_the_site_says_nothing_and_one_person_leaves_the_embedding_alone():
    means, owners = _people()
    means[:, EMBEDDING + 3] = 0.0  # a sensor without that joint: a bone of length 0 for everyone
    distance = TrackDistance.fit(BODY_SHAPE, means, owners)
    moved = means[:1].copy()
    moved[0, EMBEDDING + 3] = 0.3  # a query whose sensor has it
    np.testing.assert_allclose(distance(moved, means), distance(means[:1], means), atol=1e-12)
    alone = TrackDistance.fit(BODY_SHAPE, means[owners == 0], owners[owners == 0])  # no scale with one identity
    expected = np.linalg.norm(means[:1, None, :EMBEDDING] - means[None, :, :EMBEDDING], axis=2)
    np.testing.assert_allclose(alone(means[:1], means), expected, atol=1e-6)


def test_an_unknown_metric_is_refused_naming_it():
    with pytest.raises(FormatError, match=r"cosine.*euclidean"):
        check_metric("model.onnx.card.json", "cosine")


def _shape_card() -> dict:
    return {**card(sha="b" * 64, dim=EMBEDDING + SHAPE_VALUES), "method": "trackcon", "metric": BODY_SHAPE}


@pytest.mark.parametrize("exact_limit", [5_000, 4])
def test_the_gallery_decides_with_the_fused_distance_exactly_and_above_the_exact_limit(tmp_path: Path, exact_limit):
    means, owners = _people(n=8, tracks=3)
    means[owners == 1, :EMBEDDING] = means[owners == 0, :EMBEDDING] + 0.02  # 1 walks almost as 0
    gallery = Gallery.create(tmp_path / "g.db", _shape_card(), exact_limit=exact_limit)
    ids = {}
    for person in np.unique(owners):
        ids[person] = gallery.add_identity(f"person {person}")
        rows = np.flatnonzero(owners == person)
        gallery.enroll(ids[person], means[rows].astype(np.float32), [Origin("site", str(r)) for r in rows])
    query = means[owners == 1][0].copy()
    query[:EMBEDDING] = means[owners == 0][0, :EMBEDDING]  # the motion of 0, the body of 1
    found = gallery.search_tracks(query, k=3)
    stored = gallery.store.track_means()
    expected = TrackDistance.fit(BODY_SHAPE, stored.means, stored.owners)(query[None], stored.means)[0]
    assert found[0].identity == ids[1]
    assert found[0].distance == pytest.approx(expected[stored.owners == ids[1]].min(), rel=1e-5)
    assert [m.distance for m in found] == sorted(m.distance for m in found)
    assert gallery.tracks.impostor_scale() == pytest.approx(
        TrackDistance.fit(BODY_SHAPE, stored.means, stored.owners).impostor_scale(stored.means, stored.owners)
    )
    gallery.close()


@pytest.fixture(scope="module")
def shape_model(tmp_path_factory) -> Path:
    """The shipped TrackCon checkpoint exported with ``--body-shape``, as a user makes it."""
    out = tmp_path_factory.mktemp("shape") / "model.onnx"
    printed = gaitwatch("export", "engines/data/trackcon-kgbd.pt", "--body-shape", "--out", out).stdout
    assert "parity with torch" in printed
    return out


def test_export_with_body_shape_appends_each_windows_bone_lengths(shape_model: Path):
    from engines.runtime.load import open_encoder
    from sensors.layouts import CANONICAL, bone_lengths
    from tests.synthetic_gait import synthetic_windows

    plain, shaped = open_encoder(), open_encoder(shape_model)
    assert shaped.card["metric"] == BODY_SHAPE and shaped.embedding_dim == plain.embedding_dim + SHAPE_VALUES
    windows, _ = synthetic_windows(people=3, windows_per_person=4)
    out = shaped.encode(windows)
    np.testing.assert_allclose(out[:, : plain.embedding_dim], plain.encode(windows), atol=1e-5)
    np.testing.assert_allclose(out[:, plain.embedding_dim :], bone_lengths(windows, CANONICAL).mean(axis=1), atol=1e-5)
    beside = shape_model.with_suffix(".pt")  # the checkpoint adapt starts from
    assert beside.is_file() and shaped.card["source"] == str(beside)


def test_the_prior_of_calibrate_site_is_measured_again_with_the_fused_distance(shape_model: Path, kgbd_zip: Path):
    from engines.runtime.load import open_encoder

    plain, shaped = open_encoder().card["impostor_shape"], open_encoder(shape_model).card["impostor_shape"]
    assert shaped["metric"] == BODY_SHAPE and shaped["pairs"] == plain["pairs"]  # the same training tracks
    assert shaped["relative_spread"] > plain["relative_spread"] * 1.1  # fused distances spread more


def test_without_its_training_data_the_prior_is_dropped_with_a_warning(tmp_path: Path):
    from engines.checkpoint import atomic_save, load
    from engines.model_card import read_card

    moved = {**load("engines/data/trackcon-kgbd.pt"), "data": str(tmp_path / "elsewhere.zip")}
    atomic_save(moved, tmp_path / "moved.pt")
    ran = gaitwatch("export", tmp_path / "moved.pt", "--body-shape", "--out", tmp_path / "shaped.onnx")
    assert "prior is dropped" in ran.stderr and "impostor_shape" not in read_card(tmp_path / "shaped.onnx")


def test_body_shape_is_refused_for_what_cannot_carry_it(tmp_path: Path):
    refused = gaitwatch("export", "raw", "--body-shape", "--out", tmp_path / "raw.onnx", ok=False)
    assert_one_line_error(refused, "--body-shape")
    assert not (tmp_path / "raw.onnx").exists()


@pytest.mark.slow
def test_a_body_shape_site_calibrates_and_decides_with_the_fused_distance(shape_model: Path, cmu_dir, tmp_path):
    """The CMU site of test_site_cli with the body-shape model: calibrated without labels, judged with them."""
    from tests.test_site_cli import ENROLLED, _site

    enroll, recordings = _site(cmu_dir)
    gallery = tmp_path / "people.db"
    gaitwatch("gallery", "create", gallery, "--model", shape_model)
    gaitwatch("gallery", "enroll", gallery, *enroll, "--label", "subject", "--model", shape_model)
    out = tmp_path / "site"
    gaitwatch("calibrate", "site", *recordings, "--gallery", gallery, "--model", shape_model, "--out", out)
    report = json.loads((out / "threshold.json").read_text())
    assert BODY_SHAPE in report["score"] and report["impostor_pairs"]["identities"] == ENROLLED * (ENROLLED - 1)
    replay = gaitwatch(
        "replay", *recordings, "--gallery", gallery, "--model", shape_model, "--threshold", out / "threshold.json",
        "--far", "0.01", "--speed", "max", "--quiet", "--pub", "tcp://127.0.0.1:0",
    ).stdout  # fmt: skip
    right, enrolled_tracks = map(int, re.search(r"enrolled people named right (\d+) of (\d+)", replay).groups())
    unknown, stranger_tracks = map(int, re.search(r"not enrolled rightly unknown (\d+) of (\d+)", replay).groups())
    assert unknown == stranger_tracks and right >= enrolled_tracks // 2, replay


def test_an_empty_or_one_person_body_shape_gallery_answers_by_the_embedding(tmp_path: Path):
    gallery = Gallery.create(tmp_path / "g.db", _shape_card())
    means, _ = _people(n=1, tracks=2)
    assert gallery.search_tracks(means[0], k=3) == []
    identity = gallery.add_identity("only")
    gallery.enroll(identity, means.astype(np.float32), [Origin("site", str(r)) for r in range(len(means))])
    (found,) = gallery.search_tracks(means[0] + 0.5, k=3)  # no scale with one person: the embedding alone
    assert found.identity == identity
    assert found.distance == pytest.approx(np.linalg.norm(0.5 * np.ones(EMBEDDING)), rel=1e-4)
    assert gallery.tracks.impostor_scale() is None
    gallery.close()
