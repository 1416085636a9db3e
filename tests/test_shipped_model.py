"""The shipped encoders (TrackCon, the default, and SimMC, trained on KGBD, as ONNX): cards, parity with torch,
accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engines.export.artifact import PARITY_LIMIT
from engines.export.parity import parity_windows
from engines.model_card import read_card
from engines.runtime.load import SHIPPED_SIMMC, open_encoder, shipped_model
from tests.helpers import gaitwatch

SHIPPED = {"trackcon": (shipped_model(), 128), "simmc": (SHIPPED_SIMMC, 256)}


@pytest.mark.parametrize("method", SHIPPED)
def test_shipped_models_and_cards_agree(method: str):
    artifact, dim = SHIPPED[method]
    card = read_card(artifact)  # verifies the sha256 of the committed file
    assert card["method"] == method and card["f"] == 6 and card["embedding_dim"] == dim
    assert card["training"]["split"] == card["accuracy"]["split"] and card["accuracy"]["part"] == "test"
    assert card["accuracy"]["window"]["num_probes"] > 10_000 and card["accuracy"]["walk"]["num_probes"] == 164
    assert artifact.with_suffix(".pt").is_file()


def test_the_default_model_carries_the_prior_site_calibration_uses():
    shape = read_card(shipped_model())["impostor_shape"]
    assert 0 < shape["relative_spread"] < 1 and shape["pairs"] > 10_000


@pytest.mark.parametrize("method", SHIPPED)
@pytest.mark.parametrize("batch", [1, 7, 64])
def test_shipped_onnx_matches_its_torch_checkpoint(method: str, batch: int):
    artifact_path = SHIPPED[method][0]
    reference, artifact = open_encoder(artifact_path.with_suffix(".pt")), open_encoder(artifact_path)
    assert artifact.backend == "onnxruntime" and reference.backend == "torch"
    windows = parity_windows(batch, 6, seed=7 + batch)
    assert np.abs(artifact.encode(windows) - reference.encode(windows)).max() <= PARITY_LIMIT


@pytest.mark.slow
def test_shipped_model_reproduces_the_torch_evaluation(kgbd_zip: Path, tmp_path: Path):
    """Scored through ONNX Runtime and through torch, the metrics agree to the printed precision,
    and they are the ones its card states."""
    scores = {}
    for name, model in (("onnx", shipped_model()), ("torch", shipped_model().with_suffix(".pt"))):
        gaitwatch("eval", model, "--data", kgbd_zip, "--out", tmp_path / name)
        [run] = json.loads((tmp_path / name / "results.json").read_text())["runs"]
        scores[name] = {
            level: {k: run[level][k] for k in ("top1", "top5", "top10", "mAP", "nAUC")} for level in ("window", "walk")
        }
    assert scores["onnx"] == scores["torch"]
    card = read_card(shipped_model())["accuracy"]
    assert scores["onnx"] == {level: {k: card[level][k] for k in scores["onnx"][level]} for level in scores["onnx"]}
