"""Pseudo pairs: two tracks of one person are found without labels (mutual nearest, inside the gate), and
nothing else is; TrackCon trains on them and still resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.checkpoint import load_encoder
from engines.train.loop import train
from engines.train.pseudo_pairs import merged_members, mutual_nearest_pairs, track_means
from engines.train.trackcon import track_batches
from sensors.errors import InputError
from tests.test_trackcon import SMALL, _walks


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_two_tracks_of_each_person_pair_up_and_a_lone_track_stays_alone():
    rng = np.random.default_rng(0)
    people = _unit(rng.normal(size=(30, 32)))
    second_walks = _unit(people + rng.normal(scale=0.05, size=people.shape))
    lone = _unit(rng.normal(size=(5, 32)))  # five people seen once
    pairs = mutual_nearest_pairs(np.concatenate([people, second_walks, lone]), rate=0.01)
    assert sorted(pairs) == [(i, 30 + i) for i in range(30)]


def test_people_seen_once_are_rarely_paired_however_near_their_nearest_is():
    paired, tracks = 0, 0
    for seed in range(5):  # every track has a nearest, many of them mutual: few far inside the usual distances
        pairs = mutual_nearest_pairs(_unit(np.random.default_rng(seed).normal(size=(200, 32))), rate=0.01)
        paired, tracks = paired + 2 * len(pairs), tracks + 200
    assert paired / tracks <= 0.05


def test_a_looser_gate_admits_more_and_a_pair_must_be_mutual():
    rng = np.random.default_rng(2)
    people = _unit(rng.normal(size=(40, 16)))
    near = _unit(people + rng.normal(scale=0.35, size=people.shape))  # second walks that differ a lot
    means = np.concatenate([people, near])
    strict, loose = mutual_nearest_pairs(means, rate=0.001), mutual_nearest_pairs(means, rate=0.3)
    assert set(strict) <= set(loose) and len(loose) > len(strict)
    a = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    # row 1's nearest is row 0, whose nearest is row 1: one pair; row 2's nearest (row 1) is taken
    assert mutual_nearest_pairs(_unit(a), rate=0.5) == [(0, 1)]


def test_a_pair_with_a_second_near_track_is_left_out_unless_distinctness_is_waived():
    rng = np.random.default_rng(3)
    others = _unit(rng.normal(size=(60, 16)))
    base = _unit(rng.normal(size=(1, 16)))
    crowd = _unit(base + np.array([[0.0] * 16, [0.05] + [0.0] * 15, [0.0, 0.052] + [0.0] * 14]))  # three alike
    means = np.concatenate([others, crowd])
    assert mutual_nearest_pairs(means, rate=0.01, distinct=1.0) == [(60, 61)]
    assert mutual_nearest_pairs(means, rate=0.01, distinct=0.9) == []


def test_a_pair_becomes_one_class_with_the_windows_of_both_tracks():
    members = [torch.tensor([0, 1]), torch.tensor([2]), torch.tensor([3, 4, 5]), torch.tensor([6])]
    merged = merged_members(members, [(0, 2)])
    assert [m.tolist() for m in merged] == [[0, 1, 3, 4, 5], [2], [6]]


def test_training_pairs_the_walks_of_people_it_never_saw_labelled(tmp_path: Path):
    windows, walks, people = _walks(people=8, walks_per_person=2, windows_per_walk=20)
    model = train(
        "trackcon", windows, tmp_path, seed=0, description={"split": "synthetic"},
        config_overrides={**SMALL, "epochs": 4, "pseudo_pairs_from": 2}, show_progress=False, tracks=walks,
    )  # fmt: skip
    log = json.loads((tmp_path / "losses.json").read_text())
    assert [row["n_pseudo_pairs"] == 0 for row in log] == [True, True, False, False]
    encoder, _ = load_encoder(model)
    members = track_batches(torch.from_numpy(walks))
    pairs = mutual_nearest_pairs(track_means(encoder, torch.from_numpy(windows), members), rate=0.01)
    person_of_walk = people[::20]
    assert pairs and all(person_of_walk[i] == person_of_walk[j] for i, j in pairs)


def test_training_without_pseudo_pairs_never_merges(tmp_path: Path):
    windows, walks, _ = _walks(people=6, walks_per_person=2, windows_per_walk=10)
    train("trackcon", windows, tmp_path, seed=0, description={}, config_overrides={**SMALL, "pseudo_pairs_from": 0},
          show_progress=False, tracks=walks)  # fmt: skip
    assert all(row["n_pseudo_pairs"] == 0 for row in json.loads((tmp_path / "losses.json").read_text()))


@pytest.mark.parametrize(
    ("setting", "named"),
    [({"pseudo_pairs_rate": 2.0}, "pseudo_pairs_rate"), ({"pseudo_pairs_distinct": 0.0}, "pseudo_pairs_distinct"),
     ({"pseudo_pairs_from": -1}, "pseudo_pairs_from")],
)  # fmt: skip
def test_impossible_pair_settings_are_refused_before_the_first_epoch(tmp_path: Path, setting: dict, named: str):
    windows, walks, _ = _walks(people=3, walks_per_person=2, windows_per_walk=4)
    with pytest.raises(InputError, match=named):
        train("trackcon", windows, tmp_path, seed=0, description={}, config_overrides={**SMALL, **setting},
              show_progress=False, tracks=walks)  # fmt: skip
    assert not (tmp_path / "checkpoint.pt").exists()
