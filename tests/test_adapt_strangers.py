"""What a stranger scores after a fine-tune on the enrolled people: measured by stand-in models, read by calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engines.track_distance import TrackDistance

pytest.importorskip("onnxscript", reason="onnxscript (ONNX export) not installed: the 'train' extra")

from engines.adapt import adapt_checkpoint
from engines.adapt_strangers import cross_fitted_strangers
from engines.checkpoint import encoder_from, load
from engines.models import embed_in_batches
from sensors.errors import InputError
from stream.adaptation_card import gallery_fine_tuned, recorded_strangers, recordings_fine_tuned
from stream.site_impostors import EnrolledTracks
from tests.small_trackcon import small_trackcon
from tests.synthetic_gait import synthetic_windows

PEOPLE, TRACKS_EACH, WINDOWS_EACH = 8, 2, 8


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_trackcon(tmp_path_factory.mktemp("run"))


def _enrolled() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A site's gallery: 8 new people, 2 enrolled tracks of 8 windows each."""
    windows, _ = synthetic_windows(people=PEOPLE, windows_per_person=TRACKS_EACH * WINDOWS_EACH, seed=9)
    tracks = np.arange(len(windows)) // WINDOWS_EACH
    return windows.astype(np.float32), tracks // TRACKS_EACH, tracks


def test_strangers_score_closer_than_the_people_the_fine_tune_pushed_apart(checkpoint: Path):
    windows, people, tracks = _enrolled()
    start = load(checkpoint)
    record = cross_fitted_strangers(start, windows, people, tracks, steps=60, show_progress=False)
    assert record["folds"] == 4 and record["nearest_count"] == PEOPLE * TRACKS_EACH  # every track left out once
    # each left-out track against each of the 6 people its stand-in trained on
    assert record["pair_count"] == len(record["pairs"]) == PEOPLE * TRACKS_EACH * (PEOPLE - PEOPLE // 4)
    final = encoder_from(adapt_checkpoint(start, windows, people, steps=60, show_progress=False), "final")
    embedded = embed_in_batches(final, torch.from_numpy(windows)).numpy().astype(np.float64)
    means = np.stack([embedded[tracks == t].mean(axis=0) for t in np.unique(tracks)])
    enrolled = EnrolledTracks.of(np.unique(tracks) // TRACKS_EACH, means, set(range(PEOPLE)), TrackDistance())
    # what calibrating by the enrolled people's own distances would assume a stranger scores: too far
    assert np.median(record["nearest"]) < np.median(enrolled.leave_one_out_nearest())


def test_three_people_give_three_folds_and_fewer_measure_nothing(checkpoint: Path):
    windows, people, tracks = _enrolled()
    three = people < 3
    record = cross_fitted_strangers(load(checkpoint), windows[three], people[three], tracks[three], steps=2,
                                    show_progress=False)  # fmt: skip
    assert record["folds"] == 3 and record["people"] == 3
    assert record["pair_count"] == 3 * TRACKS_EACH * 2  # each left-out track against the two trained people
    two = people < 2
    assert cross_fitted_strangers(load(checkpoint), windows[two], people[two], tracks[two], steps=2,
                                  show_progress=False) is None  # fmt: skip


def test_the_card_s_record_is_read_and_checked():
    card = {"file": {"name": "site.onnx"}, "adaptation": {"gallery": "a.db", "steps": 300,
            "strangers": {"pairs": [0.2, 0.3, 0.5], "nearest": [0.2]}}}  # fmt: skip
    pairs, nearest = recorded_strangers(card)
    assert pairs.tolist() == [0.2, 0.3, 0.5] and nearest.tolist() == [0.2]
    assert gallery_fine_tuned(card) and not recordings_fine_tuned(card)
    for bad in ({"pairs": [0.2, float("nan")], "nearest": [0.2]}, {"pairs": "x", "nearest": [0.1]}, {"pairs": [1]}):
        card["adaptation"]["strangers"] = bad
        with pytest.raises(InputError, match=r"site\.onnx: adaptation\.strangers"):
            recorded_strangers(card)
    older = {"adaptation": {"gallery": None, "recordings": ["a.gwrec"], "steps": 0, "previous": {"gallery": "a.db",
             "steps": 300}}}  # fmt: skip
    assert gallery_fine_tuned(older) and not recordings_fine_tuned(older) and recorded_strangers(older) is None
    assert recorded_strangers({}) is None and not gallery_fine_tuned({})
