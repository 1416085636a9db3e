"""A silhouette encoder -> one ONNX file taking uint8 silhouette windows [N, T, 64, 44], N and T dynamic.

Why apart from ``to_onnx``: skeleton artifacts take canonical windows [N, f, 20, 3] in metres; silhouette
artifacts take silhouettes as stored (uint8, scaled inside the graph), and the window length may vary
(a track's last stretch, a dataset's whole sequence), so T is dynamic too. Same exporter settings
(``to_onnx.write_onnx``: dynamo, weights inside the file, the same opset), written aside and renamed.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from engines.export.to_onnx import write_onnx
from sensors.silhouette import HEIGHT, WIDTH

INPUT_NAME = "silhouettes"


def export_silhouette_onnx(encoder: nn.Module, out: str | Path) -> Path:
    """Write ``encoder`` (in eval mode) as ONNX to ``out`` atomically; returns the path."""
    encoder = encoder.eval()
    example = torch.zeros(2, max(int(getattr(encoder, "f", 30)), 6), HEIGHT, WIDTH, dtype=torch.uint8)
    frames = {0: torch.export.Dim("batch"), 1: torch.export.Dim("frames", min=2)}
    return write_onnx(encoder, example, out, INPUT_NAME, {"windows": frames})
