"""Export a trained encoder to a checked artifact: ONNX or a TensorRT engine, its model card, its accuracy.

Every artifact is compared with its reference before it is kept (ONNX Runtime against torch,
TensorRT against ONNX Runtime) and the card records the largest difference seen.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sensors.errors import InputError

PARITY_LIMIT = 1e-5  # what the parity tests demand of ONNX Runtime vs torch
TENSORRT_FP32_LIMIT = 1e-3  # TensorRT may pick TF32 kernels for FP32 engines
FP16_PARITY_LIMIT = 5e-2


def export_onnx_artifact(model: str | Path, out: Path, f: int = 6) -> dict:
    """Export ``model`` (checkpoint, run folder or "raw") to ``out`` with its card; returns the card fields.

    Raises InputError when ONNX Runtime differs from torch by more than ``PARITY_LIMIT``."""
    import onnx
    import torch

    from engines.export.parity import max_abs_difference
    from engines.export.to_onnx import OPSET, export_onnx
    from engines.model_card import write_card
    from engines.runtime.load import open_encoder
    from engines.runtime.onnx_backend import OnnxRuntimeEncoder
    from engines.runtime.torch_backend import TorchEncoder

    reference = open_encoder(model, f=f)
    if not isinstance(reference, TorchEncoder):
        raise InputError(f"{model}: ONNX export starts from a torch checkpoint (.pt, run folder) or 'raw'")
    export_onnx(reference.module, out)
    card = {
        **reference.card,
        "format": "onnx",
        "exported_with": {"torch": torch.__version__, "onnx": onnx.__version__, "opset": OPSET},
        "source": str(model),
    }
    write_card(out, card)  # provisional, so the runtime can open the file for the parity check
    difference = max_abs_difference(reference, OnnxRuntimeEncoder(out, device="cpu"))
    return _accept(out, card, "torch", "onnxruntime", difference, PARITY_LIMIT)


def build_tensorrt_artifact(model: str, out: Path, f: int = 6, precision: str = "fp32", max_batch: int = 256) -> dict:
    """Build a TensorRT engine from an .onnx artifact (or from a checkpoint, through a temporary ONNX export)."""
    from engines.export.parity import PARITY_BATCHES, max_abs_difference
    from engines.export.to_tensorrt import build_engine, tensorrt_version
    from engines.model_card import read_card, write_card
    from engines.runtime.load import open_encoder
    from engines.runtime.tensorrt_backend import TensorRTEncoder, tensorrt_missing

    reason = tensorrt_missing()
    if reason:
        raise InputError(f"cannot build a TensorRT engine here: {reason}")
    with tempfile.TemporaryDirectory() as scratch:
        onnx_path = Path(model)
        if onnx_path.suffix != ".onnx":
            onnx_path = Path(scratch) / "model.onnx"
            export_onnx_artifact(model, onnx_path, f)
        onnx_card = read_card(onnx_path)
        build_engine(onnx_path, out, int(onnx_card["f"]), max_batch, precision)
        reference = open_encoder(onnx_path, device="cpu")
        card = {
            **{k: v for k, v in onnx_card.items() if k not in ("file", "card_version", "parity", "accuracy")},
            "format": "tensorrt",
            "tensorrt": {
                "version": tensorrt_version(),
                "precision": precision,
                "max_batch": max_batch,
                "onnx_sha256": onnx_card["file"]["sha256"],
            },
        }
        write_card(out, card)
        difference = max_abs_difference(reference, TensorRTEncoder(out), PARITY_BATCHES)
    limit = TENSORRT_FP32_LIMIT if precision == "fp32" else FP16_PARITY_LIMIT
    return _accept(out, card, "onnxruntime", "tensorrt", difference, limit)


def _accept(out: Path, card: dict, reference: str, backend: str, difference: float, limit: float) -> dict:
    """Record the parity check in the card and keep the artifact, or delete it (and its card) and raise."""
    from engines.export.parity import PARITY_BATCHES
    from engines.model_card import card_path, read_card, write_card

    if difference > limit:
        out.unlink(missing_ok=True)  # an artifact that failed its check must not be used by mistake
        card_path(out).unlink(missing_ok=True)
        raise InputError(f"{out}: {backend} differs from {reference} by {difference:.2e} (> {limit}); not kept")
    card["parity"] = {
        "reference": reference,
        "backend": backend,
        "batches": list(PARITY_BATCHES),
        "max_abs_diff": difference,
    }
    write_card(out, card)
    return read_card(out)  # as written: with this artifact's own file entry and gaitwatch version


def measure_accuracy(artifact: Path, data: Path) -> dict:
    """The artifact's own re-identification scores on the test part of its training split."""
    from engines.evaluate import evaluate
    from engines.protocol import load_protocol, load_split
    from engines.runtime.load import open_encoder

    encoder = open_encoder(artifact)
    split = (encoder.card.get("training") or {}).get("split")
    if split is None:
        raise InputError(f"{artifact}: --data needs a model trained on a split; 'raw' has none to score on")
    results = evaluate(encoder, load_protocol(data, load_split(split), f=encoder.f))
    keys = ("top1", "top5", "top10", "mAP", "nAUC", "num_probes", "num_gallery")
    return {
        "protocol": "KGBD re-identification, see engines/protocol.py",
        "split": split,
        "part": "test",
        "backend": encoder.backend,
        **{level: {k: v for k, v in r.to_dict().items() if k in keys} for level, r in results.items()},
    }
