"""A silhouette encoder -> one ONNX file taking uint8 silhouette windows [N, T, 64, 44], N and T dynamic.

Why apart from ``to_onnx``: skeleton artifacts take canonical windows [N, f, 20, 3] in metres; silhouette
artifacts take silhouettes as stored (uint8, scaled inside the graph), and the window length may vary
(a track's last stretch, a dataset's whole sequence), so T is dynamic too. Same exporter settings
(dynamo, weights inside the file, the same opset), written aside and renamed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from engines.export.to_onnx import OPSET, OUTPUT_NAME
from sensors import atomic
from sensors.errors import InputError
from sensors.silhouette import HEIGHT, WIDTH

INPUT_NAME = "silhouettes"


def export_silhouette_onnx(encoder: nn.Module, out: str | Path) -> Path:
    """Write ``encoder`` (in eval mode) as ONNX to ``out`` atomically; returns the path."""
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError:
        raise InputError(
            "ONNX export needs onnx and onnxscript: pip install -c constraints.txt 'gaitwatch[train]'"
        ) from None
    out = Path(out)
    encoder = encoder.eval()
    example = torch.zeros(2, max(int(getattr(encoder, "f", 30)), 6), HEIGHT, WIDTH, dtype=torch.uint8)
    partial = atomic.partial_path(out)
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    chatter = io.StringIO()  # the exporter prints its steps; kept out of the command's output
    with warnings.catch_warnings(), contextlib.redirect_stdout(chatter):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            encoder,
            (example,),
            str(partial),
            dynamo=True,
            external_data=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"windows": {0: torch.export.Dim("batch"), 1: torch.export.Dim("frames", min=2)}},
            verbose=False,
        )
    atomic.commit(partial, out)
    return out
