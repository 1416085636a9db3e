"""SelfGait fine-tuning with labels: it separates the labelled subjects, reads only their labels, resumes, refuses
bad starts and shares, and its checkpoint and card say labels were used."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch not installed (the train extra)")

import torch

from engines.checkpoint import load, load_encoder
from engines.train import selfgait_finetune
from engines.train.selfgait_finetune import sample_batch, triplet_losses
from engines.train.selfgait_run import finetune_selfgait, train_selfgait
from sensors.errors import InputError
from sensors.formats.opengait_pkl import write_pkl
from sensors.formats.silhouette_dataset import read_dataset
from tests.helpers import Ran, assert_one_line_error, gaitwatch

TYPES = ("nm-01", "nm-02", "bg-01", "cl-01")
HEADS = {"001": 3, "002": 4, "003": 5, "004": 6, "005": 7, "006": 8, "080": 5}  # 080: a CASIA-B test subject
PRETRAIN = {"frames": 2, "batch_size": 2, "dim": 8, "hidden": 16, "projection": 8, "steps_per_epoch": 1, "epochs": 1}
QUICK = {"p_subjects": 2, "k_windows": 2, "frames": 2, "steps_per_epoch": 1, "epochs": 2}


def walker(head: int, width: int, step: int) -> np.ndarray:
    """An aligned 64 x 44 silhouette: a head of the subject's size, a trunk of the walk's width, legs at ``step``."""
    image = np.zeros((64, 44), np.uint8)
    yy, xx = np.mgrid[:64, :44]
    image[(yy - 2 - head) ** 2 + (xx - 22) ** 2 <= head**2] = 255
    image[2 + 2 * head : 40, 22 - width // 2 : 22 + width // 2] = 255
    spread = 2 + 2 * (step % 4)
    image[40:, 22 - spread - 3 : 22 - spread + 1] = 255
    image[40:, 22 + spread - 1 : 22 + spread + 3] = 255
    return image


def write_tree(root: Path, heads: dict[str, int], frames: int = 8) -> None:
    """Subjects differ by their head; each walk by its trunk (a coat, a bag: 8 to 23 px wide), the same for all
    subjects, so a backbone that looks at the trunk finds another subject's walk of the same width nearest."""
    for subject, head in heads.items():
        for j, kind in enumerate(TYPES):
            walk = np.stack([walker(head, 8 + 5 * j, step + j) for step in range(frames)])
            write_pkl(root / subject / kind / "090" / "090.pkl", walk)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("silhouettes")
    write_tree(root, HEADS)
    return root


