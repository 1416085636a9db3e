"""The shipped encoder (SimMC trained on KGBD, as ONNX): its card, its parity with torch, its accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engines.export.artifact import PARITY_LIMIT
from engines.export.parity import parity_windows
from engines.model_card import read_card
from engines.runtime.load import open_encoder, shipped_model
from tests.helpers import gaitwatch

CHECKPOINT = shipped_model().with_suffix(".pt")


def test_shipped_model_and_card_agree():
    card = read_card(shipped_model())  # verifies the sha256 of the committed file
    assert card["method"] == "simmc" and card["f"] == 6 and card["embedding_dim"] == 256
    assert card["training"]["split"] == card["accuracy"]["split"] and card["accuracy"]["part"] == "test"
    assert card["accuracy"]["window"]["num_probes"] > 10_000 and card["accuracy"]["walk"]["num_probes"] == 164
    assert CHECKPOINT.is_file()


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_shipped_onnx_matches_its_torch_checkpoint(batch: int):
    reference, artifact = open_encoder(CHECKPOINT), open_encoder()
    assert artifact.backend == "onnxruntime" and reference.backend == "torch"
    windows = parity_windows(batch, 6, seed=7 + batch)
    assert np.abs(artifact.encode(windows) - reference.encode(windows)).max() <= PARITY_LIMIT


@pytest.mark.slow
def test_shipped_model_reproduces_the_torch_evaluation(kgbd_zip: Path, tmp_path: Path):
    """Scored through ONNX Runtime and through torch, the metrics agree to the printed precision,
    and they are the ones its card states."""
    scores = {}
    for name, model in (("onnx", shipped_model()), ("torch", CHECKPOINT)):
        gaitwatch("eval", model, "--data", kgbd_zip, "--out", tmp_path / name)
        [run] = json.loads((tmp_path / name / "results.json").read_text())["runs"]
        scores[name] = {
            level: {k: run[level][k] for k in ("top1", "top5", "top10", "mAP", "nAUC")} for level in ("window", "walk")
        }
    assert scores["onnx"] == scores["torch"]
    card = read_card(shipped_model())["accuracy"]
    assert scores["onnx"] == {level: {k: card[level][k] for k in scores["onnx"][level]} for level in scores["onnx"]}
