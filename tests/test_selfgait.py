"""SelfGait's backbone: windows of silhouettes to one embedding each, and its ONNX export computing the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch not installed (the train extra)")
pytest.importorskip("onnxscript", reason="onnxscript not installed (the train extra)")
pytest.importorskip("cv2", reason="OpenCV not installed (the rgb extra)")

import onnxruntime as ort
import torch

from engines.export.silhouette_onnx import INPUT_NAME, export_silhouette_onnx
from engines.models.selfgait import SelfGaitBackbone
from sensors.silhouette import align
from tests.silhouette_tree import frame


def walk(build: int, frames: int) -> np.ndarray:
    """A synthetic walker's aligned silhouettes, uint8 [frames, 64, 44]."""
    return np.stack([align(frame(build, "nm", "090", step % 8)) for step in range(frames)])


@pytest.fixture(scope="module")
def model() -> SelfGaitBackbone:
    torch.manual_seed(0)
    return SelfGaitBackbone().eval()


def test_a_window_becomes_one_embedding_of_strips_and_parts(model: SelfGaitBackbone):
    windows = torch.from_numpy(np.stack([walk(1, 30), walk(3, 30)]))
    with torch.no_grad():
        out = model(windows)
    assert out.shape == (2, model.embedding_dim) == (2, (31 + 16) * 32)
    assert torch.isfinite(out).all() and not torch.allclose(out[0], out[1])
    assert sum(p.numel() for p in model.parameters()) < 500_000  # small enough for a 2-core CPU


def test_pixels_are_scaled_inside_the_model(model: SelfGaitBackbone):
    window = torch.from_numpy(walk(2, 12))[None]
    with torch.no_grad():
        assert torch.allclose(model(window), model(window.float()), atol=1e-6)


def test_the_set_pooled_branch_ignores_frame_order_and_the_motion_branch_does_not(model: SelfGaitBackbone):
    window = torch.from_numpy(walk(2, 16))[None]
    shuffled = window[:, torch.randperm(16, generator=torch.Generator().manual_seed(1))]
    with torch.no_grad():
        a, b = model(window), model(shuffled)
    strips = 31 * 32
    assert torch.allclose(a[:, :strips], b[:, :strips], atol=1e-6)  # GaitSet: a window is a set
    assert not torch.allclose(a[:, strips:], b[:, strips:], atol=1e-6)  # GaitPart: motion is in the order


def test_the_onnx_export_computes_what_torch_does_for_any_batch_and_window_length(model, tmp_path: Path):
    path = export_silhouette_onnx(model, tmp_path / "selfgait.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for windows in (
        np.stack([walk(0, 30), walk(4, 30), walk(2, 30)]),
        walk(1, 7)[None],  # shorter than the exported example
        rng.integers(0, 256, (2, 45, 64, 44), dtype=np.uint8),
    ):
        (got,) = session.run(None, {INPUT_NAME: windows})
        with torch.no_grad():
            expected = model(torch.from_numpy(windows)).numpy()
        scale = np.abs(expected).max()
        assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-4 * scale
