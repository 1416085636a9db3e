"""Walk-level scores through a real gallery: the stranger walks a benchmark may count beside the probe walks."""

from pathlib import Path

import numpy as np

from engines.metrics import pool_by_group
from engines.protocol import ProtocolData, Split
from engines.runtime.load import open_encoder
from stream.gallery.gallery import Gallery
from stream.kgbd_scores import enroll_gallery_walks, probe_scores

PEOPLE = ["Person001", "Person002", "Person003"]


def three_people(f: int) -> ProtocolData:
    """Two gallery walks and one probe walk each, of a few windows of made-up joints (the scores' plumbing,
    not their accuracy, is under test)."""
    rng = np.random.default_rng(0)
    walk_names = [f"{p}/{n}" for p in PEOPLE for n in (1, 2, 3)]

    def windows(numbers: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        walks = [walk_names.index(f"{p}/{n}") for p in PEOPLE for n in numbers]
        per_walk = 3
        joints = rng.normal(size=(len(walks) * per_walk, f, 20, 3)).astype(np.float32)
        walk_of = np.repeat(walks, per_walk)
        return joints, walk_of // 3, walk_of

    gallery, gallery_labels, gallery_walk = windows((1, 2))
    probe, probe_labels, probe_walk = windows((3,))
    split = Split("kgbd", 0, {p: [1, 2] for p in PEOPLE}, {p: [3] for p in PEOPLE}, {})
    empty = np.zeros((0, f, 20, 3), np.float32)
    return ProtocolData(
        split, f, PEOPLE, walk_names, empty, np.zeros(0, np.int64), probe, probe_labels, probe_walk, gallery,
        gallery_labels, gallery_walk,
    )  # fmt: skip


def test_the_gallery_walks_of_people_never_enrolled_are_scored_as_strangers(tmp_path: Path):
    encoder = open_encoder()
    data = three_people(encoder.f)
    gallery = Gallery.create(tmp_path / "g.db", encoder.card)
    enroll_gallery_walks(gallery, encoder, data, set(PEOPLE[:2]))

    strangers = probe_scores(gallery, encoder, data, "gallery", {PEOPLE[2]})

    assert strangers.people == [PEOPLE[2], PEOPLE[2]]  # both of the stranger's walks, one score row each
    assert all(set(row) == set(PEOPLE[:2]) for row in strangers.distances)  # against the enrolled only
    own = data.gallery_labels == 2
    pooled, _ = pool_by_group(encoder.encode(data.gallery[own]), data.gallery_walk[own])
    expected = [min(m.distance for m in gallery.search_tracks(v, k=2)) for v in pooled]
    assert np.allclose(strangers.open_set()[1], expected, atol=1e-5)
    probes = probe_scores(gallery, encoder, data)
    assert probes.people == PEOPLE  # the default is unchanged: every probe walk, everyone's
    assert probe_scores(gallery, encoder, data, "gallery", set()).people == []
