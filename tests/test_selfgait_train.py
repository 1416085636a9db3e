"""SelfGait BYOL pre-training: it learns, the target follows by EMA only, it resumes, exports, refuses bad data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch not installed (the train extra)")
pytest.importorskip("cv2", reason="OpenCV not installed (the rgb extra)")

import torch

from engines.checkpoint import load, load_encoder
from engines.train.selfgait import SelfGaitMethod, target_momentum
from engines.train.selfgait_run import train_selfgait
from engines.train.silhouette_augment import make_views
from sensors.errors import InputError
from tests.helpers import assert_one_line_error, gaitwatch
from tests.silhouette_tree import write_png_tree

TINY = {"frames": 3, "batch_size": 3, "dim": 8, "hidden": 32, "projection": 16, "steps_per_epoch": 3, "epochs": 3}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("silh") / "GaitDatasetB-silh"
    write_png_tree(root, {"001": 0, "002": 2, "003": 4, "080": 1}, frames=6)  # 080: a test subject
    return root.parent


@pytest.fixture(scope="module")
def run(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    train_selfgait(tree, out, seed=3, config_overrides=TINY, show_progress=False)
    return out


def test_a_short_seeded_run_has_a_finite_falling_loss_and_learns_only_from_training_subjects(run: Path):
    state = load(run / "model.pt")
    losses = [row["loss"] for row in state["log"]]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    assert state["method"] == "selfgait" and state["config"]["frames"] == 3 and state["seed"] == 3
    assert state["subjects"] == ["001", "002", "003"] and state["train_sequences"] == 3 * 30
    assert (run / "losses.json").exists() and (run / "losses.png").exists()


def test_views_are_crops_of_the_asked_length_shifted_and_erased_reproducibly():
    sequence = torch.full((3, 64, 44), 255, dtype=torch.uint8)  # shorter than a crop: repeated
    config = {**SelfGaitMethod.default_config(), "frames": 5, "erase_p": 1.0}
    a = make_views([sequence] * 2, config, torch.Generator().manual_seed(0))
    b = make_views([sequence] * 2, config, torch.Generator().manual_seed(0))
    assert a.shape == (2, 5, 64, 44) and torch.equal(a, b)
    assert ((a == 0).all(dim=(1, 3))).sum(dim=1).ge(config["erase_min_rows"]).all()  # a band of empty rows


def test_the_target_follows_the_online_network_by_ema_and_never_by_gradients():
    torch.manual_seed(0)
    config = {**SelfGaitMethod.default_config(), **TINY}
    model = SelfGaitMethod.build_model(config, 3)
    optimizer = SelfGaitMethod.make_optimizer(model, config)
    assert all(not p.requires_grad for p in model.target_parameters())
    assert {id(p) for g in optimizer.param_groups for p in g["params"]}.isdisjoint(map(id, model.target_parameters()))
    before = [p.clone() for p in model.target_parameters()]
    views = torch.randint(0, 256, (2, 3, 3, 64, 44)).float()
    model.train()
    model.loss(views[0], views[1]).backward()
    optimizer.step()
    assert all(p.grad is None for p in model.target_parameters())
    assert all(torch.equal(p, q) for p, q in zip(model.target_parameters(), before, strict=True))  # steps leave it

    online = [*model.encoder.parameters(), *model.projector.parameters()]

    def gap() -> float:
        return sum(float((t - o).detach().pow(2).sum()) for t, o in zip(model.target_parameters(), online, strict=True))

    far = gap()
    assert far > 0
    model.update_target(0.9)
    assert gap() == pytest.approx(0.81 * far, rel=1e-3)  # (1 - 0.1)^2 of the squared distance
    assert target_momentum(0, 100, 0.99) == pytest.approx(0.99) and target_momentum(100, 100, 0.99) == 1.0
    schedule = [target_momentum(s, 100, 0.99) for s in range(101)]
    assert schedule == sorted(schedule)


def test_an_interrupted_run_resumes_to_the_same_model_and_refuses_another(
    tree: Path, run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    original = SelfGaitMethod.train_epoch
    calls = []

    def interrupted(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(SelfGaitMethod, "train_epoch", staticmethod(interrupted))
    with pytest.raises(KeyboardInterrupt):
        train_selfgait(tree, tmp_path, seed=3, config_overrides=TINY, show_progress=False)
    assert load(tmp_path / "checkpoint.pt")["epoch"] == 2 and not (tmp_path / "model.pt").exists()
    monkeypatch.setattr(SelfGaitMethod, "train_epoch", staticmethod(original))
    train_selfgait(tree, tmp_path, seed=3, config_overrides=TINY, show_progress=False)
    resumed, straight = load(tmp_path / "model.pt"), load(run / "model.pt")
    assert [r["loss"] for r in resumed["log"]] == [r["loss"] for r in straight["log"]]
    for name, weights in straight["model_state"].items():
        assert torch.equal(resumed["model_state"][name], weights), name
    with pytest.raises(InputError, match="a different run"):
        train_selfgait(tree, tmp_path, seed=4, config_overrides=TINY, show_progress=False)


def test_the_exported_online_backbone_computes_what_torch_does_and_its_card_says_what_it_is(run: Path, tmp_path: Path):
    pytest.importorskip("onnxscript", reason="onnxscript not installed (the train extra)")
    import onnxruntime as ort

    from engines.export.selfgait_artifact import export_selfgait
    from engines.export.silhouette_onnx import INPUT_NAME
    from engines.model_card import read_card
    from tests.test_selfgait import walk

    card = export_selfgait(run, tmp_path / "selfgait.onnx")
    assert read_card(tmp_path / "selfgait.onnx") == {**card, **read_card(tmp_path / "selfgait.onnx")}
    assert card["method"] == "selfgait" and card["input"]["dtype"] == "uint8"
    assert card["input"]["shape"] == ["N", "T", 64, 44] and card["embedding_dim"] == (31 + 16) * 8
    assert card["training"]["config"]["frames"] == 3 and card["training"]["subjects"] == ["001", "002", "003"]
    assert card["training"]["torch_threads"] == [torch.get_num_threads()]
    assert card["training"]["torch_cpu"] == [torch.backends.cpu.get_cpu_capability()]
    encoder, _ = load_encoder(run / "model.pt")
    session = ort.InferenceSession(str(tmp_path / "selfgait.onnx"), providers=["CPUExecutionProvider"])
    windows = np.stack([walk(1, 20), walk(3, 20)])
    (got,) = session.run(None, {INPUT_NAME: windows})
    with torch.no_grad():
        expected = encoder(torch.from_numpy(windows)).numpy()
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()


def test_bad_data_folders_and_kgbd_options_are_one_line_errors(tree: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert_one_line_error(
        gaitwatch("train", "selfgait", "--data", tmp_path / "nope", "--out", out, ok=False), "no such"
    )
    (tmp_path / "empty" / "001" / "nm-01" / "090").mkdir(parents=True)
    refused = gaitwatch("train", "selfgait", "--data", tmp_path / "empty", "--out", out, ok=False)
    assert_one_line_error(refused, "no .png or .pkl")
    broken = tmp_path / "broken" / "001" / "nm-01" / "090"
    broken.mkdir(parents=True)
    (broken / "001-nm-01-090-001.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert_one_line_error(gaitwatch("train", "selfgait", "--data", broken.parents[2], "--out", out, ok=False), ".png")
    refused = gaitwatch("train", "selfgait", "--data", tree, "--split", "kgbd:0", "--out", out, ok=False)
    assert_one_line_error(refused, "--split")
    refused = gaitwatch("train", "simmc", "--data", tmp_path / "k.zip", "--out", out, ok=False)
    assert_one_line_error(refused, "--split kgbd:SEED")
    assert not out.exists()


def test_gaitwatch_train_selfgait_writes_a_model_and_its_encoder(tree: Path, tmp_path: Path):
    pytest.importorskip("onnxscript", reason="onnxscript not installed (the train extra)")
    settings = [x for k, v in {**TINY, "steps_per_epoch": 2}.items() if k != "epochs" for x in ("--set", f"{k}={v}")]
    ran = gaitwatch("train", "selfgait", "--data", tree, "--out", tmp_path, "--epochs", "1", *settings)
    assert "model:" in ran.stdout and "selfgait.onnx" in ran.stdout
    assert (tmp_path / "model.pt").exists() and (tmp_path / "selfgait.onnx.card.json").exists()


def test_opengait_pickles_with_own_subject_names_are_all_learned_from(tmp_path: Path):
    from engines.train.selfgait_run import load_sequences
    from sensors.formats.opengait_pkl import write_pkl
    from tests.test_selfgait import walk

    for subject, build in (("ana", 1), ("bo", 3)):
        write_pkl(tmp_path / subject / "nm-01" / "090" / "090.pkl", walk(build, 9))
    keys, frames, description = load_sequences(tmp_path)
    assert [str(k) for k in keys] == ["ana/nm-01/090", "bo/nm-01/090"] and [len(f) for f in frames] == [9, 9]
    assert description["layout"] == "opengait-pkl" and description["subject_filter"] is None
