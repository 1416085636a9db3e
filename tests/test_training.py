"""Training: SimMC learns from unlabeled windows, deterministically, and resumes exactly where it stopped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.checkpoint import load_encoder
from engines.model_card import card_from_checkpoint
from engines.models.simmc import SimMCEncoder
from engines.train.loop import train
from sensors.errors import InputError
from tests.synthetic_gait import synthetic_windows

SMALL = {"hidden": 64, "batch_size": 64, "epochs": 4, "lr": 3e-3}


def run(tmp: Path, windows: np.ndarray, **overrides) -> Path:
    config = {**SMALL, **overrides}
    return train("simmc", windows, tmp, seed=3, description={"split": "synthetic"}, config_overrides=config,
                 show_progress=False)  # fmt: skip


def test_simmc_lowers_its_loss_and_writes_its_log(tmp_path: Path):
    windows, _ = synthetic_windows(people=16, windows_per_person=40)
    model = run(tmp_path, windows)
    log = json.loads((tmp_path / "losses.json").read_text())
    assert len(log) == 4
    assert log[-1]["loss"] < log[0]["loss"]
    assert (tmp_path / "losses.png").stat().st_size > 1000
    encoder, info = load_encoder(model)
    assert isinstance(encoder, SimMCEncoder) and info["method"] == "simmc" and info["split"] == "synthetic"
    assert encoder(torch.zeros(2, 6, 20, 3)).shape == (2, 64)


def test_resume_continues_exactly(tmp_path: Path):
    windows, _ = synthetic_windows(people=10, windows_per_person=30, seed=1)
    straight = run(tmp_path / "straight", windows, epochs=3)
    run(tmp_path / "resumed", windows, epochs=2)
    resumed = run(tmp_path / "resumed", windows, epochs=3)
    a, b = load_encoder(straight)[0], load_encoder(resumed)[0]
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0, msg=name)


def test_a_run_records_the_thread_counts_and_cpu_it_trained_with(tmp_path: Path):
    """torch sums in another order with another thread count or instruction set: what repeating a run needs is
    recorded."""
    windows, _ = synthetic_windows(people=6, windows_per_person=20, seed=5)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        run(tmp_path, windows, epochs=1)
        torch.set_num_threads(2)
        model = run(tmp_path, windows, epochs=2)  # resumed with another count
    finally:
        torch.set_num_threads(threads)
    assert [row["n_threads"] for row in json.loads((tmp_path / "losses.json").read_text())] == [1, 2]
    _, info = load_encoder(model)
    assert info["torch_threads"] == [1, 2]
    training = card_from_checkpoint(info, 6, 64)["training"]
    assert training["torch_threads"] == [1, 2]
    capability = torch.backends.cpu.get_cpu_capability()
    assert info["torch_cpu"] == training["torch_cpu"] == [capability]


def test_a_different_run_in_the_same_folder_is_refused(tmp_path: Path):
    windows, _ = synthetic_windows(people=6, windows_per_person=20, seed=2)
    run(tmp_path, windows, epochs=2)
    with pytest.raises(InputError, match=r"different run \(config\)"):
        run(tmp_path, windows, epochs=2, hidden=32)
    with pytest.raises(InputError, match=r"different run \(training windows\)"):
        run(tmp_path, windows[1:], epochs=2)
    with pytest.raises(InputError, match=r"different run \(split\)"):
        train(
            "simmc", windows, tmp_path, seed=3, description={"split": "other"}, config_overrides={**SMALL, "epochs": 2}
        )
    with pytest.raises(InputError, match="already trained 2 epochs"):
        run(tmp_path, windows, epochs=1)


def test_tracks_do_not_change_a_run_of_a_method_that_does_not_learn_from_them(tmp_path: Path):
    windows, _ = synthetic_windows(people=6, windows_per_person=20, seed=4)
    train("simmc", windows, tmp_path, seed=3, description={}, config_overrides={**SMALL, "epochs": 1},
          show_progress=False, tracks=np.arange(len(windows)) // 10)  # fmt: skip
    resumed = train("simmc", windows, tmp_path, seed=3, description={}, config_overrides={**SMALL, "epochs": 2},
                    show_progress=False)  # fmt: skip
    assert len(json.loads((tmp_path / "losses.json").read_text())) == 2 and resumed.is_file()
