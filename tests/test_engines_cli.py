"""``gaitwatch train`` / ``gaitwatch eval`` as a user runs them: results, files written, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engines.train.loop import train
from tests.helpers import assert_one_line_error, gaitwatch
from tests.synthetic_gait import synthetic_windows


@pytest.mark.slow
def test_eval_a_model_on_its_own_split_and_refuse_others(kgbd_zip: Path, tmp_path: Path):
    windows, _ = synthetic_windows(people=8, windows_per_person=20)
    model = train(
        "simmc",
        windows,
        tmp_path / "run",
        seed=0,
        description={"split": "kgbd:0"},
        config_overrides={"hidden": 32, "epochs": 1, "batch_size": 32},
        show_progress=False,
    )
    out = tmp_path / "eval"
    gaitwatch("eval", tmp_path / "run", "--data", kgbd_zip, "--out", out)
    results = json.loads((out / "results.json").read_text())
    [run] = results["runs"]
    assert run["split"] == "kgbd:0" and run["method"] == "simmc" and run["epoch"] == 1
    for level in ("window", "walk"):
        assert 0 <= run[level]["top1"] <= run[level]["top5"] <= run[level]["top10"] <= 100
        assert run[level]["num_probes"] > 0
    assert run["walk"]["num_probes"] == 164
    assert (out / "cmc.png").stat().st_size > 1000
    refused = gaitwatch("eval", model, "--data", kgbd_zip, "--split", "kgbd:1", ok=False)
    assert_one_line_error(refused, "trained on split kgbd:0")


def test_train_and_eval_reject_bad_arguments_in_one_line(tmp_path: Path):
    zip_path = tmp_path / "none.zip"
    assert_one_line_error(
        gaitwatch("train", "simmc", "--data", zip_path, "--split", "kgbd:9", "--out", tmp_path, ok=False), "kgbd-seed9"
    )
    assert_one_line_error(
        gaitwatch("train", "simmc", "--data", zip_path, "--split", "ntu:1", "--out", tmp_path, ok=False), "kgbd:SEED"
    )
    assert_one_line_error(gaitwatch("eval", "raw", "--data", zip_path, ok=False), "--split")
    for setting, said in (
        ("windows_per_grup=8", "windows_per_group"),
        ("temperature=cold", "float"),
        ("lr", "KEY=VALUE"),
        ("lr=-0.001", "lr must be > 0"),
        ("pseudo_pairs_rate=2", "pseudo_pairs_rate must be in (0, 1)"),
        ("windows_per_track=1", "windows_per_track must be >= 2"),
    ):
        refused = gaitwatch(
            "train", "trackcon", "--data", zip_path, "--split", "kgbd:0", "--out", tmp_path, "--set", setting, ok=False
        )
        assert_one_line_error(refused, said)
    # settings that only fail together are refused before the (here missing) data is read
    refused = gaitwatch("train", "trackcon", "--data", zip_path, "--split", "kgbd:0", "--out", tmp_path / "run",
                        "--set", "window_weight=0", "--set", "group_weight=0", ok=False)  # fmt: skip
    assert_one_line_error(refused, "no term left to learn from")
    assert not (tmp_path / "run").exists()
    assert_one_line_error(gaitwatch("eval", tmp_path / "nothing", "--data", zip_path, ok=False), "no such model file")
    for frames in ("0", "-6"):
        refused = gaitwatch("train", "trackcon", "--data", zip_path, "--split", "kgbd:0", "--out", tmp_path,
                            "--frames", frames, ok=False)  # fmt: skip
        assert_one_line_error(refused, "--frames: expected at least 1")


@pytest.mark.slow
def test_eval_on_the_validation_part_of_the_training_walks(kgbd_zip: Path, tmp_path: Path):
    out = tmp_path / "eval"
    gaitwatch("eval", "raw", "--data", kgbd_zip, "--split", "kgbd:0", "--on", "validation", "--out", out)
    [run] = json.loads((out / "results.json").read_text())["runs"]
    assert run["part"] == "validation" and run["split"] == "kgbd:0"
    assert run["walk"]["num_probes"] == 160  # the people with 2 or more training walks


@pytest.mark.slow
def test_train_trackcon_on_kgbd_tracks_with_the_validation_probes_held_out(kgbd_zip: Path, tmp_path: Path):
    run = tmp_path / "run"
    gaitwatch("train", "trackcon", "--data", kgbd_zip, "--split", "kgbd:0", "--out", run, "--epochs", "1", "--frames",
              "12", "--hold-out-validation", "--set", "windows_per_group=2", "--set", "temperature=0.2")  # fmt: skip
    from engines.checkpoint import load

    trained = load(run / "model.pt")
    assert trained["method"] == "trackcon" and trained["held_out"] == "validation probe walks"
    assert trained["f"] == 12  # a longer context: the encoder, its card and eval's windows take 12 frames
    assert trained["config"]["windows_per_group"] == 2 and trained["config"]["temperature"] == 0.2
    assert 30_000 < trained["train_windows"] < 63_052  # about half of kgbd:0's 63,052 training windows
    assert trained["impostor_shape"]["pairs"] > 10_000 and 0 < trained["impostor_shape"]["relative_spread"] < 1
    out = tmp_path / "eval"
    gaitwatch("eval", run, "--data", kgbd_zip, "--on", "validation", "--out", out)
    [scored] = json.loads((out / "results.json").read_text())["runs"]
    assert scored["method"] == "trackcon" and scored["part"] == "validation" and scored["walk"]["num_probes"] == 160


@pytest.mark.slow
def test_train_without_a_third_of_the_validation_people_and_score_on_them_alone(kgbd_zip: Path, tmp_path: Path):
    run = tmp_path / "run"
    gaitwatch("train", "trackcon", "--data", kgbd_zip, "--split", "kgbd:0", "--out", run, "--epochs", "1",
              "--hold-out-people", "--set", "windows_per_group=0", "--set", "steps_per_epoch=20")  # fmt: skip
    from engines.checkpoint import load

    trained = load(run / "model.pt")
    assert trained["held_out"] == "validation people"
    out = tmp_path / "eval"
    gaitwatch("eval", run, "--data", kgbd_zip, "--on", "validation", "--out", out)
    [scored] = json.loads((out / "results.json").read_text())["runs"]
    assert scored["part"] == "validation" and scored["held_out"] == "validation people"
    assert scored["walk"]["num_probes"] == 53  # the held-out people alone
    both = gaitwatch("train", "trackcon", "--data", kgbd_zip, "--split", "kgbd:0", "--out", tmp_path / "x",
                     "--hold-out-people", "--hold-out-validation", ok=False)  # fmt: skip
    assert both.returncode != 0 and "not allowed with argument" in both.stderr
