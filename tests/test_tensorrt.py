"""TensorRT backend: engines built from the shipped ONNX model agree with ONNX Runtime.

These tests need TensorRT 10 and a CUDA GPU (with a CUDA build of torch for the device buffers);
elsewhere each one is skipped with the reason. They were not run on the 2-core development machine.
To run them: on a GPU machine, ``pip install -c constraints.txt -e '.[dev,train]' tensorrt`` (and a
CUDA torch wheel), then ``python -m pytest tests/test_tensorrt.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engines.runtime.tensorrt_backend import tensorrt_missing

REASON = tensorrt_missing()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"TensorRT backend cannot run here: {REASON}")


@pytest.fixture(scope="module", params=["fp32", "fp16"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from engines.export.artifact import build_tensorrt_artifact
    from engines.runtime.load import shipped_model

    out = tmp_path_factory.mktemp("trt") / f"simmc-{request.param}.engine"
    build_tensorrt_artifact(str(shipped_model()), out, precision=request.param, max_batch=256)
    return out, request.param


@pytest.mark.parametrize("batch", [1, 7, 64, 300])  # 300 > max_batch: encoded in two engine calls
def test_tensorrt_matches_onnx_runtime(engine: tuple[Path, str], batch: int):
    from engines.export.artifact import FP16_PARITY_LIMIT, TENSORRT_FP32_LIMIT
    from engines.export.parity import parity_windows
    from engines.runtime.load import open_encoder, shipped_model

    path, precision = engine
    trt_encoder = open_encoder(path)
    reference = open_encoder(shipped_model(), device="cpu")
    windows = parity_windows(batch, reference.f, seed=batch)
    difference = np.abs(trt_encoder.encode(windows) - reference.encode(windows)).max()
    assert difference <= (TENSORRT_FP32_LIMIT if precision == "fp32" else FP16_PARITY_LIMIT)


def test_engine_card_names_the_build(engine: tuple[Path, str]):
    from engines.model_card import read_card
    from engines.runtime.load import shipped_model

    path, precision = engine
    card = read_card(path)
    assert card["format"] == "tensorrt" and card["tensorrt"]["precision"] == precision
    assert card["tensorrt"]["onnx_sha256"] == read_card(shipped_model())["file"]["sha256"]
    assert card["f"] == 6 and card["embedding_dim"] == 256
