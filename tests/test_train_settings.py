"""Training settings outside what can train are refused before any data is read or any epoch runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engines.train.loop import train
from engines.train.methods import METHODS, get_method
from engines.train.selfgait_finetune import BOUNDS as FINETUNE_BOUNDS
from engines.train.selfgait_finetune import DEFAULTS as FINETUNE_DEFAULTS
from engines.train.selfgait_run import train_selfgait
from engines.train.settings import Bounds, out_of_bounds
from sensors.errors import InputError
from tests.synthetic_gait import synthetic_windows

NO_TERM_LEFT = "window_weight is 0 and so is windows_per_group or group_weight: no term left to learn from"


def test_bounds_admit_their_interval_and_say_it():
    share = Bounds(0, 1, open_low=True)
    assert [share.admits(v) for v in (0, 1e-9, 1, 1.5, float("nan"), True, "0.5")] == [
        False, True, True, False, False, False, False,
    ]  # fmt: skip
    assert (str(share), str(Bounds(2)), str(Bounds(0, open_low=True)), str(Bounds(high=3, open_high=True))) == (
        "in (0, 1]", ">= 2", "> 0", "< 3",
    )  # fmt: skip


@pytest.mark.parametrize("method", METHODS)
def test_every_default_lies_within_its_own_bounds(method: str):
    chosen = get_method(method)
    config = chosen.default_config()
    assert set(chosen.setting_bounds) <= set(config), "a bound for a setting the method does not have"
    assert chosen.setting_problems(config, config.get("frames", 6)) == []


def test_fine_tuning_defaults_lie_within_their_bounds():
    from engines.train.silhouette_augment import DEFAULTS as AUGMENT

    assert out_of_bounds({**AUGMENT, **FINETUNE_DEFAULTS}, FINETUNE_BOUNDS) == []


@pytest.mark.parametrize(
    ("method", "setting", "said"),
    [
        ("simmc", {"masked_frames": 6}, "masked_frames must leave some of a window's 6 frames"),
        ("simmc", {"lambda": 1.5, "eps": 0.0}, "lambda must be in [0, 1], got 1.5; eps must be > 0"),
        ("age", {"lr": 0.0}, "lr must be > 0"),
        ("trackcon", {"tracks_per_batch": 1}, "tracks_per_batch must be >= 2"),
        ("trackcon", {"tilt_degrees": 120.0}, "tilt_degrees must be in [0, 90]"),
        ("trackcon", {"window_weight": 0, "windows_per_group": 0}, NO_TERM_LEFT),
        ("trackcon", {"window_weight": 0, "group_weight": 0}, NO_TERM_LEFT),
        ("trackcon", {"margin": 1.5}, "margin must be in [0, 1]"),
    ],
)
def test_training_refuses_impossible_settings_before_the_first_epoch(
    tmp_path: Path, method: str, setting: dict, said: str
):
    windows, people = synthetic_windows(people=3, windows_per_person=4)
    with pytest.raises(InputError, match=rf"^{method} settings: .*{re.escape(said)}"):
        train(method, windows, tmp_path, seed=0, description={}, config_overrides={"epochs": 1, **setting},
              show_progress=False, tracks=people)  # fmt: skip
    assert not (tmp_path / "checkpoint.pt").exists()


def test_selfgait_refuses_an_erased_band_lower_than_it_is_high_before_reading_data(tmp_path: Path):
    with pytest.raises(InputError, match=r"erase_min_rows \(9\) must not exceed erase_max_rows \(8\)"):
        train_selfgait(tmp_path / "no-such-dataset", tmp_path / "run",
                       config_overrides={"erase_min_rows": 9, "erase_max_rows": 8}, show_progress=False)  # fmt: skip
    assert not (tmp_path / "run").exists()