@pytest.fixture(scope="module")
def pretrained(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pretrained")
    train_selfgait(tree, out, seed=0, config_overrides=PRETRAIN, show_progress=False)
    return out


def embed(model: Path, root: Path, subjects: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-sequence embeddings [N, 47, dim] of ``subjects``' walks, and their subject labels."""
    encoder, info = load_encoder(model)
    sequences = [s for s in read_dataset(root) if s.key.subject in subjects]
    with torch.no_grad():
        embeddings = torch.cat([encoder(torch.from_numpy(s.frames)[None]) for s in sequences])
    labels = torch.tensor([subjects.index(s.key.subject) for s in sequences])
    return embeddings.reshape(len(sequences), -1, info["config"]["dim"]), labels


def nearest_walk_accuracy(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """Rank-1 between walks: the share whose nearest other walk is of their own subject."""
    distances = torch.cdist(embeddings.flatten(1), embeddings.flatten(1)).fill_diagonal_(float("inf"))
    return float((labels[distances.argmin(1)] == labels).float().mean())


@pytest.mark.slow
def test_fine_tuning_lowers_the_triplet_loss_and_names_more_walks_of_the_labelled_subjects(
    tree: Path, pretrained: Path, tmp_path: Path
):
    settings = {"p_subjects": 6, "k_windows": 2, "frames": 3, "steps_per_epoch": 15, "epochs": 2, "lr": 3e-3}
    model = finetune_selfgait(tree, tmp_path, pretrained, seed=0, config_overrides=settings, show_progress=False)
    state = load(model)
    subjects = state["labelled_subjects"]
    assert subjects == ["001", "002", "003", "004", "005", "006"]  # 080 is a test subject: never learned from
    start, labels = embed(pretrained / "model.pt", tree, subjects)
    start = start * state["start_scale"]  # where fine-tuning began: the same ranking, the margin's scale
    tuned, same_labels = embed(model, tree, subjects)
    assert torch.equal(labels, same_labels)
    start_loss = float(triplet_losses(start, labels, 0.2)[1])
    tuned_loss = float(triplet_losses(tuned, labels, 0.2)[1])
    assert tuned_loss < 0.9 * start_loss, (start_loss, tuned_loss)
    before, after = nearest_walk_accuracy(start, labels), nearest_walk_accuracy(tuned, labels)
    assert after >= before + 0.25, (before, after)  # the start matches walks by their trunk, not their head
    assert all(np.isfinite([row["loss"] for row in state["log"]]))


def test_the_start_is_scaled_to_the_margin_and_ranks_as_the_pre_trained_backbone(tree: Path, pretrained: Path):
    encoder, _ = load_encoder(pretrained / "model.pt")
    walks = [torch.from_numpy(s.frames) for s in read_dataset(tree)][:6]
    with torch.no_grad():
        before = torch.cat([encoder(w[None]) for w in walks])
        factor = selfgait_finetune.scale_to(encoder, walks, 8, 1.0)
        after = torch.cat([encoder(w[None]) for w in walks])
    assert torch.allclose(after, factor * before, rtol=1e-4, atol=1e-6)  # every distance alike: the same ranking
    strips = after.reshape(6, -1, 8).transpose(0, 1)
    pairs = torch.triu_indices(6, 6, offset=1)
    assert torch.cdist(strips, strips)[:, pairs[0], pairs[1]].mean().item() == pytest.approx(1.0, rel=1e-4)


def test_the_batch_all_triplet_loss_counts_every_violating_triplet_per_strip():
    labels = torch.tensor([0, 0, 1, 1])
    apart = torch.tensor([[0.0], [0.0], [1.0], [1.0]])[:, None, :].repeat(1, 2, 1)  # [N, 2 strips, 1]
    trained, every = triplet_losses(apart, labels, 0.2)
    assert float(trained) == pytest.approx(0.0, abs=1e-5) and float(every) == pytest.approx(0.0, abs=1e-5)
    mixed = torch.tensor([[0.0], [1.0], [0.0], [1.0]])[:, None, :].repeat(1, 2, 1)  # each subject at both places
    trained, every = triplet_losses(mixed, labels, 0.2)
    # 8 triplets (4 anchors x 1 positive x 2 negatives): half have d(a,p)=1, d(a,n) 0 and 1 -> hinge 1.2 and 0.2
    assert float(every) == pytest.approx((1.2 + 0.2) / 2, rel=1e-4) and float(trained) == pytest.approx(0.7, rel=1e-4)


def test_batches_are_p_subjects_times_k_windows_and_windows_of_one_sequence_are_one_subject():
    subjects = [[0], [1, 2], [3, 4, 5]]  # subject 0 has one sequence: its K windows all come from it
    config = {"p_subjects": 2, "k_windows": 3}
    seen = set()
    for seed in range(20):
        picks, labels = sample_batch(subjects, config, torch.Generator().manual_seed(seed))
        assert len(picks) == 6 and len(set(labels.tolist())) == 2
        assert (labels.reshape(2, 3) == labels.reshape(2, 3)[:, :1]).all()  # K windows of each of P subjects
        assert all(pick in subjects[label] for pick, label in zip(picks, labels.tolist(), strict=True))
        seen.update(labels.tolist())
    assert seen == {0, 1, 2}


def test_only_the_labelled_subjects_are_learned_from_and_the_checkpoint_says_whose(
    tree: Path, pretrained: Path, tmp_path: Path
):
    model = finetune_selfgait(
        tree, tmp_path / "a", pretrained, labelled_fraction=0.5, config_overrides=QUICK, show_progress=False
    )
    state = load(model)
    assert state["labelled_subjects"] == state["subjects"] == ["001", "002", "003"]  # round(0.5 x 6), sorted
    assert state["labelled_count"] == 3 and state["labelled_fraction"] == 0.5 and state["training_subjects"] == 6
    assert state["train_sequences"] == 3 * len(TYPES)
    assert state["objective"].startswith("BYOL pre-training + triplet fine-tuning with labels")
    assert state["pretrained_sha256"] == hashlib.sha256((pretrained / "model.pt").read_bytes()).hexdigest()
    assert state["pretraining"]["subjects"] == ["001", "002", "003", "004", "005", "006"]

    other = tmp_path / "other"  # the unlabelled subjects' walks changed: the very same fine-tuning
    shutil.copytree(tree, other)
    for subject in ("004", "005", "006"):
        shutil.rmtree(other / subject)
    write_tree(other, {"004": 8, "005": 3, "006": 5}, frames=5)
    again = load(
        finetune_selfgait(
            other, tmp_path / "b", pretrained, labelled_fraction=0.5, config_overrides=QUICK, show_progress=False
        )
    )
    assert again["windows_sha256"] == state["windows_sha256"]
    start = load(pretrained / "model.pt")["model_state"]
    for name, weights in state["model_state"].items():
        assert torch.equal(again["model_state"][name], weights), name
    assert any(not torch.equal(w, start[f"encoder.{n}"]) for n, w in load_encoder(model)[0].state_dict().items())


def test_an_interrupted_fine_tuning_resumes_to_the_same_model_and_refuses_another_start(
    tree: Path, pretrained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    straight = load(
        finetune_selfgait(tree, tmp_path / "straight", pretrained, config_overrides=QUICK, show_progress=False)
    )
    original = selfgait_finetune.train_epoch
    calls = []

    def interrupted(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(selfgait_finetune, "train_epoch", interrupted)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        finetune_selfgait(tree, out, pretrained, config_overrides=QUICK, show_progress=False)
    assert load(out / "checkpoint.pt")["epoch"] == 1 and not (out / "model.pt").exists()
    monkeypatch.setattr(selfgait_finetune, "train_epoch", original)
    resumed = load(finetune_selfgait(tree, out, pretrained, config_overrides=QUICK, show_progress=False))
    assert [r["loss"] for r in resumed["log"]] == [r["loss"] for r in straight["log"]]
    for name, weights in straight["model_state"].items():
        assert torch.equal(resumed["model_state"][name], weights), name

    another = tmp_path / "another-pretraining"
    train_selfgait(tree, another, seed=1, config_overrides=PRETRAIN, show_progress=False)
    with pytest.raises(InputError, match=r"fine-tunes the pre-training run .* not this --finetune"):
        finetune_selfgait(tree, out, another, config_overrides=QUICK, show_progress=False)


def test_bad_starts_and_shares_are_one_line_errors(tree: Path, pretrained: Path, tmp_path: Path):
    out = tmp_path / "run"

    def train(*extra: str | Path) -> Ran:
        return gaitwatch("train", "selfgait", "--data", tree, "--out", out, *extra, ok=False)

    assert_one_line_error(train("--finetune", tmp_path / "nope"), "no such checkpoint")
    skeleton = Path(__file__).resolve().parents[1] / "engines" / "data" / "trackcon-kgbd.pt"
    assert_one_line_error(train("--finetune", skeleton), "a trackcon checkpoint")
    for share in ("0", "-0.5", "1.5"):
        assert_one_line_error(train("--finetune", pretrained, "--labelled-fraction", share), "(0, 1]")
    assert_one_line_error(train("--finetune", pretrained, "--labelled-fraction", "0.2"), "labels 1 of the 6")
    assert_one_line_error(train("--labelled-fraction", "0.5"), "only with --finetune")
    assert_one_line_error(train("--finetune", pretrained, "--set", "batch_size=4"), "selfgait fine-tuning's settings")
    assert_one_line_error(
        gaitwatch("train", "selfgait", "--data", tree, "--out", pretrained, "--finetune", pretrained, ok=False),
        "the pre-training run itself",
    )
    assert not out.exists()
    tuned = finetune_selfgait(tree, tmp_path / "tuned", pretrained, config_overrides=QUICK, show_progress=False)
    assert_one_line_error(train("--finetune", tuned), "already fine-tuned with labels")


def test_gaitwatch_fine_tunes_and_its_card_says_labels_were_used(tree: Path, pretrained: Path, tmp_path: Path):
    pytest.importorskip("onnxscript", reason="onnxscript not installed (the train extra)")
    from engines.model_card import read_card

    settings = ["--set", "frames=2", "--set", "steps_per_epoch=1"]
    args = ["--finetune", pretrained, "--labelled-fraction", "0.5", "--epochs", "1", *settings]
    ran = gaitwatch("train", "selfgait", "--data", tree, "--out", tmp_path, *args)
    assert "model:" in ran.stdout and "selfgait.onnx" in ran.stdout
    training = read_card(tmp_path / "selfgait.onnx")["training"]
    assert training["objective"].startswith("BYOL pre-training + triplet fine-tuning with labels")
    assert training["labelled_count"] == 3 and training["labelled_fraction"] == 0.5
    assert training["labelled_subjects"] == ["001", "002", "003"] and training["training_subjects"] == 6
    assert training["pretrained_sha256"] == hashlib.sha256((pretrained / "model.pt").read_bytes()).hexdigest()
    assert training["config"]["stage"] == "finetune" and training["config"]["margin"] == 0.2
