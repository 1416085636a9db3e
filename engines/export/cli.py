"""``gaitwatch export``: a checkpoint (or the raw baseline) -> ONNX or TensorRT artifact + model card."""

from __future__ import annotations

import argparse
from pathlib import Path

from sensors.errors import InputError


def add_commands(commands: argparse._SubParsersAction) -> None:
    """``gaitwatch export`` (registered by ``engines.cli``)."""
    ex = commands.add_parser("export", help="compile a trained encoder to ONNX or a TensorRT engine, with a model card")
    ex.add_argument("model", help="a checkpoint (.pt or run folder), 'raw', or an .onnx file (for --format tensorrt)")
    ex.add_argument("--format", choices=["onnx", "tensorrt"], default="onnx", help="the artifact's kind")
    ex.add_argument("--out", type=Path, required=True, help="the artifact to write (.onnx, or .engine / .plan)")
    ex.add_argument(
        "--data", type=Path, help="KGBD zip or folder: score the artifact on its split for the card (default: no score)"
    )
    ex.add_argument("--f", type=int, default=6, help="window length in frames, for 'raw'")
    ex.add_argument("--precision", choices=["fp32", "fp16"], default="fp32", help="TensorRT precision")
    ex.add_argument("--max-batch", type=int, default=256, help="TensorRT optimisation profile: batch 1..this")
    ex.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from engines.export.artifact import build_tensorrt_artifact, export_onnx_artifact, measure_accuracy
    from engines.model_card import read_card, write_card

    if args.out.is_dir():
        raise InputError(f"{args.out}: is a folder; --out names the artifact file")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "onnx":
        if args.out.suffix != ".onnx":
            raise InputError(f"{args.out}: an ONNX artifact's name ends in .onnx")
        card = export_onnx_artifact(args.model, args.out, args.f)
    else:
        if args.out.suffix not in (".engine", ".plan"):
            raise InputError(f"{args.out}: a TensorRT engine's name ends in .engine or .plan")
        card = build_tensorrt_artifact(args.model, args.out, args.f, args.precision, args.max_batch)
    if args.data:
        card["accuracy"] = measure_accuracy(args.out, args.data)
    path = write_card(args.out, card)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) and {path.name}")
    parity = card["parity"]
    print(f"parity with {parity['reference']}: max |difference| {parity['max_abs_diff']:.2e}")
    read_card(args.out)  # the card just written names this very file
    return 0
