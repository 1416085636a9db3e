"""The standard CASIA-B protocol (074 train / 050 test subjects, NM 1-4 gallery, rank-1 without the identical
view) on a tiny synthetic tree in CASIA-B's own layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cv2", reason="OpenCV not installed (the rgb extra)")

from engines.casia_b import evaluate, is_training
from sensors.errors import InputError
from sensors.formats.silhouette_dataset import SequenceKey, read_dataset
from tests.silhouette_tree import TYPES, VIEWS, write_png_tree

TEST = {"075": 0, "080": 2, "099": 4, "124": 6}


def gait_energy_images(root: Path) -> tuple[list[SequenceKey], np.ndarray]:
    """The classic baseline embedding: a sequence's mean aligned silhouette."""
    keys, rows = [], []
    for sequence in read_dataset(root):
        keys.append(sequence.key)
        rows.append(sequence.frames.astype(np.float64).mean(axis=0).ravel() / 255)
    return keys, np.stack(rows)


@pytest.fixture(scope="module")
def casia_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("casia") / "GaitDatasetB-silh"
    # training subjects built exactly like test subject 075: were they in the gallery, 075 would be confused
    write_png_tree(root, {"001": 0, "074": 0, **TEST}, frames=4)
    return root.parent


def test_normal_walks_are_all_named_and_coats_confuse_the_baseline(casia_tree: Path):
    keys, embeddings = gait_energy_images(casia_tree)
    result = evaluate(keys, embeddings)
    assert set(result.per_view) == {"NM", "BG", "CL"}
    assert set(result.per_view["NM"]) == set(VIEWS)
    assert result.mean["NM"] == 1.0  # had training subjects 001/074 (075's twins) been in the gallery: below 1
    assert result.mean["CL"] < result.mean["NM"]  # a coat makes everyone look like a broader person
    assert result.probes == {"NM": 2 * 3 * 4, "BG": 2 * 3 * 4, "CL": 2 * 3 * 4}  # 2 types x 3 views x 4 subjects
    assert "| NM | 100.0 | 100.0 | 100.0 | 100.0 |" in result.table()


def test_the_identical_view_is_excluded():
    # embeddings that identify a subject only within one view: same-view matching would score 100 %
    rng = np.random.default_rng(0)
    subjects = [f"{s:03d}" for s in range(75, 95)]
    codes = {(s, v): rng.normal(size=16) for s in subjects for v in VIEWS}
    keys = [SequenceKey(s, t, v) for s in subjects for t in TYPES for v in VIEWS]
    embeddings = np.stack([codes[(k.subject, k.view)] for k in keys])
    result = evaluate(keys, embeddings)
    assert max(result.mean.values()) < 0.3  # chance is 1/20; only other views are gallery


def test_only_test_subjects_are_scored_and_training_ones_are_told():
    assert is_training(SequenceKey("074", "nm-01", "000")) and not is_training(SequenceKey("075", "nm-01", "000"))
    keys = [SequenceKey("010", t, v) for t in TYPES for v in VIEWS]
    with pytest.raises(InputError, match="no test-subject"):
        evaluate(keys, np.zeros((len(keys), 4)))
    with pytest.raises(InputError, match="expected \\[1, D\\]"):
        evaluate(keys[:1], np.zeros((2, 4)))
