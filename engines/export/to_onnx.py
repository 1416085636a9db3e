"""Torch encoder -> a single-file ONNX graph taking raw canonical windows with a dynamic batch size.

Why dynamo export: it is torch 2.13's default and traces the AGE decoder loop (unrolled over the f
steps) and the normalisation layers into plain ONNX operators; ``external_data=False`` keeps the
weights inside the one file that the model card's sha256 names.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from engines.export.inference import inference_form
from sensors import atomic
from sensors.errors import InputError

INPUT_NAME = "windows"
OUTPUT_NAME = "embeddings"
OPSET = 18


def export_onnx(encoder: nn.Module, out: str | Path) -> Path:
    """Write ``encoder`` (its inference form) as ONNX to ``out`` atomically; returns the path."""
    module = inference_form(encoder)
    example = torch.zeros(2, module.f, 20, 3)
    return write_onnx(module, example, out, INPUT_NAME, {"windows": {0: torch.export.Dim("batch")}})


def write_onnx(
    module: nn.Module, example: torch.Tensor, out: str | Path, input_name: str, dynamic_shapes: dict
) -> Path:
    """The one exporter call every artifact goes through: ``module`` traced on ``example``, weights inside the
    file, ``dynamic_shapes`` keyed by ``forward``'s argument; written aside and renamed; returns the path."""
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError:
        raise InputError(
            "ONNX export needs onnx and onnxscript: pip install -c constraints.txt 'gaitwatch[train]'"
        ) from None
    out = Path(out)
    partial = atomic.partial_path(out)
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)  # "no torchvision"
    chatter = io.StringIO()  # the exporter prints its steps; kept out of the command's output
    with warnings.catch_warnings(), contextlib.redirect_stdout(chatter):
        warnings.simplefilter("ignore")  # LSTM flat-weight and deprecation warnings of the tracer
        torch.onnx.export(
            module,
            (example,),
            str(partial),
            dynamo=True,
            external_data=False,
            opset_version=OPSET,
            input_names=[input_name],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=dynamic_shapes,
            verbose=False,
        )
    atomic.commit(partial, out)
    return out
